"""Peak live tensor memory of one training step, traced op by op without running it.

The networks of ``train_step.py`` (spsnn spatial and free, the DCLS-style baseline)
run one forward + backward on fake tensors (``FakeTensorMode``: shapes and dtypes,
no data, no compute), under a dispatch mode that adds every new tensor storage to a
running total and takes it off when the storage is freed. The peak of that total is
what the step needs at once: saved activations, gradients and the transients of each
op. It runs in seconds at the GPU shapes (batch 256, T=1000) on any machine, so memory
work can be checked where no GPU is at hand.

The tensors are fake CPU tensors (autograd on fake CUDA tensors needs a CUDA context),
so CPU kernels' choices show: dropout keeps a float mask (4 bytes per element) where
CUDA keeps a bool one (1 byte), which counts 0.75 x (T, B, C) x 4 bytes more per
dropout layer than a GPU holds, for both spsnn and the baseline.

What it leaves out: backend workspaces (cuDNN's convolution workspace, cuFFT plans),
the caching allocator's rounding and fragmentation, and temporaries inside custom ops
(only their outputs are counted). On an H200 the DCLS-style baseline measured 3.45 GiB
at long-250 and 9.04 GiB at shd (``../shared/measurements/2026-11-27-h200.md``); this
trace gives 3.63 and 0.36 GiB: close where the step is made of tensors, far off where
a convolution workspace dominates. Compare models within one run; measure on a GPU
with ``train_step.py --device cuda`` for the real figure.

Usage::

    python benchmarks/memory_trace.py                      # GPU shapes, table + JSON
    python benchmarks/memory_trace.py --configs long-250 --batch 64
"""

from __future__ import annotations

import argparse
import sys
import weakref
from pathlib import Path

import torch
import torch.nn.functional as F
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from train_step import (  # noqa: E402
    DEFAULT_MODELS,
    SEED,
    SPIKE_RATE,
    build,
    configs,
    fmt_bytes,
    save_report,
)

#: A CUDA-graph replay keeps the eager step's tensors: the same trace as "spatial".
MODELS = DEFAULT_MODELS["cpu"]


class LiveBytes(TorchDispatchMode):
    """Counts the bytes of tensor storages alive after every op; keeps the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self.peak_op = ""
        self._sizes: dict[int, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            key = storage._cdata
            if key in self._sizes:  # a view of a storage already counted
                continue
            self._sizes[key] = storage.nbytes()
            self.live += self._sizes[key]
            weakref.finalize(storage, self._free, key)
        if self.live > self.peak:
            self.peak, self.peak_op = self.live, str(func)
        return out

    def _free(self, key: int) -> None:
        self.live -= self._sizes.pop(key, 0)


def trace_step(model: str, cfg: dict) -> dict:
    """Peak live bytes of one forward + backward, counted from the first op of the step."""
    with FakeTensorMode():
        torch.manual_seed(SEED)
        net = build(model, cfg)
        spikes = (torch.rand(cfg["steps"], cfg["batch"], cfg["inputs"]) < SPIKE_RATE).float()
        labels = torch.randint(cfg["outputs"], (cfg["batch"],))
        counter = LiveBytes()
        with counter:
            loss = F.cross_entropy(net(spikes).mean(0), labels)
            forward_peak, saved = counter.peak, counter.live
            loss.backward()
    return {
        "model": model,
        "peak_bytes": counter.peak,
        "forward_peak_bytes": forward_peak,
        "saved_after_forward_bytes": saved,
        "peak_op": counter.peak_op,
    }


def table(report: dict) -> str:
    lines = [
        "| config | model | peak | x dcls | saved after forward | forward peak | peak at |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, rows in report["configs"].items():
        base = rows.get("dcls", {}).get("peak_bytes")
        for model, row in rows.items():
            ratio = f"{row['peak_bytes'] / base:.2f}" if base else "-"
            lines.append(
                f"| {name} | {model} | {fmt_bytes(row['peak_bytes'])} | {ratio} | "
                f"{fmt_bytes(row['saved_after_forward_bytes'])} | "
                f"{fmt_bytes(row['forward_peak_bytes'])} | {row['peak_op']} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="*", help="subset of train_step.py's configurations")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    parser.add_argument("--batch", type=int, default=256, help="batch of every configuration")
    parser.add_argument("--quick", action="store_true", help="train_step.py's tiny shapes")
    parser.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/...)")
    args = parser.parse_args()
    all_cfgs = configs(args.quick, "cuda", args.batch)
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "torch": torch.__version__,
        "device": "fake CPU tensors",
        "method": "peak of live tensor storage bytes over one forward + backward on fake "
        "tensors (no workspaces, no allocator rounding)",
        "configs": {},
    }
    for name in args.configs or list(all_cfgs):
        cfg = all_cfgs[name] if args.quick else {**all_cfgs[name], "batch": args.batch}
        report["configs"][name] = {model: trace_step(model, cfg) for model in args.models}
        print(f"{name}: {cfg}", flush=True)
    print("\n" + table(report))
    save_report(report, args.out, f"memory_trace{'-quick' if args.quick else ''}")


if __name__ == "__main__":
    main()

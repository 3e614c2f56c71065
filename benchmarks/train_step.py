"""Train-step speed and memory: spsnn (spatial D=2, free) against a DCLS-delays-style baseline.

Random spike input of the SHD shape as DCLS-delays trains it (140 binned
inputs, T=100, 2 x 256 LIF, 20 outputs, 25 taps, Gaussian kernels, batch norm,
dropout 0.4) and the long-delay regime (T=1000, 2 x 256, 65 and 251 taps).
Each (configuration, model) pair runs in its own subprocess with the same
seed, so that its peak memory is its own; times are the median of repeated
forward + backward + Adam steps, warm-up excluded.

Models:
    spatial   ``spatial_layers.networks.SpatialSNN``, delays from 2-D coordinates.
    free      the same network with one learnable delay per synapse.
    dcls      the baseline built as DCLS-delays builds it: ``DCLS.construct.modules
              .Dcls1d`` (gauss, one learnable position per synapse, left-padded
              causal time convolution) + BatchNorm + a step-by-step snnTorch
              ``snn.Leaky`` loop; non-spiking leaky readout.

Also counted, per configuration and model: the ops one training step dispatches
(forward + loss, backward, Adam step; ``op_count.py``: every ATen op but views, one per
Triton launch), spsnn's models on both LIF backends (Triton where it runs: CUDA, or
its CPU interpreter with ``TRITON_INTERPRET=1``, then at batch 8): the launch budget
of a step, which bounds it on a GPU. Also measured, per configuration: achieved
FLOP/s of the delay operator of the 256 -> 256 layer (dense conv1d and the FFT
path) against a plain matrix product with the dense convolution's FLOP count, and
streaming (step-mode) latency per time step at batch 1.

Usage::

    python benchmarks/train_step.py              # full run, table + JSON
    python benchmarks/train_step.py --quick      # tiny sizes, seconds (smoke run)
    TRITON_INTERPRET=1 python benchmarks/train_step.py --configs shd --models spatial dcls \
        --no-flops --no-stream --repeats 1       # op counts with the Triton backend on CPU

Results go to benchmarks/results/ (gitignored) as JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


from spatial_layers import SpatialDelay  # noqa: E402
from spatial_layers.functional import delayed_linear, delayed_step, plan_delayed_linear  # noqa: E402
from spatial_layers.neurons import LeakyParameters, leaky_step  # noqa: E402

SEED = 0
SPIKE_RATE = 0.05  # input spike probability per channel and step
MODELS = ("spatial", "free", "dcls", "spatial-graphs")
#: The models a run measures unless told otherwise (CUDA graphs need a GPU).
DEFAULT_MODELS = {"cpu": ("spatial", "free", "dcls"), "cuda": MODELS}


def configs(quick: bool, device: str, long_batch: int | None) -> dict[str, dict]:
    """Benchmark shapes. ``taps`` = max_delay + 1 (DCLS-delays' odd kernel sizes)."""
    if quick:
        return {
            "shd": dict(steps=20, batch=8, inputs=20, hidden=32, outputs=5, taps=5, kernel="gauss"),
            "long-short": dict(
                steps=60, batch=2, inputs=20, hidden=32, outputs=5, taps=9, kernel="linear"
            ),
            "long-long": dict(
                steps=60, batch=2, inputs=20, hidden=32, outputs=5, taps=33, kernel="linear"
            ),
        }
    if long_batch is None:
        long_batch = 256 if device == "cuda" else 16
    shd = dict(steps=100, batch=256, inputs=140, hidden=256, outputs=20, taps=25, kernel="gauss")
    long = dict(steps=1000, batch=long_batch, inputs=140, hidden=256, outputs=20, kernel="linear")
    return {"shd": shd, "long-64": {**long, "taps": 65}, "long-250": {**long, "taps": 251}}


# ----------------------------------------------------------------------------- models


class DclsDelaysBaseline(nn.Module):
    """DCLS-delays' network shape: Dcls1d (gauss) + BatchNorm + snn.Leaky loop, per layer."""

    def __init__(self, inputs: int, hidden: int, outputs: int, taps: int, dropout: float = 0.4):
        super().__init__()
        import snntorch as snn
        from DCLS.construct.modules import Dcls1d

        sizes = [inputs, hidden, hidden, outputs]
        self.taps = taps
        self.convs = nn.ModuleList(
            [
                Dcls1d(a, b, kernel_count=1, dilated_kernel_size=taps, bias=False, version="gauss")
                for a, b in itertools.pairwise(sizes)
            ]
        )
        for conv in self.convs:
            conv.SIG.requires_grad_(False)  # DCLS-delays anneals sigma by hand
            nn.init.uniform_(conv.P, -taps // 2, taps // 2)
        self.norms = nn.ModuleList([nn.BatchNorm1d(hidden) for _ in range(2)])
        self.neurons = nn.ModuleList([snn.Leaky(beta=0.9) for _ in range(2)])
        self.readout = snn.Leaky(beta=0.9, reset_mechanism="none")
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(1, 2, 0)  # (B, C, T)
        for index, conv in enumerate(self.convs):
            x = conv(F.pad(x, (self.taps - 1, 0)))  # causal: pad the past
            if index == len(self.convs) - 1:
                break
            x = self.norms[index](x)
            membrane = self.neurons[index].reset_mem()
            spikes = []
            for current in x.unbind(-1):
                spike, membrane = self.neurons[index](current, membrane)
                spikes.append(spike)
            x = self.dropout(torch.stack(spikes, dim=-1))
        membrane = self.readout.reset_mem()
        trace = []
        for current in x.unbind(-1):
            _, membrane = self.readout(current, membrane)
            trace.append(membrane)
        return torch.stack(trace)  # (T, B, outputs)


def build(model: str, cfg: dict, backend: str = "auto") -> nn.Module:
    """The network of ``model``; ``spatial-graphs`` is ``spatial`` (run through CUDA graphs)."""
    if model == "dcls":
        return DclsDelaysBaseline(cfg["inputs"], cfg["hidden"], cfg["outputs"], cfg["taps"])
    from spatial_layers.networks import SpatialSNN

    return SpatialSNN(
        cfg["inputs"],
        cfg["outputs"],
        [cfg["hidden"], cfg["hidden"]],
        delays=model.removesuffix("-graphs"),
        dim=2,
        max_delay=cfg["taps"] - 1,
        kernel=cfg["kernel"],
        batch_norm=True,
        dropout=0.4,
        backend=backend,
    )


def delay_paths(net: nn.Module, cfg: dict) -> list[str]:
    """Which algorithm each SpatialDelay layer's forward runs (plan_delayed_linear)."""
    paths = []
    for layer in net.modules():
        if isinstance(layer, SpatialDelay):
            plan = plan_delayed_linear(
                cfg["steps"], cfg["batch"], layer.in_features, layer.out_features,
                layer.max_delay + 1,
            )  # fmt: skip
            paths.append(
                plan.method + (f"(N={plan.fft_size},L={plan.block})" if plan.fft_size else "")
            )
    return paths


# ----------------------------------------------------------------------------- measuring


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS mark (VmHWM); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def make_optimizer(model: str, net: nn.Module) -> torch.optim.Optimizer:
    """Adam as each model trains: spsnn's classifier runs it fused (one kernel, no host
    sync; ``lightning_modules.classifier.adam_implementation``), the DCLS-delays
    baseline as its repository does (torch's default implementation)."""
    if model == "dcls":
        return torch.optim.Adam(net.parameters(), lr=1e-3)
    return torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)


#: Batch of the op counts on CPU, where the Triton backend runs in Triton's interpreter
#: (slow); the count of a step does not depend on the batch.
CPU_COUNT_BATCH = 8


def ops_worker(model: str, cfg: dict, device: str, backend: str) -> dict:
    """Dispatched ops of one training step (forward + loss, backward, optimizer step) after
    a warm-up step, counted by :class:`op_count.OpCounter` (views excluded, one per
    Triton launch)."""
    from op_count import count_train_step

    torch.manual_seed(SEED)
    if device == "cpu":
        cfg = {**cfg, "batch": min(cfg["batch"], CPU_COUNT_BATCH)}
    net = build(model, cfg, backend).to(device)
    optimizer = make_optimizer(model, net)
    spikes = torch.rand(cfg["steps"], cfg["batch"], cfg["inputs"], device=device) < SPIKE_RATE
    spikes = spikes.float()
    labels = torch.randint(cfg["outputs"], (cfg["batch"],), device=device)

    def loss() -> Tensor:
        return F.cross_entropy(net(spikes).mean(0), labels)

    optimizer.zero_grad(set_to_none=True)
    loss().backward()
    optimizer.step()
    phases = count_train_step(loss, optimizer)
    total = sum(sum(counts.values()) for counts in phases.values())
    return {
        "model": model,
        "backend": "-" if model == "dcls" else backend,
        "batch": cfg["batch"],
        "ops": {phase: sum(counts.values()) for phase, counts in phases.items()},
        "total": total,
        "by_op": {phase: dict(counts.most_common()) for phase, counts in phases.items()},
    }


def train_step_worker(
    model: str, cfg: dict, device: str, warmup: int, repeats: int, backend: str
) -> dict:
    torch.manual_seed(SEED)
    net = build(model, cfg, backend).to(device)
    forward = net
    if model.endswith("-graphs"):
        from spatial_layers.networks.cuda_graphs import GraphedNetwork

        graphed = GraphedNetwork(net)

        def forward(x: Tensor) -> Tensor:
            return graphed(x).membrane

    optimizer = make_optimizer(model, net)
    spikes = torch.rand(cfg["steps"], cfg["batch"], cfg["inputs"], device=device) < SPIKE_RATE
    spikes = spikes.float()
    labels = torch.randint(cfg["outputs"], (cfg["batch"],), device=device)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        membrane = forward(spikes)
        loss = F.cross_entropy(membrane.mean(0), labels)
        loss.backward()
        optimizer.step()
        return loss.item()

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        exact = reset_peak_rss()
        base = rss_kib("VmRSS") * 1024
    times = []
    for index in range(warmup + repeats):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        if index >= warmup:
            times.append(time.perf_counter() - start)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
        how = "torch.cuda.max_memory_allocated - allocated before the first step"
    else:
        peak = rss_kib("VmHWM" if exact else "maxrss") * 1024 - base
        how = "peak RSS (VmHWM, reset before the first step) - RSS before the first step"
    paths = delay_paths(net, cfg) if model != "dcls" else ["dense conv1d (Dcls1d)"]
    return {
        "model": model,
        "time_s": statistics.median(times),
        "times_s": times,
        "peak_bytes": peak,
        "memory_method": how,
        "delay_paths": paths,
        "params": sum(p.numel() for p in net.parameters() if p.requires_grad),
    }


def timed(fn, device: str, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def flops_worker(cfg: dict, device: str, repeats: int) -> dict:
    """FLOP/s of the hidden 256 -> 256 delay operator (forward) vs a plain matmul."""
    torch.manual_seed(SEED)
    steps, batch, c, taps = cfg["steps"], cfg["batch"], cfg["hidden"], cfg["taps"]
    x = (torch.rand(steps, batch, c, device=device) < SPIKE_RATE).float()
    kernel = torch.randn(c, c, taps, device=device) / math.sqrt(c)
    dense_flop = 2.0 * steps * batch * c * c * taps
    # The dense convolution's im2col product (T*B, C_in*K) @ (C_in*K, C_out), run
    # in row chunks so that it fits in memory at K=251 (same shape per call).
    rows = 2048
    chunks = -(-steps * batch // rows)
    a = torch.randn(rows, c * taps, device=device)
    b = torch.randn(c * taps, c, device=device)
    matmul_flop = 2.0 * chunks * rows * c * taps * c

    def matmul() -> None:
        for _ in range(chunks):
            a @ b

    out = {"shape": f"T={steps} B={batch} C_in=C_out={c} K={taps}", "dense_equiv_flop": dense_flop}
    with torch.no_grad():
        out["matmul_s"] = timed(matmul, device, repeats)
        out["dense_conv_s"] = timed(
            lambda: delayed_linear(x, kernel, method="dense"), device, repeats
        )
        plan = plan_delayed_linear(steps, batch, c, c, taps, "fft")
        out["fft_s"] = timed(lambda: delayed_linear(x, kernel, method="fft"), device, repeats)
        whole = plan_delayed_linear(steps, batch, c, c, taps, "dft")
        out["dft_s"] = timed(lambda: delayed_linear(x, kernel, method="dft"), device, repeats)
    blocks = -(-steps // plan.block)
    # Real multiply-adds x 2 of the per-frequency complex products (4 real each).
    fft_flop = 8.0 * (plan.fft_size // 2 + 1) * blocks * batch * c * c
    dft_flop = 8.0 * (whole.fft_size // 2 + 1) * batch * c * c
    out.update(
        fft_plan=f"N={plan.fft_size} L={plan.block}",
        dft_plan=f"N={whole.fft_size}",
        fft_matmul_flop=fft_flop,
        dft_matmul_flop=dft_flop,
        matmul_gflops=matmul_flop / out["matmul_s"] / 1e9,
        dense_conv_gflops=dense_flop / out["dense_conv_s"] / 1e9,
        fft_dense_equiv_gflops=dense_flop / out["fft_s"] / 1e9,
        fft_actual_matmul_gflops=fft_flop / out["fft_s"] / 1e9,
        dft_dense_equiv_gflops=dense_flop / out["dft_s"] / 1e9,
        dft_actual_matmul_gflops=dft_flop / out["dft_s"] / 1e9,
        auto=plan_delayed_linear(steps, batch, c, c, taps).method,
    )
    return out


def streaming_worker(cfg: dict, device: str, steps: int) -> dict:
    """Per-step latency of the spatial network in step mode at batch 1 (inference)."""
    torch.manual_seed(SEED)
    net = build("spatial", cfg).to(device).eval()
    params = LeakyParameters()
    x = (torch.rand(steps, 1, cfg["inputs"], device=device) < SPIKE_RATE).float()
    layers = list(net.layers)
    # TimeBatchNorm wants (T, B, C); one step is (B, C): call BatchNorm1d itself.
    norms = [
        (lambda y, n=n: nn.BatchNorm1d.forward(n, y)) if isinstance(n, nn.BatchNorm1d) else n
        for n in net.norms
    ]
    result = {}
    with torch.no_grad():
        # (1) the layers' own step(): rebuilds each kernel from coordinates every step.
        def run_layer_step() -> None:
            for layer in layers:
                layer.reset_state()
            membranes = [None] * (len(layers) - 1)
            for x_t in x:
                h = x_t
                for index, layer in enumerate(layers[:-1]):
                    current = norms[index](layer.step(h))
                    mem = (
                        membranes[index]
                        if membranes[index] is not None
                        else torch.zeros_like(current)
                    )
                    h, membranes[index] = leaky_step(current, mem, params)
                layers[-1].step(h)

        # (2) kernels built once (deployment): the pure delayed_step with a fixed kernel.
        kernels = [layer.applied_kernel() for layer in layers]

        def run_cached() -> None:
            states = [None] * len(layers)
            membranes = [None] * (len(layers) - 1)
            for x_t in x:
                h = x_t
                for index in range(len(layers) - 1):
                    y, states[index] = delayed_step(h, kernels[index], states[index])
                    current = norms[index](y)
                    mem = (
                        membranes[index]
                        if membranes[index] is not None
                        else torch.zeros_like(current)
                    )
                    h, membranes[index] = leaky_step(current, mem, params)
                delayed_step(h, kernels[-1], states[-1])

        for name, fn in (("layer_step", run_layer_step), ("cached_kernel", run_cached)):
            result[f"{name}_ms_per_step"] = timed(fn, device, 3) / steps * 1e3
    return result


# ----------------------------------------------------------------------------- driver


def run_worker(task: dict, timeout: float) -> dict:
    """Runs one task in a fresh interpreter (its own peak memory)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(task)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def worker_main(task: dict) -> None:
    torch.set_num_threads(task["threads"])
    if task["kind"] == "train":
        result = train_step_worker(
            task["model"], task["cfg"], task["device"], task["warmup"], task["repeats"],
            task["backend"],
        )  # fmt: skip
    elif task["kind"] == "ops":
        result = ops_worker(task["model"], task["cfg"], task["device"], task["backend"])
    elif task["kind"] == "flops":
        result = flops_worker(task["cfg"], task["device"], task["repeats"])
    else:
        result = streaming_worker(task["cfg"], task["device"], task["stream_steps"])
    print(json.dumps(result))


def count_ops(models: list[str], cfg: dict, common: dict, timeout: float) -> list[dict]:
    """Op counts per model; spsnn's models on both LIF backends (the Triton one where it
    runs: CUDA, or its interpreter on CPU with ``TRITON_INTERPRET=1``)."""
    backends = ["torch"]
    if importlib.util.find_spec("triton") and (
        common["device"] == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
    ):
        backends.append("triton")
    rows = []
    for model in models:
        if model.endswith("-graphs"):
            continue  # a replayed graph launches what it captured; counted as spatial
        for backend in ["-"] if model == "dcls" else backends:
            task = {**common, "kind": "ops", "model": model, "cfg": cfg, "backend": backend}
            result = run_worker(task, timeout)
            rows.append({"model": model, "backend": backend, **result})
            if "error" in result:
                print(f"  ops {model} ({backend}) ERROR {result['error']}", flush=True)
            else:
                print(f"  ops {model} ({backend}) {result['ops']} = {result['total']}", flush=True)
    return rows


def fmt_bytes(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)))
    parser.add_argument("--configs", nargs="*", help="subset of configuration names")
    parser.add_argument("--models", nargs="*", choices=MODELS, help="default: all the device runs")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=("auto", "torch", "triton"),
        help="spsnn's LIF loops (auto: Triton on CUDA when installed)",
    )
    parser.add_argument("--long-batch", type=int, help="batch of the T=1000 runs (CPU: 16)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1800.0, help="per subprocess, seconds")
    parser.add_argument("--no-flops", action="store_true")
    parser.add_argument("--no-stream", action="store_true")
    parser.add_argument(
        "--no-ops", action="store_true", help="skip the dispatched-op counts per step"
    )
    parser.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/...)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(json.loads(args.worker))
        return

    all_cfgs = configs(args.quick, args.device, args.long_batch)
    models = args.models or list(DEFAULT_MODELS["cuda" if args.device == "cuda" else "cpu"])
    names = args.configs or list(all_cfgs)
    common = {"device": args.device, "threads": args.threads, "backend": args.backend}
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "torch": torch.__version__,
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads,
        "backend": args.backend,
        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
        "load_average_at_start": os.getloadavg(),
        "seed": SEED,
        "spike_rate": SPIKE_RATE,
        "configs": {},
    }
    for name in names:
        cfg = all_cfgs[name]
        entry = {"cfg": cfg, "models": {}}
        print(f"\n== {name}: {cfg}", flush=True)
        for model in models:
            task = {**common, "kind": "train", "model": model, "cfg": cfg,
                    "warmup": args.warmup, "repeats": args.repeats}  # fmt: skip
            result = run_worker(task, args.timeout)
            entry["models"][model] = result
            if "error" in result:
                print(f"  {model:8s} ERROR {result['error']}", flush=True)
                continue
            print(
                f"  {model:8s} {result['time_s'] * 1e3:9.1f} ms/step"
                f"  peak {fmt_bytes(result['peak_bytes']):>9s}"
                f"  paths {result['delay_paths']}",
                flush=True,
            )
        if not args.no_ops:
            entry["ops"] = count_ops(models, cfg, common, args.timeout)
        if not args.no_flops:
            entry["flops"] = run_worker(
                {**common, "kind": "flops", "cfg": cfg, "repeats": 2}, args.timeout
            )
            print(f"  flops {entry['flops']}", flush=True)
        if not args.no_stream and name == names[0]:
            entry["streaming"] = run_worker(
                {**common, "kind": "stream", "cfg": cfg, "stream_steps": 20 if args.quick else 100},
                args.timeout,
            )
            print(f"  streaming {entry['streaming']}", flush=True)
        report["configs"][name] = entry
    report["load_average_at_end"] = os.getloadavg()

    print("\n" + table(report))
    save_report(report, args.out, f"train_step-{'quick-' if args.quick else ''}{args.device}")


def save_report(report: dict, out: Path | None, stem: str) -> Path:
    """Writes ``report`` as JSON to ``out``, by default
    ``benchmarks/results/<stem>-<date>-<time>.json``, and prints where."""
    out = out or ROOT / "benchmarks" / "results" / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")
    return out


def table(report: dict) -> str:
    """Markdown table: time and memory per model with ratios to the dcls baseline."""
    lines = [
        "| config | model | ms / step | x faster than dcls | peak memory | memory / dcls "
        "| delay path |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, entry in report["configs"].items():
        base = entry["models"].get("dcls", {})
        for model, r in entry["models"].items():
            if "error" in r:
                lines.append(f"| {name} | {model} | error: {r['error'][:60]} | | | | |")
                continue
            speed = f"{base['time_s'] / r['time_s']:.2f}" if "time_s" in base else "-"
            mem = f"{r['peak_bytes'] / base['peak_bytes']:.2f}" if base.get("peak_bytes") else "-"
            paths = ", ".join(sorted(set(r["delay_paths"])))
            lines.append(
                f"| {name} | {model} | {r['time_s'] * 1e3:.0f} | {speed} | "
                f"{fmt_bytes(r['peak_bytes'])} | {mem} | {paths} |"
            )
    ops = [(n, row) for n, e in report["configs"].items() for row in e.get("ops", [])]
    if ops:
        lines += [
            "",
            "Dispatched ops per training step (forward + loss, backward, Adam step; views "
            "excluded, a Triton launch counts one; spsnn: fused Adam, dcls: torch's default):",
            "",
            "| config | model | LIF backend | batch | forward | backward | optimizer | total |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, row in ops:
            if "error" in row:
                lines.append(f"| {name} | {row['model']} | {row['backend']} | error | | | | |")
                continue
            o = row["ops"]
            lines.append(
                f"| {name} | {row['model']} | {row['backend']} | {row['batch']} | "
                f"{o['forward']} | {o['backward']} | {o['optimizer']} | {row['total']} |"
            )
    flops = [
        (n, e["flops"])
        for n, e in report["configs"].items()
        if "flops" in e and "error" not in e["flops"]
    ]
    if flops:
        lines += [
            "",
            "| config | delay op (forward) | matmul GFLOP/s | dense conv1d: ms (GFLOP/s) "
            "| fft: ms (dense-equiv GFLOP/s; own products GFLOP/s) | dft: ms (same) | auto |",
            "| --- | --- | ---: | --- | --- | --- | --- |",
        ]
        for name, f in flops:
            lines.append(
                f"| {name} | {f['shape']} | {f['matmul_gflops']:.0f} | "
                f"{f['dense_conv_s'] * 1e3:.0f} ({f['dense_conv_gflops']:.0f}) | "
                f"{f['fft_s'] * 1e3:.0f} ({f['fft_dense_equiv_gflops']:.0f}; "
                f"{f['fft_actual_matmul_gflops']:.0f}) {f['fft_plan']} | "
                f"{f['dft_s'] * 1e3:.0f} ({f['dft_dense_equiv_gflops']:.0f}; "
                f"{f['dft_actual_matmul_gflops']:.0f}) {f['dft_plan']} | {f['auto']} |"
            )
    for name, entry in report["configs"].items():
        s = entry.get("streaming")
        if s and "error" not in s:
            lines.append(
                f"\nstreaming ({name}, batch 1, no grad): layer.step() "
                f"{s['layer_step_ms_per_step']:.2f} ms/step; kernels built once "
                f"{s['cached_kernel_ms_per_step']:.2f} ms/step"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Dispatched ops of one training step, by neuron family: the launch-budget figure of issue 23.

On a GPU, an eager training step of a spiking network is bound by kernel launches, not
arithmetic; every op the dispatcher sees is (at least) one launch. This counts the ops of
one step (forward, backward, Adam) of the SHD-shape network (B = 8, T = 100,
140-256-256-20, 25 taps, Gaussian kernels, batch norm, dropout 0.4, as
``benchmarks/train_step.py`` builds it) with a ``TorchDispatchMode``: views excluded, a
fused custom op (``spsnn::*``) counted once, whatever its backend runs inside. The step
counted is the second (the first creates Adam's state). Target: ``adlif`` with learnable
constants dispatches at most 1.3x the ops of ``lif`` (``tests/benchmarks/test_op_count.py``).

Usage::

    TRITON_INTERPRET=1 python benchmarks/op_count.py            # Triton backend, no GPU
    python benchmarks/op_count.py --backend torch --families lif cuba adlif
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from spatial_layers.networks import SpatialSNN  # noqa: E402

#: The SHD shape of issue 23's launch budget.
SHD_SHAPE = dict(steps=100, batch=8, inputs=140, hidden=256, outputs=20, taps=25)
#: The ratio issue 23 allows: adlif's ops over lif's.
BUDGET = 1.3


class OpCounter(TorchDispatchMode):
    """Counts the ops dispatched inside it by name (views excluded)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            self.counts[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def network(family: str, shape: dict, backend: str, learn: bool = True) -> SpatialSNN:
    """The SHD-shape network of ``benchmarks/train_step.py`` with ``family`` neurons
    (learnable time constants for cuba and adlif with ``learn``)."""
    return SpatialSNN(
        shape["inputs"],
        shape["outputs"],
        [shape["hidden"], shape["hidden"]],
        dim=2,
        max_delay=shape["taps"] - 1,
        kernel="gauss",
        batch_norm=True,
        dropout=0.4,
        neuron=family,
        learn_beta=learn and family != "lif",
        backend=backend,
    )


def count_step(family: str, *, shape: dict = SHD_SHAPE, backend: str = "triton",
               learn: bool = True, seed: int = 0) -> OpCounter:  # fmt: skip
    """The ops of one training step (the second) of the ``family`` network."""
    torch.manual_seed(seed)
    net = network(family, shape, backend, learn)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    spikes = (torch.rand(shape["steps"], shape["batch"], shape["inputs"]) < 0.05).float()
    labels = torch.randint(shape["outputs"], (shape["batch"],))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(spikes).mean(0), labels)
        loss.backward()
        optimizer.step()

    step()
    counter = OpCounter()
    with counter:
        step()
    return counter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="triton", choices=("torch", "triton"))
    parser.add_argument("--families", nargs="+", default=["lif", "adlif"])
    parser.add_argument("--fixed", action="store_true", help="time constants not learned")
    parser.add_argument("--json", type=Path, help="write the counts here")
    args = parser.parse_args()
    results = {}
    for family in args.families:
        counter = count_step(family, backend=args.backend, learn=not args.fixed)
        results[family] = {"total": counter.total, "ops": dict(counter.counts.most_common())}
        print(f"{family}: {counter.total} ops", flush=True)
    if "lif" in results:
        for family, result in results.items():
            ratio = result["total"] / results["lif"]["total"]
            print(f"{family} / lif = {ratio:.3f} (budget {BUDGET})")
    if args.json:
        args.json.write_text(json.dumps({"shape": SHD_SHAPE, **results}, indent=1))


if __name__ == "__main__":
    main()

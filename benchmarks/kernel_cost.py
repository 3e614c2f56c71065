"""Cost of the delay kernel against max_delay on short sequences (issue 19, item 10).

A sequence of T steps uses taps 0 .. T - 1 only, so a ``SpatialDelay`` builds
min(T, max_delay + 1) taps; the Gaussian kernel still needs the normaliser over all
max_delay + 1 taps, which :class:`~spatial_layers.kernels.GaussianMass` computes
without them (window + Euler-Maclaurin). This script times one training step of the
layer alone (forward, backward through weights and coordinates) at T=10 for several
max_delay, each kernel kind, and reports each time over the max_delay=10 time of the
same kernel, measured in one run (interleaved repeats, median).

Usage::

    python benchmarks/kernel_cost.py            # 140 -> 256, batch 8, T=10
    python benchmarks/kernel_cost.py --quick    # small sizes, seconds

Writes JSON to benchmarks/results/ (gitignored) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from train_step import save_report  # noqa: E402

from spatial_layers import SpatialDelay  # noqa: E402

KINDS = ("gauss", "linear", "round")


def make_step(kind: str, max_delay: int, args: argparse.Namespace):
    torch.manual_seed(0)
    layer = SpatialDelay(args.inputs, args.outputs, max_delay=max_delay, kernel=kind)
    if args.sigma is not None:
        layer.sigma = args.sigma
    x = (torch.rand(args.steps, args.batch, args.inputs) < 0.1).float()

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        layer(x).square().mean().backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=10, help="sequence length T")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--inputs", type=int, default=140)
    parser.add_argument("--outputs", type=int, default=256)
    parser.add_argument("--max-delays", type=int, nargs="*", default=[10, 100, 1000, 5000])
    parser.add_argument("--kinds", nargs="*", default=list(KINDS), choices=KINDS)
    parser.add_argument("--sigma", type=float, help="Gaussian width (default: the layer's)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 2)))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.inputs, args.outputs, args.repeats = 20, 32, 3
    torch.set_num_threads(args.threads)
    base = args.max_delays[0]
    steps = {(k, m): make_step(k, m, args) for k in args.kinds for m in args.max_delays}
    for step in steps.values():  # warm-up (caches, allocator)
        step()
    times: dict[tuple[str, int], list[float]] = {key: [] for key in steps}
    for _ in range(args.repeats):  # interleaved, so load changes hit every row alike
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            times[key].append(time.perf_counter() - start)
    rows = []
    for kind in args.kinds:
        reference = statistics.median(times[(kind, base)])
        for max_delay in args.max_delays:
            median = statistics.median(times[(kind, max_delay)])
            rows.append(
                {
                    "kernel": kind,
                    "max_delay": max_delay,
                    "taps_built": min(args.steps, max_delay + 1),
                    "ms": median * 1e3,
                    "ratio": median / reference,
                    "times_s": times[(kind, max_delay)],
                }
            )
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads,
        "shape": {"T": args.steps, "B": args.batch, "C_in": args.inputs, "C_out": args.outputs},
        "sigma": args.sigma,
        "reference_max_delay": base,
        "rows": rows,
    }
    lines = [
        f"T={args.steps}, B={args.batch}, {args.inputs} -> {args.outputs}, forward + backward",
        "",
        f"| kernel | max_delay | taps built | ms / step | x the max_delay={base} step |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['kernel']} | {row['max_delay']} | {row['taps_built']} | "
            f"{row['ms']:.2f} | {row['ratio']:.2f} |"
        )
    print("\n".join(lines))
    save_report(report, args.out, f"kernel_cost{'-quick' if args.quick else ''}")


if __name__ == "__main__":
    main()

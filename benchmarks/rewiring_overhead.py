"""How much DEEP R / RigL / Dale add to the time of one training step.

Times a SpatialSNN training step (forward, backward, Adam step) alone and
with the rewiring callbacks' hooks called in the order Lightning calls them
(``on_train_batch_start`` -> forward/backward -> ``on_before_optimizer_step``
-> ``optimizer.step`` -> ``on_train_batch_end``), so that only the rewiring
work differs between rows. Prints a table and writes JSON to
``benchmarks/results/rewiring_overhead.json``.

    python benchmarks/rewiring_overhead.py                 # SHD-sized, CPU
    python benchmarks/rewiring_overhead.py --device cuda --batch-size 256
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import torch

from lightning_modules.callbacks import Dale, DeepR, RigL
from spatial_layers.networks import SpatialSNN
from spatial_layers.sparsity import set_density, spatial_delay_layers

RESULTS = Path(__file__).resolve().parent / "results"

SETUPS = {
    "static 90% mask, no rewiring": lambda: [],
    "RigL, delta_t=100": lambda: [RigL(0.9, delta_t=100)],
    "RigL, delta_t=1 (worst case)": lambda: [RigL(0.9, delta_t=1)],
    "DeepR": lambda: [DeepR(0.9, l1=1e-5, noise_temperature=1e-8)],
    "DeepR + RigL": lambda: [RigL(0.9), DeepR(0.9, l1=1e-5, noise_temperature=1e-8)],
    "Dale + DeepR + RigL": lambda: [
        Dale(0.8),
        RigL(0.9),
        DeepR(0.9, l1=1e-5, noise_temperature=1e-8),
    ],
}


class FakeTrainer(SimpleNamespace):
    """The few trainer attributes the callbacks read."""


class FakeModule(torch.nn.Module):
    """Holds the network as ``net`` (callbacks look for SpatialDelay inside); drops logs."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def log(self, *args, **kwargs) -> None:
        pass


def build_step(name: str, args: argparse.Namespace) -> Callable[[], None]:
    """One training step of a fresh network with the callbacks of setup ``name``."""
    torch.manual_seed(0)
    device = torch.device(args.device)
    net = SpatialSNN(
        args.inputs,
        args.classes,
        [args.hidden] * args.layers,
        dim=2,
        max_delay=args.max_delay,
        kernel="gauss",
    ).to(device)
    module = FakeModule(net)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    callbacks = SETUPS[name]()
    for _, layer in spatial_delay_layers(module):  # the same compute in every row
        set_density(layer, 0.1, torch.Generator().manual_seed(0))
    trainer = FakeTrainer(
        callbacks=callbacks,
        global_step=0,
        optimizers=[optimizer],
        estimated_stepping_batches=10 * (args.warmup + args.steps),
    )
    for callback in callbacks:
        callback.setup(trainer, module, "fit")
    for callback in callbacks:
        callback.on_train_start(trainer, module)
    x = (torch.rand(args.steps_t, args.batch_size, args.inputs, device=device) < 0.05).float()
    labels = torch.randint(args.classes, (args.batch_size,), device=device)

    hook_times: list[float] = []

    def step() -> None:
        hook = 0.0
        start = time.perf_counter()
        for callback in callbacks:
            callback.on_train_batch_start(trainer, module, None, 0)
        hook += time.perf_counter() - start
        optimizer.zero_grad(set_to_none=False)
        logits = net.run(x).membrane.max(0).values
        torch.nn.functional.cross_entropy(logits, labels).backward()
        synchronize(device)
        start = time.perf_counter()
        for callback in callbacks:
            callback.on_before_optimizer_step(trainer, module, optimizer)
        synchronize(device)
        hook += time.perf_counter() - start
        optimizer.step()
        trainer.global_step += 1
        synchronize(device)
        start = time.perf_counter()
        for callback in callbacks:
            callback.on_train_batch_end(trainer, module, None, None, 0)
        synchronize(device)
        hook_times.append(hook + time.perf_counter() - start)

    step.hook_times = hook_times
    return step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(args: argparse.Namespace) -> list[dict]:
    """Step and rewiring-hook times per setup, steps interleaved across setups."""
    device = torch.device(args.device)

    steps = {name: build_step(name, args) for name in SETUPS}
    for step in steps.values():
        for _ in range(args.warmup):
            step()
        step.hook_times.clear()
    times: dict[str, list[float]] = {name: [] for name in SETUPS}
    for _ in range(args.steps):  # round-robin: machine noise hits every setup alike
        for name, step in steps.items():
            synchronize(device)
            start = time.perf_counter()
            step()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    rows = []
    for name, values in times.items():
        rows.append(
            {
                "setup": name,
                "step_median_ms": 1e3 * statistics.median(values),
                "step_min_ms": 1e3 * min(values),
                "rewiring_median_ms": 1e3 * statistics.median(steps[name].hook_times),
            }
        )
    base = rows[0]
    for row in rows:
        # Rewiring time over the plain step's time: robust on a busy machine, where
        # whole-step differences drown in noise. Opening RigL's masks adds no compute
        # to forward/backward (same dense kernels), so the hooks are the whole cost.
        row["overhead_pct"] = 100 * row["rewiring_median_ms"] / base["step_median_ms"]
        row["step_overhead_pct"] = 100 * (row["step_median_ms"] / base["step_median_ms"] - 1)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--inputs", type=int, default=140)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--max-delay", type=int, default=25)
    parser.add_argument("--steps-t", type=int, default=100, help="time steps per sample")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--out", type=Path, default=RESULTS / "rewiring_overhead.json")
    args = parser.parse_args(argv)

    rows = measure(args)

    print(
        f"SpatialSNN {args.inputs}-{'-'.join([str(args.hidden)] * args.layers)}-{args.classes}, "
        f"D=2, max_delay={args.max_delay}, T={args.steps_t}, batch={args.batch_size}, "
        f"sparsity 0.9, {args.device}"
    )
    print(
        f"{'setup':30s} {'step ms':>9s} {'min ms':>8s} {'rewiring ms':>12s} {'overhead':>9s} "
        f"{'step diff':>10s}"
    )
    for row in rows:
        print(
            f"{row['setup']:30s} {row['step_median_ms']:9.2f} {row['step_min_ms']:8.2f} "
            f"{row['rewiring_median_ms']:12.3f} {row['overhead_pct']:8.2f}% "
            f"{row['step_overhead_pct']:+9.1f}%"
        )
    print(
        "overhead = rewiring hook time / plain step time (medians); step diff = whole-step change"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "device_name": torch.cuda.get_device_name()
            if args.device.startswith("cuda")
            else "cpu",
        },
        "rows": rows,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

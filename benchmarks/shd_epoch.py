"""One epoch of the SHD recipe end to end: data loading included, on files of the real size.

Writes SHD-format HDF5 files with the real split sizes (8 156 training and 2 264 test
samples, 700 units; ``lightning_modules.data.synthetic``, learnable on purpose) unless
they exist, then runs ``spsnn fit`` of ``recipes/shd_dcls_free.yaml`` +
``recipes/shd_spatial_d2.yaml`` for one epoch through the real CLI (tonic reading,
binning, the DataModule's loaders, validation and the test after fit included) and
reports training samples per second, measured from the first to the last training
batch of the epoch, beside what the train-step figure alone predicts (``train_step.py``'s
median step time x the number of training steps). The gap is what data loading,
logging and callbacks cost.

Usage::

    python benchmarks/shd_epoch.py --accelerator gpu --train-step-ms 36
    python benchmarks/shd_epoch.py --accelerator gpu --cuda-graphs
    python benchmarks/shd_epoch.py --samples 64 16 --events 300      # seconds, a smoke run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from train_step import save_report  # noqa: E402

#: Filled by :class:`EpochTimer` (the CLI builds it from its class path, in this process).
RESULTS: dict = {}
#: SHD's split sizes (Cramer et al. 2020).
SHD_SIZES = (8156, 2264)


class EpochTimer(Callback):
    """Times the first training epoch from its first batch's start to its last batch's end."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == 0 and batch_idx == 0:
            _sync()
            RESULTS["start"] = time.perf_counter()
            RESULTS["samples"] = RESULTS["batches"] = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == 0:
            RESULTS["samples"] += len(batch[1])
            RESULTS["batches"] += 1

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 0:
            _sync()
            RESULTS["seconds"] = time.perf_counter() - RESULTS["start"]
            RESULTS["device"] = str(pl_module.device)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def write_data(data_dir: Path, train: int, test: int, events: int) -> None:
    from lightning_modules.data.heidelberg import data_file
    from lightning_modules.data.synthetic import make_synthetic_heidelberg

    if all(data_file(data_dir, "SHD", split).exists() for split in ("train", "test")):
        print(f"using the SHD-format files in {data_dir}", flush=True)
        return
    print(f"writing {train} + {test} SHD-format samples to {data_dir} ...", flush=True)
    make_synthetic_heidelberg(
        data_dir,
        "SHD",
        num_samples={"train": train, "test": test},
        speakers={"train": range(10), "test": range(10, 12)},
        events_per_sample=events,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="where the SHD files are or go (tmp)")
    parser.add_argument(
        "--samples", type=int, nargs=2, default=SHD_SIZES, metavar=("TRAIN", "TEST")
    )
    parser.add_argument("--events", type=int, default=8000, help="spikes per synthetic sample")
    parser.add_argument("--accelerator", default="gpu" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--cuda-graphs", action="store_true", help="model.cuda_graphs true")
    parser.add_argument("--train-step-ms", type=float, help="train_step.py's spatial shd figure")
    parser.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/...)")
    args = parser.parse_args()

    import shd_epoch  # the module the CLI imports EpochTimer from (this file, by name)

    from lightning_modules.cli import main as spsnn

    work = Path(tempfile.mkdtemp(prefix="shd_epoch-"))
    data_dir = args.data_dir or work / "data"
    write_data(data_dir, *args.samples, args.events)
    started = time.perf_counter()
    spsnn(
        [
            "fit",
            "--config", str(ROOT / "recipes" / "shd_dcls_free.yaml"),
            "--config", str(ROOT / "recipes" / "shd_spatial_d2.yaml"),
            "--data.init_args.data_dir", str(data_dir),
            "--trainer.max_epochs", "1",
            "--trainer.accelerator", args.accelerator,
            "--trainer.default_root_dir", str(work / "runs"),
            "--trainer.enable_progress_bar", "false",
            "--trainer.callbacks+=shd_epoch.EpochTimer",
            "--model.cuda_graphs", str(args.cuda_graphs).lower(),
            "--run.wandb", "false",
        ]
    )  # fmt: skip
    timing = shd_epoch.RESULTS
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%d"),
        "cuda_graphs": args.cuda_graphs,
        "train_samples": timing["samples"],
        "train_batches": timing["batches"],
        "epoch_s": timing["seconds"],
        "samples_per_s": timing["samples"] / timing["seconds"],
        "ms_per_step_measured": 1e3 * timing["seconds"] / timing["batches"],
        "fit_and_test_wall_s": time.perf_counter() - started,
        "events_per_sample": args.events,
    }
    if args.train_step_ms:
        predicted_s = args.train_step_ms * timing["batches"] / 1e3
        report["predicted_epoch_s"] = predicted_s
        report["measured_over_predicted"] = timing["seconds"] / predicted_s
    lines = [
        "| device | cuda graphs | train samples | steps | epoch s | samples / s | ms / step "
        "| predicted epoch s (train_step) | measured / predicted |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {report['gpu'] or timing['device']} | {args.cuda_graphs} | {timing['samples']} | "
        f"{timing['batches']} | {timing['seconds']:.1f} | {report['samples_per_s']:.0f} | "
        f"{report['ms_per_step_measured']:.1f} | "
        f"{report.get('predicted_epoch_s', float('nan')):.1f} | "
        f"{report.get('measured_over_predicted', float('nan')):.2f} |",
    ]
    print("\n" + "\n".join(lines))
    save_report(report, args.out, "shd_epoch")


if __name__ == "__main__":
    main()

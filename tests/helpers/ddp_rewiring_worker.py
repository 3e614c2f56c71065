"""Two-process CPU DDP fit with Dale + RigL + DEEP R; each rank saves what it ended with.

Run from the repository root as ``python -m tests.helpers.ddp_rewiring_worker OUT_DIR MODE``
(Lightning's ``ddp`` strategy relaunches the same module for rank 1).
``tests/lightning_modules/callbacks/test_rewiring.py`` compares the ranks' files:
identical masks and weights mean identical rewiring decisions, since the ranks see
different batches, draw from differently seeded global RNGs, and DDP does not
broadcast weights after the start.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import lightning as L
import torch

from lightning_modules.callbacks import Dale, DeepR, RigL
from spatial_layers.sparsity import spatial_delay_layers
from tests.helpers.rewiring import TinyClassifier, loader, trainer


class SaveState(L.Callback):
    def __init__(self, out_dir: Path, deepr: DeepR, rigl: RigL) -> None:
        self.out_dir = out_dir
        self.deepr = deepr
        self.rigl = rigl
        self.rigl_changes = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.rigl_changes += sum(e.dropped for e in self.rigl.last_events)

    def on_train_end(self, trainer, pl_module):
        state = {
            name: {
                "mask": layer.mask.clone(),
                "weight": layer.weight.detach().clone(),
                "sign": layer.sign.clone(),
            }
            for name, layer in spatial_delay_layers(pl_module)
        }
        state["removed"] = dict(self.deepr.removed_total)
        state["rigl_changes"] = self.rigl_changes
        torch.save(state, self.out_dir / f"rank{trainer.global_rank}.pt")


def main(out_dir: Path, mode: str) -> None:
    # Ranks are seeded differently on purpose: DDP syncs the initial parameters and
    # buffers, so only the rewiring callbacks' own seeding can keep them in step.
    L.seed_everything(100 + int(os.environ.get("LOCAL_RANK", "0")), workers=True)
    torch.set_num_threads(1)
    model = TinyClassifier(lr=3e-2)
    deepr = DeepR(0.8, l1=1e-3, noise_temperature=1e-4, seed=5)
    rigl = RigL(0.8, alpha=0.5, delta_t=2, seed=5)
    callbacks = [Dale(0.8, seed=5), rigl] + ([deepr] if mode == "deepr+rigl" else [])
    fit = trainer(
        [*callbacks, SaveState(out_dir, deepr, rigl)],
        max_steps=12,
        devices=2,
        strategy="ddp",
        deterministic=False,
    )
    fit.fit(model, loader(num_samples=96, batch_size=8))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])

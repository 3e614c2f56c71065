"""What every spsnn DataModule shares: train/validation/test splits built on demand, loaders.

A subclass knows how to build one split (:meth:`SplitDataModule.build_split`)
and what its samples look like (``num_inputs``, ``num_classes``); this base
decides which splits a stage needs, builds each once, and serves them in
batches: the training split reshuffled every epoch by
:class:`~lightning_modules.data.sampling.EpochShuffleSampler` (an order that
depends on ``seed`` and the epoch only, so resumed and DDP runs see the same
batches), validation and test in order; under DDP each rank evaluates its own share of
them, every sample once (:class:`~lightning_modules.data.sampling.UnpaddedDistributedSampler`).
"""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader, Dataset, Sampler

from lightning_modules.data.sampling import EpochShuffleSampler, UnpaddedDistributedSampler
from spatial_layers.arguments import check_count, check_seed

SPLITS = ("train", "val", "test")
"""Every split a DataModule serves."""

STAGE_SPLITS = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("test",),
}
"""The splits a Lightning stage needs; any other stage (None) takes all."""


class SplitDataModule(L.LightningDataModule):
    """Base of spsnn's DataModules: splits built once when a stage needs them, and loaders.

    Batches: ``(spikes, labels)``, spikes float32 (B, T, C) with ``T = num_steps``
    and ``C = num_inputs``, labels int64 (B,).

    Args:
        batch_size: samples per batch (all three loaders).
        num_steps: T, time steps per sample.
        seed: seed of the training shuffle (epoch e uses ``seed + e``), in ``[0, 2**32)``.
        num_workers: DataLoader worker processes.

    Attributes:
        datasets: the splits built so far, by name (``"train"``, ``"val"``, ``"test"``).
    """

    def __init__(self, batch_size: int, num_steps: int, seed: int, num_workers: int) -> None:
        super().__init__()
        self.batch_size = check_count("batch_size", batch_size, 1)
        self._num_steps = check_count("num_steps", num_steps, 1)
        self.seed = check_seed("seed", seed)
        self.num_workers = check_count("num_workers", num_workers, 0)
        self.datasets: dict[str, Dataset] = {}

    @property
    def num_steps(self) -> int:
        """T, time steps per sample."""
        return self._num_steps

    @property
    def input_settings(self) -> dict[str, object]:
        """The settings that define the network's input (shape, encoding, binning, classes),
        as plain data: a checkpoint records them, and a run that evaluates or resumes it
        on data with other ones is refused (``batch_size``, split sizes and seeds may differ)."""
        return {
            "num_steps": self.num_steps,
            "num_inputs": self.num_inputs,
            "num_classes": self.num_classes,
            **self.encoding_settings(),
        }

    def encoding_settings(self) -> dict[str, object]:
        """A subclass's settings of :attr:`input_settings` beyond T, C and the classes."""
        return {}

    def build_split(self, split: str) -> None:
        """Puts ``split`` (one of :data:`SPLITS`) into :attr:`datasets`.

        It may build another split along with it (a validation set held out
        of the training file fills both).
        """
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Builds (once) the splits the stage needs: fit -> train + val, validate -> val,
        test and predict -> test, None -> all."""
        for split in STAGE_SPLITS.get(stage or "", SPLITS):
            if split not in self.datasets:
                self.build_split(split)

    def _loader(self, split: str) -> DataLoader:
        if split not in self.datasets:
            self.build_split(split)
        dataset = self.datasets[split]
        sampler: Sampler | None = None
        if split == "train":
            sampler = EpochShuffleSampler(len(dataset), self.seed)
        else:  # Lightning's DistributedSampler would repeat samples to even out the ranks
            shards = self._shards()
            if shards is not None:
                sampler = UnpaddedDistributedSampler(dataset, **shards)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def _shards(self) -> dict[str, int] | None:
        """``num_replicas`` and ``rank`` of this process when a Trainer runs it on several
        devices, else None."""
        trainer = getattr(self, "trainer", None)
        kwargs = getattr(trainer, "distributed_sampler_kwargs", None) if trainer else None
        if not kwargs or kwargs.get("num_replicas", 1) <= 1:
            return None
        return {"num_replicas": kwargs["num_replicas"], "rank": kwargs["rank"]}

    def train_dataloader(self) -> DataLoader:
        """The training split, reshuffled every epoch (order set by ``seed`` and the epoch)."""
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        """The validation split, in order (under DDP: this rank's share, each sample once)."""
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        """The test split, in order (under DDP: this rank's share, each sample once)."""
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        """The test split, in order: what ``spsnn predict`` writes predictions for."""
        return self._loader("test")

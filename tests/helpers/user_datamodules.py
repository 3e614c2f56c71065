"""DataModules as a user might write them, lacking what spsnn links into the network
(loaded by ``class_path`` from the fault tests)."""

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset


class NoClasses(L.LightningDataModule):
    """Defines ``num_inputs`` and ``num_steps`` but no ``num_classes``."""

    def __init__(self, num_inputs: int = 5):
        super().__init__()
        self.num_inputs = num_inputs
        self.num_steps = 10

    def train_dataloader(self):
        data = TensorDataset(torch.rand(16, 10, 5), torch.randint(0, 3, (16,)))
        return DataLoader(data, batch_size=8)


class NoneInputs(NoClasses):
    """``num_inputs`` is None."""

    def __init__(self):
        super().__init__()
        self.num_inputs = None
        self.num_classes = 3


class IgnoredLabels(NoClasses):
    """Labels -100: ``cross_entropy`` silently skips that id (a run that learns nothing)."""

    def __init__(self):
        super().__init__()
        self.num_classes = 3

    def train_dataloader(self):
        data = TensorDataset(torch.rand(16, 10, 5), torch.full((16,), -100))
        return DataLoader(data, batch_size=8)


class Int32Labels(IgnoredLabels):
    """Labels int32: ``cross_entropy`` takes only int64 or uint8 class ids."""

    def train_dataloader(self):
        data = TensorDataset(torch.rand(16, 10, 5), torch.randint(0, 3, (16,), dtype=torch.int32))
        return DataLoader(data, batch_size=8)


class ZeroSteps(IgnoredLabels):
    """``num_steps = 0``: refused before as a bare ``0 does not conform to restriction v>0``."""

    def __init__(self):
        super().__init__()
        self.num_steps = 0


class Batches(IgnoredLabels):
    """Declares T = 10, C = 5 and 3 classes; serves ``samples`` samples of shape ``shape`` in
    every split."""

    samples = 16
    shape = (10, 5)

    def _loader(self):
        x = torch.rand(self.samples, *self.shape)
        return DataLoader(TensorDataset(x, torch.randint(0, 3, (self.samples,))), batch_size=8)

    def train_dataloader(self):
        return self._loader()

    def val_dataloader(self):
        return self._loader()

    def test_dataloader(self):
        return self._loader()


class EmptySplits(Batches):
    """Every split empty: ``fit`` ended with "No training batches" and exit status 0."""

    samples = 0


class EmptyVal(Batches):
    """An empty validation split: ``val_acc`` is never logged."""

    def val_dataloader(self):
        return DataLoader(TensorDataset(torch.rand(0, 10, 5), torch.zeros(0, dtype=torch.long)))


class LongerBatches(Batches):
    """Declares num_steps = 10, serves 13 steps: trained, and the checkpoint said 10."""

    shape = (13, 5)


class WiderBatches(Batches):
    """Declares num_inputs = 5, serves 7 channels."""

    shape = (10, 7)


class OddTestSplit(L.LightningDataModule):
    """A complete Yin-Yang-shaped DataModule whose test split (17 samples) is not a multiple
    of 2 devices, with plain loaders: under DDP Lightning's DistributedSampler pads it."""

    def __init__(self):
        super().__init__()
        self.num_inputs, self.num_classes, self.num_steps = 5, 3, 12

    def _loader(self, samples: int) -> DataLoader:
        generator = torch.Generator().manual_seed(samples)
        spikes = (torch.rand(samples, 12, 5, generator=generator) > 0.8).float()
        return DataLoader(TensorDataset(spikes, torch.arange(samples) % 3), batch_size=8)

    def train_dataloader(self):
        return self._loader(16)

    def val_dataloader(self):
        return self._loader(16)

    def test_dataloader(self):
        return self._loader(17)


class EmptyTest(Batches):
    """An empty test split only: refused after fit had trained and saved checkpoints (when
    the test after fit started)."""

    def test_dataloader(self):
        return DataLoader(TensorDataset(torch.rand(0, 10, 5), torch.zeros(0, dtype=torch.long)))

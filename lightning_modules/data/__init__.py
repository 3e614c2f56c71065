"""DataModules: Yin-Yang (own generator, spike-time encoding) and SHD / SSC (tonic).

Every DataModule yields ``(spikes, labels)`` batches, spikes float32 (B, T, C) and
labels int64 (B,), and knows ``num_inputs`` (C), ``num_classes`` and ``num_steps``
(T) right after construction, without touching data. Splits and loaders are
shared (:class:`~lightning_modules.data.splits.SplitDataModule`); a DataModule
says how to build one split. To add a data set, subclass it in ``data/<name>.py``.
"""

from lightning_modules.data.encoding import bin_events, event_bin_indices, latency_encode
from lightning_modules.data.heidelberg import (
    HeidelbergDataMissingError,
    HeidelbergDataModule,
    SHDDataModule,
    SSCDataModule,
    find_data_files,
    split_train_val,
)
from lightning_modules.data.hsd_format import HeidelbergFileError, check_header
from lightning_modules.data.sampling import (
    EpochShuffleSampler,
    UnpaddedDistributedSampler,
    evaluation_sampler_problem,
)
from lightning_modules.data.splits import SplitDataModule
from lightning_modules.data.synthetic import make_synthetic_heidelberg, write_heidelberg_file
from lightning_modules.data.yinyang import YinYangDataModule, make_yinyang

__all__ = [
    "EpochShuffleSampler",
    "HeidelbergDataMissingError",
    "HeidelbergDataModule",
    "HeidelbergFileError",
    "SHDDataModule",
    "SSCDataModule",
    "SplitDataModule",
    "UnpaddedDistributedSampler",
    "YinYangDataModule",
    "bin_events",
    "check_header",
    "evaluation_sampler_problem",
    "event_bin_indices",
    "find_data_files",
    "latency_encode",
    "make_synthetic_heidelberg",
    "make_yinyang",
    "split_train_val",
    "write_heidelberg_file",
]

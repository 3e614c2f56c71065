"""Where the SHD/SSC files may lie: tonic's layout or the bare files, never both."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from lightning_modules.data.heidelberg import (
    SHD,
    HeidelbergDataMissingError,
    SHDDataModule,
    SSCDataModule,
    find_data_files,
)
from lightning_modules.data.synthetic import make_synthetic_heidelberg


@pytest.fixture
def tonic_dir(tmp_path):
    return make_synthetic_heidelberg(
        tmp_path / "tonic", "SHD", num_samples={"train": 20, "test": 8}, events_per_sample=40,
        duration_s=0.9,
    )  # fmt: skip


def batches(dm):
    dm.setup("fit")
    dm.setup("test")
    return {
        s: torch.cat([b[0] for b in getattr(dm, f"{s}_dataloader")()])
        for s in ("train", "val", "test")
    }


def test_the_bare_files_read_as_tonics_layout(tonic_dir, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(tonic_dir / "SHD", bare)  # data_dir holds shd_train.h5, shd_test.h5
    assert find_data_files(bare, "SHD", ("train", "test")) == {
        "train": bare / "shd_train.h5",
        "test": bare / "shd_test.h5",
    }
    from_tonic, from_bare = SHDDataModule(tonic_dir), SHDDataModule(bare)
    got, want = batches(from_bare), batches(from_tonic)
    for split in want:
        assert torch.equal(got[split], want[split])
    assert (bare / "spsnn_cache").is_dir() and (tonic_dir / "SHD" / "spsnn_cache").is_dir()
    assert from_bare.input_settings == from_tonic.input_settings  # the layout is not the data


def test_tonics_own_class_reads_the_tonic_layout(tonic_dir):
    source = SHD(str(tonic_dir), train=False)  # tonic.datasets.SHD, without downloading
    events, label = source[3]
    dm = SHDDataModule(tonic_dir)
    dm.setup("test")
    assert label == dm.datasets["test"][3][1].item()
    assert int(dm.datasets["test"][3][0].sum()) == int((events["t"] < 1_000_000).sum())


def test_one_layout_per_data_set_never_a_mix(tonic_dir):
    (tonic_dir / "SHD" / "shd_test.h5").rename(tonic_dir / "shd_test.h5")
    with pytest.raises(HeidelbergDataMissingError) as info:
        SHDDataModule(tonic_dir)
    message = str(info.value)
    assert f"tonic's layout ({tonic_dir}/SHD/) lacks {tonic_dir}/SHD/shd_test.h5" in message
    assert f"bare layout ({tonic_dir}/) lacks {tonic_dir}/shd_train.h5" in message
    assert "\n" not in message


def test_both_layouts_complete_is_refused(tonic_dir):
    for name in ("shd_train.h5", "shd_test.h5"):
        shutil.copy(tonic_dir / "SHD" / name, tonic_dir / name)
    with pytest.raises(ValueError, match="holds the SHD files twice"):
        SHDDataModule(tonic_dir)


def test_ssc_official_valid_needs_its_file_in_the_same_layout(tmp_path):
    data = make_synthetic_heidelberg(
        tmp_path, "SSC", num_samples={"train": 10, "valid": 4, "test": 4}, events_per_sample=20,
        duration_s=0.9,
    )  # fmt: skip
    for name in ("ssc_train.h5", "ssc_test.h5"):
        (data / "SSC" / name).rename(data / name)
    (data / "SSC" / "ssc_valid.h5").unlink()
    with pytest.raises(HeidelbergDataMissingError, match=r"bare layout .* lacks .*ssc_valid\.h5"):
        SSCDataModule(data)
    dm = SSCDataModule(data, official_valid=False, split_by_speaker=False)
    dm.setup("fit")
    assert len(dm.datasets["train"]) + len(dm.datasets["val"]) == 10
    assert np.isfinite(dm.event_counts["test"]["lost_fraction"])

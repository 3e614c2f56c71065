"""Where the SHD / SSC files lie: tonic's folder layout or the bare files.

::

    tonic's: <data_dir>/SHD/shd_{train,test}.h5        (what tonic.datasets.SHD(data_dir) reads)
             <data_dir>/SSC/ssc_{train,valid,test}.h5  (tonic.datasets.SSC(data_dir))
    bare:    <data_dir>/shd_{train,test}.h5            (the unzipped files alone)

:func:`find_data_files` takes every file of a data set from one layout; nothing is ever
downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import tonic.datasets

DATA_URL = "https://zenkelab.org/datasets/"
"""Where the Zenke lab publishes the files (tonic downloads from here too)."""

LAYOUTS = ("tonic's", "bare")
"""The folder layouts :func:`find_data_files` accepts, in the order it describes them."""


class HeidelbergDataMissingError(FileNotFoundError):
    """An SHD/SSC file is in neither layout under ``data_dir`` (nothing is downloaded)."""


def file_name(dataset: str, split: str) -> str:
    """The file of ``dataset`` ("SHD" or "SSC") and ``split`` ("train", "valid" (SSC only)
    or "test"), as tonic names it: ``shd_train.h5``."""
    tonic_class = {"SHD": tonic.datasets.SHD, "SSC": tonic.datasets.SSC}[dataset]
    return getattr(tonic_class, f"{split}_zip").removesuffix(".zip")  # "shd_train.h5.zip"


def data_file(data_dir: str | os.PathLike, dataset: str, split: str) -> Path:
    """Path of a file in tonic's layout (what ``tonic.datasets.SHD(data_dir)`` reads):
    ``<data_dir>/<dataset>/<dataset lower>_<split>.h5``.

    >>> data_file("/data", "SHD", "train").as_posix()
    '/data/SHD/shd_train.h5'
    """
    return Path(os.path.expanduser(data_dir)) / dataset / file_name(dataset, split)


def bare_file(data_dir: str | os.PathLike, dataset: str, split: str) -> Path:
    """Path of a file in the bare layout: ``<data_dir>/<dataset lower>_<split>.h5``.

    >>> bare_file("/data/SHD", "SHD", "test").as_posix()
    '/data/SHD/shd_test.h5'
    """
    return Path(os.path.expanduser(data_dir)) / file_name(dataset, split)


def _tonic_fetch_command(dataset: str, data_dir: str, splits: Sequence[str]) -> str:
    if dataset == "SHD":
        calls = [f"tonic.datasets.SHD({data_dir!r}, train={s == 'train'})" for s in splits]
    else:
        calls = [f"tonic.datasets.SSC({data_dir!r}, split={s!r})" for s in splits]
    return 'python -c "import tonic; ' + "; ".join(calls) + '"'


def find_data_files(
    data_dir: str | os.PathLike, dataset: str, splits: Sequence[str]
) -> dict[str, Path]:
    """The files of ``splits``, all from one layout: tonic's (``<data_dir>/<dataset>/``)
    or the bare one (``<data_dir>/`` itself).

    A path that exists counts as found, whatever it is (a folder named ``shd_test.h5``
    is then refused by the file check, by name).

    Raises:
        HeidelbergDataMissingError: neither layout has every file; one line naming
            ``data_dir``, what each layout lacks (an unextracted ``.zip``/``.gz`` by
            name), where to get the files and the tonic command that fetches them.
        ValueError: both layouts have every file (which one is meant is not known).
    """
    root = Path(os.path.expanduser(data_dir))
    candidates = {
        "tonic's": {s: data_file(root, dataset, s) for s in splits},
        "bare": {s: bare_file(root, dataset, s) for s in splits},
    }
    complete = [
        name for name, files in candidates.items() if all(_exists(p) for p in files.values())
    ]
    if len(complete) == 1:
        return candidates[complete[0]]
    if len(complete) == 2:
        raise ValueError(
            f"data_dir={str(data_dir)!r} holds the {dataset} files twice, in tonic's layout "
            f"({root / dataset}/) and bare ({root}/): remove one copy, or set data_dir to "
            f"{root / dataset} (bare layout there)"
        )
    state = "lacks them" if root.is_dir() else "is a file" if root.exists() else "does not exist"
    folders = {"tonic's": root / dataset, "bare": root}
    partial = [n for n, files in candidates.items() if any(_exists(p) for p in files.values())]
    if partial:
        found = "; ".join(
            f"{name} layout ({folders[name]}/) lacks "
            + ", ".join(str(p) for p in candidates[name].values() if not _exists(p))
            for name in partial
        )
    else:
        found = (
            f"expected {', '.join(str(p) for p in candidates[LAYOUTS[0]].values())} (tonic's "
            f"layout) or {', '.join(p.name for p in candidates['bare'].values())} directly in "
            f"{root}/ (bare layout)"
        )
    archives = [
        archive.name
        for files in candidates.values()
        for path in files.values()
        if not _exists(path)
        for archive in (Path(f"{path}.zip"), Path(f"{path}.gz"))
        if archive.is_file()
    ]
    if archives:
        found += f" (found {', '.join(archives)}: extract it beside itself)"
    raise HeidelbergDataMissingError(
        f"{dataset} data not found (data_dir={str(data_dir)!r} {state}): {found}"
        + f". spsnn reads <data_dir>/{dataset}/*.h5 (tonic's layout) or <data_dir>/*.h5 and "
        f"never downloads: set `data_dir` to the folder that holds them. Get the files from "
        f"{DATA_URL} ({', '.join(p.name + '.zip' for p in candidates[LAYOUTS[0]].values())}) "
        f"and unzip them into {root / dataset}/, or on a machine with internet access let "
        f"tonic download and unzip them: {_tonic_fetch_command(dataset, str(root), splits)} "
        f"and copy that {dataset}/ folder into {root}/"
    )


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


def check_data_files(data_dir: str | os.PathLike, dataset: str, splits: Sequence[str]) -> None:
    """Raise :class:`HeidelbergDataMissingError` unless one layout has every split's file
    (see :func:`find_data_files`)."""
    find_data_files(data_dir, dataset, splits)

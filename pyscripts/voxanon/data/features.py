"""Feature matrices in Kaldi ark/scp through kaldiio, one shard per job, written atomically.

A shard is ``<dir>/<name>.<job>.ark`` + ``.scp``. It is written under temp names and renamed
when complete; the ``.scp`` is renamed last, so an existing shard scp means a finished shard and
a killed job leaves only temp files, which the next run overwrites.

Matrices are stored as float32 Kaldi matrices (``FM``, readable by Kaldi's own tools) or, with
``dtype="float16"``, as float16 ``.npy`` entries inside the ark (half the disk; kaldiio reads them
back transparently, Kaldi's binaries do not). Readers convert to float32 themselves.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, Literal, get_args

import kaldiio
import numpy as np


def shard_paths(feat_dir: str | Path, name: str, job: int) -> tuple[Path, Path]:
    feat_dir = Path(feat_dir)
    return feat_dir / f"{name}.{job}.ark", feat_dir / f"{name}.{job}.scp"


Dtype = Literal["float32", "float16"]
DTYPES = get_args(Dtype)


def write_shard(feat_dir: str | Path, name: str, job: int, items: Iterable[tuple[str, np.ndarray]],
                dtype: Dtype = "float32") -> Path:
    """Write ``(utt, matrix)`` items as one shard of ``dtype`` matrices; returns the shard's scp path."""
    if dtype not in DTYPES:
        raise ValueError(f"feature dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    ark, scp = shard_paths(feat_dir, name, job)
    ark.parent.mkdir(parents=True, exist_ok=True)
    tmp_ark, tmp_scp = ark.with_suffix(".ark.tmp"), scp.with_suffix(".scp.tmp")
    # Kaldi's binary matrices are float32/float64 only: float16 goes in as .npy entries.
    with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}",
                             write_function="numpy" if dtype == "float16" else None) as writer:
        for utt, mat in items:
            with np.errstate(over="ignore"):
                stored = np.ascontiguousarray(mat, dtype=dtype)
            if dtype == "float16" and np.isinf(stored).any() and not np.isinf(mat).any():
                raise ValueError(f"{utt}: values beyond float16's range (|x| > 65504); store float32")
            writer(utt, stored)
    # The scp records the ark's file name: point it at the final name before renaming.
    lines = tmp_scp.read_text(encoding="utf-8").splitlines()
    fixed = [line.replace(f" {tmp_ark}:", f" {ark}:", 1) for line in lines]
    tmp_scp.write_text("".join(f"{line}\n" for line in fixed), encoding="utf-8")
    os.replace(tmp_ark, ark)
    os.replace(tmp_scp, scp)
    return scp


def combine_scps(scps: Iterable[str | Path], out_scp: str | Path) -> None:
    """Concatenate shard scps into one sorted scp (atomic)."""
    from voxanon.fileio import atomic_write_text

    lines = []
    for scp in scps:
        lines.extend(line for line in Path(scp).read_text(encoding="utf-8").splitlines() if line.strip())
    lines.sort(key=lambda line: line.split(maxsplit=1)[0].encode())
    atomic_write_text(out_scp, "".join(f"{line}\n" for line in lines))


def read_scp(scp: str | Path) -> Iterator[tuple[str, np.ndarray]]:
    """Iterate ``(utt, matrix)`` over an scp in its order."""
    with kaldiio.ReadHelper(f"scp:{scp}") as reader:
        for utt, mat in reader:
            yield utt, np.asarray(mat)


def load_scp(scp: str | Path) -> "kaldiio.utils.LazyLoader":
    """Random access by utterance id (lazy: matrices are read when indexed)."""
    return kaldiio.load_scp(str(scp))

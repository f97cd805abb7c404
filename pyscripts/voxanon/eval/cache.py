"""Evaluation caches keyed on the audio itself, not on the set name.

Every cached value (an embedding, a transcript, SER posteriors) is stored with the *stamp* of the
audio it came from: the resolved wav.scp entry and, for a file, its size and mtime. A value whose
stamp no longer matches (audio replaced under the same set name, a dir re-made) is recomputed.

``ArrayCache`` holds the arrays of one set and one model in one ``.npz``. Entries accumulate: a
request for some utterances never drops the others (trial lists that share an enrollment set, the
speakers of one SER fold), and ``save`` rewrites the file atomically (temporary file + rename), so
a killed run keeps what was saved and resumes from it. ``TextCache`` is an append-only JSON-lines
file, so an interrupted run resumes.
"""
from __future__ import annotations

import json
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from voxanon.audio import is_pipe
from voxanon.data.kaldi import DataDir, resolve_wav

log = logging.getLogger("voxanon.cache")

FORMAT = 2  # npz layout: __format__, __tag__, __utts__, __stamps__, then __values__ or v<i> arrays


def audio_stamp(data: DataDir, utt: str) -> str:
    entry = resolve_wav(data, utt)
    if is_pipe(entry):
        return entry
    path = Path(entry) if Path(entry).is_absolute() or data.path is None else data.path / entry
    try:
        st = path.stat()
    except OSError:
        return entry  # missing: loading it fails and names it
    return f"{path}|{st.st_size}|{st.st_mtime_ns}"


class ArrayCache:
    """{utt: array} in ``path`` (.npz), valid for one model ``tag`` and the audio stamps.

    The file is read once (on the first ``load``); ``put`` adds entries in memory, ``save`` writes
    every entry (those read, those added) atomically. A file of another model or format, or one
    that cannot be read (cut by a crash before the rename, hand-edited), counts as empty.
    """

    def __init__(self, path: Path, tag: str):
        self.path, self.tag = Path(path), tag
        self._entries: dict[str, tuple[str, np.ndarray]] | None = None
        self._dirty = False

    def _read(self) -> dict[str, tuple[str, np.ndarray]]:
        if self._entries is not None:
            return self._entries
        self._entries = {}
        if not self.path.is_file():
            return self._entries
        try:
            with np.load(self.path) as z:
                if "__format__" not in z.files or int(z["__format__"]) != FORMAT or str(z["__tag__"]) != self.tag:
                    return self._entries
                utts, stamps = [str(u) for u in z["__utts__"]], [str(s) for s in z["__stamps__"]]
                if "__values__" in z.files:
                    values = list(z["__values__"])
                else:
                    values = [z[f"v{i}"] for i in range(len(utts))]
            self._entries = {u: (s, v) for u, s, v in zip(utts, stamps, values)}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            log.warning("%s: unreadable cache, recomputing its entries (%s)", self.path, err)
        return self._entries

    def __len__(self) -> int:
        return len(self._read())

    def load(self, stamps: dict[str, str]) -> dict[str, np.ndarray]:
        """The cached values of the utterances in ``stamps`` whose audio stamp still matches."""
        entries = self._read()
        return {u: entries[u][1] for u, s in stamps.items() if u in entries and entries[u][0] == s}

    def put(self, utt: str, stamp: str, value: np.ndarray) -> None:
        self._read()[utt] = (stamp, np.asarray(value))
        self._dirty = True

    def save(self, values: dict[str, np.ndarray] | None = None, stamps: dict[str, str] | None = None) -> None:
        """Add ``values`` (with their ``stamps``), then write every entry if any changed."""
        for utt, value in (values or {}).items():
            entries = self._read()
            if utt not in entries or entries[utt][0] != stamps[utt]:
                self.put(utt, stamps[utt], value)
        if not self._dirty:
            return
        entries = self._read()
        utts = list(entries)
        arrays = [entries[u][1] for u in utts]
        same = len({(a.shape, a.dtype.str) for a in arrays}) <= 1
        data = {"__values__": np.stack(arrays)} if same and arrays else {f"v{i}": a for i, a in enumerate(arrays)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, __format__=np.array(FORMAT), __tag__=np.array(self.tag),
                     __utts__=np.array(utts, dtype=str), __stamps__=np.array([entries[u][0] for u in utts], dtype=str),
                     **data)
        os.replace(tmp, self.path)
        self._dirty = False


class TextCache:
    """{utt: text} appended to ``path`` (JSON lines with the audio stamp)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self, stamps: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut by an interruption
                    continue
                if stamps.get(row["utt"]) == row["stamp"]:
                    out[row["utt"]] = row["text"]
        return out

    def append(self, texts: dict[str, str], stamps: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            for utt, text in texts.items():
                f.write(json.dumps({"utt": utt, "stamp": stamps[utt], "text": text}) + "\n")

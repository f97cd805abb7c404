"""Typed configuration: plain YAML read into frozen dataclasses.

A conf section is read into a frozen dataclass (``from_dict``; ``voxanon.experiment`` reads a
whole experiment this way). Unknown keys and wrong types are rejected with the dotted key name, so a
typo in ``conf/*.yaml`` fails at once instead of being silently ignored.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_KEY = "conf"  # a conf's base conf(s), and an admixture part given by its conf


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type."""


class _ConfLoader(yaml.SafeLoader):
    """YAML for confs: no aliases (``*a`` could expand a few lines into gigabytes), no duplicate
    keys (the later one would silently win)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(problem=f"alias *{event.anchor} is not allowed in a conf; write the value out",
                                       problem_mark=event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, typing.Hashable):
                continue  # the base class refuses it, saying why
            if key in seen:
                raise yaml.MarkedYAMLError(problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path) -> dict:
    """A conf file's mapping; a syntax error, an alias or a duplicate key is one line naming the
    file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: conf file not found")
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.load(f, Loader=_ConfLoader)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            raise ConfigError(f"{where}: {err.problem or err.context}") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def read_conf(path: str | Path) -> dict:
    """An experiment conf with its composition resolved.

    * Top level ``conf: BASE`` (or a list of bases, merged in order): this file's values are merged
      over the base's, mappings key by key, anything else (lists included) replaced. A mapping that
      names another ``system`` than the base's drops the base's ``params`` (another system's
      settings do not carry over). ``exp`` is never inherited: each conf names its experiment.
    * An admixture part ``{conf: X, p: 0.4, params: {...}}`` in ``anonymizer.params.systems`` takes
      ``system`` and ``params`` from X's anonymizer section, its own ``params`` merged over them.

    Relative base paths are relative to the repository root, so a conf reads the same from anywhere.
    """
    return _compose(Path(path), ())


def _conf_path(name: Any, where: Any) -> Path:
    if not isinstance(name, (str, Path)) or not str(name):
        raise ConfigError(f"{where}: '{BASE_KEY}' must name a conf file, got {name!r}")
    path = Path(name)
    return path if path.is_absolute() else REPO_ROOT / path


def _compose(path: Path, chain: tuple[Path, ...]) -> dict:
    if path in chain:
        raise ConfigError(f"{path}: conf includes itself ({' -> '.join(map(str, (*chain, path)))})")
    data = read_yaml(path)
    bases = data.pop(BASE_KEY, None)
    if bases is not None:
        merged: dict = {}
        for base in bases if isinstance(bases, list) else [bases]:
            merged = merge(merged, _compose(_conf_path(base, path), (*chain, path)))
        merged.pop("exp", None)
        data = merge(merged, data)
    _resolve_parts(data, path, (*chain, path))
    return data


def _resolve_parts(data: dict, path: Path, chain: tuple[Path, ...]) -> None:
    anon = data.get("anonymizer")
    params = anon.get("params") if isinstance(anon, dict) else None
    parts = params.get("systems") if isinstance(params, dict) else None
    if not isinstance(parts, list):
        return
    for i, part in enumerate(parts):
        if not isinstance(part, dict) or BASE_KEY not in part:
            continue
        where = f"{path}: anonymizer.params.systems[{i}].{BASE_KEY}"
        source = _compose(_conf_path(part[BASE_KEY], where), chain).get("anonymizer") or {}
        if not isinstance(source, dict) or not source.get("system"):
            raise ConfigError(f"{where}: {part[BASE_KEY]} has no anonymizer.system")
        own = {k: v for k, v in part.items() if k != BASE_KEY}
        parts[i] = merge({"system": source["system"], "params": source.get("params") or {}}, own)


def merge(base: Any, over: Any) -> Any:
    """``over`` merged over ``base`` (see read_conf); neither is modified."""
    if not (isinstance(base, dict) and isinstance(over, dict)):
        return copy.deepcopy(over)
    if "system" in over and over["system"] != base.get("system"):
        base = {k: v for k, v in base.items() if k != "params"}
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
    return out


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, recursively, checking keys and types."""
    return _convert(cls, data, where or cls.__name__)


def _convert(tp: Any, value: Any, where: str) -> Any:
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, where)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {tp}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        item = args[0] if args else Any
        return tuple(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        kt, vt = args if args else (Any, Any)
        return {_convert(kt, k, where): _convert(vt, v, f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return value
    raise TypeError(f"{where}: unsupported config type {tp!r}")


def _convert_dataclass(cls: type, value: Any, where: str) -> Any:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__} {value!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        dotted = ", ".join(f"{where}.{k}" for k in unknown)
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} ({dotted}); allowed: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, field in fields.items():
        if name in value:
            kwargs[name] = _convert(hints[name], value[name], f"{where}.{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}.{name}: required key is missing")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:  # __post_init__ checks
        raise ConfigError(f"{where}: {err}") from err


def load_section(conf: str | Path | dict, section: str, cls: type[T]) -> T:
    """Read one top-level section of an experiment conf as dataclass ``cls``."""
    data = conf if isinstance(conf, dict) else read_conf(conf)
    return from_dict(cls, data.get(section), section)


def to_dict(obj: Any) -> Any:
    """Dataclass (possibly nested, with tuples) back to plain YAML-able data."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def fingerprint(data: Any) -> str:
    """Stable short hash of config data, used to key done-markers and resumable outputs."""
    blob = json.dumps(to_dict(data), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]

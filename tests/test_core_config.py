from dataclasses import dataclass, field

import pytest

from voxanon.config import ConfigError, fingerprint, from_dict, load_section


@dataclass(frozen=True)
class Inner:
    k: int = 4
    weights: tuple[float, ...] = (1.0,)


@dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)
    device: str | None = None
    extra: dict = field(default_factory=dict)


def test_nested_and_defaults():
    conf = from_dict(Outer, {"name": "x", "inner": {"k": 8, "weights": [0.5, 0.5]}})
    assert conf.inner.k == 8 and conf.inner.weights == (0.5, 0.5)
    assert conf.device is None and conf.extra == {}
    with pytest.raises(Exception):
        conf.name = "y"  # frozen


def test_unknown_key_named_with_path():
    with pytest.raises(ConfigError, match=r"Outer.inner: unknown key\(s\) kk"):
        from_dict(Outer, {"name": "x", "inner": {"kk": 1}})


def test_wrong_type_named_with_path():
    with pytest.raises(ConfigError, match=r"Outer.inner.k: expected an integer"):
        from_dict(Outer, {"name": "x", "inner": {"k": "four"}})
    with pytest.raises(ConfigError, match=r"Outer.inner.k: expected an integer"):
        from_dict(Outer, {"name": "x", "inner": {"k": True}})


def test_missing_required():
    with pytest.raises(ConfigError, match=r"Outer.name: required key is missing"):
        from_dict(Outer, {})


def test_load_section_and_fingerprint(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sec:\n  name: a\n  inner: {k: 2}\n")
    conf = load_section(path, "sec", Outer)
    assert conf.inner.k == 2
    assert fingerprint(conf) == fingerprint(from_dict(Outer, {"name": "a", "inner": {"k": 2}}))
    assert fingerprint(conf) != fingerprint(from_dict(Outer, {"name": "a", "inner": {"k": 3}}))

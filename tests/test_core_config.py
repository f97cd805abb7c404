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


def test_composed_conf_bases_and_parts(tmp_path):
    from voxanon.config import read_conf

    (tmp_path / "base.yaml").write_text(
        "exp: base\ndata: {recipe: mini, eval_sets: [a, b]}\n"
        "anonymizer: {system: knnvc, seed: 3, params: {matching_sets: m, k: 4}}\n")
    (tmp_path / "over.yaml").write_text(
        f"conf: {tmp_path / 'base.yaml'}\nexp: over\ndata: {{eval_sets: [c]}}\nanonymizer: {{params: {{k: 8}}}}\n")
    (tmp_path / "mix.yaml").write_text(
        f"conf: {tmp_path / 'over.yaml'}\nexp: mix\nanonymizer:\n  system: admixture\n  params:\n    systems:\n"
        f"      - {{conf: {tmp_path / 'over.yaml'}, p: 0.5, params: {{k: 2}}}}\n"
        "      - {system: mcadams, p: 0.5}\n")
    over = read_conf(tmp_path / "over.yaml")
    assert over["exp"] == "over" and over["data"] == {"recipe": "mini", "eval_sets": ["c"]}  # lists replace
    assert over["anonymizer"] == {"system": "knnvc", "seed": 3, "params": {"matching_sets": "m", "k": 8}}
    mix = read_conf(tmp_path / "mix.yaml")["anonymizer"]
    assert mix["seed"] == 3 and mix["system"] == "admixture"  # another system: the base's params dropped
    assert mix["params"]["systems"][0] == {"system": "knnvc", "params": {"matching_sets": "m", "k": 2}, "p": 0.5}
    (tmp_path / "noexp.yaml").write_text(f"conf: {tmp_path / 'base.yaml'}\n")
    assert "exp" not in read_conf(tmp_path / "noexp.yaml")  # never inherited
    (tmp_path / "loop.yaml").write_text(f"conf: {tmp_path / 'loop.yaml'}\nexp: x\n")
    with pytest.raises(ConfigError, match="includes itself"):
        read_conf(tmp_path / "loop.yaml")


def test_conf_check_names_a_typo_in_an_admixture_part(tmp_path):
    from voxanon.experiment import load_experiment as check_conf

    (tmp_path / "typo.yaml").write_text(
        "conf: conf/admixture_p0.4.yaml\nexp: typo\nanonymizer:\n  params:\n    systems:\n"
        "      - {conf: conf/knnvc.yaml, p: 0.6, params: {kk: 3}}\n      - {conf: conf/whisper_vits.yaml, p: 0.4}\n")
    with pytest.raises(ConfigError, match=r"anonymizer\.params\.systems\[0\]\.params\.kk"):
        check_conf(tmp_path / "typo.yaml")
    (tmp_path / "sum.yaml").write_text(
        "conf: conf/admixture_p0.4.yaml\nexp: sum\nanonymizer:\n  params:\n    systems:\n"
        "      - {conf: conf/knnvc.yaml, p: 0.5}\n      - {conf: conf/whisper_vits.yaml, p: 0.4}\n")
    with pytest.raises(ConfigError, match="probabilities must sum to 1"):
        check_conf(tmp_path / "sum.yaml")


def test_conf_show_fills_in_the_parts_defaults(capsys, root):
    import yaml

    from voxanon.anonymize.knnvc import Params as KnnvcParams
    from voxanon.bin.conf import main

    assert main(["show", str(root / "conf" / "admixture_p0.4.yaml")]) == 0
    anon = yaml.safe_load(capsys.readouterr().out)["anonymizer"]
    knnvc, cascade = anon["params"]["systems"]
    assert (knnvc["system"], knnvc["p"], cascade["system"]) == ("knnvc", 0.6, "asr_tts")
    assert knnvc["params"]["loudness_lufs"] == KnnvcParams.loudness_lufs  # a default the confs leave out
    assert "language" in cascade["params"]["asr"] and anon["seed"] == 1986


@pytest.mark.parametrize("text,line,message", [
    ("exp: x\ndata: {eval_sets: [a, b}\n", 2, "expected ',' or ']'"),  # a syntax error
    ("exp: x\nanonymizer:\n  seed: 1\n  seed: 2\n", 4, "duplicate key 'seed'"),  # not silently the last
])
def test_yaml_errors_are_one_line_naming_file_and_line(tmp_path, text, line, message):
    from voxanon.config import read_conf

    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        read_conf(tmp_path / "c.yaml")
    assert str(err.value).startswith(f"{tmp_path / 'c.yaml'}:{line}: ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_yaml_aliases_are_refused_before_they_expand(tmp_path):
    """A billion-laughs conf (9 levels of 10 aliases: 10^9 strings) is refused at once, not expanded."""
    from voxanon.experiment import load_experiment as check_conf

    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    (tmp_path / "bomb.yaml").write_text("exp: bomb\ndata:\n  options:\n" + "".join(f"    {x}\n" for x in levels))
    with pytest.raises(ConfigError, match=r"bomb\.yaml:5: alias \*a0 is not allowed"):
        check_conf(tmp_path / "bomb.yaml")

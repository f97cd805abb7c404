"""Random admixture: shares match p, draws are reproducible, sub-systems lazy and seeded, records private."""
from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from voxanon.anonymize.admixture import derived_seed
from voxanon.anonymize.base import BuildContext, Utterance, build_system
from voxanon.audio import Audio
from voxanon.bin import anonymize as cli
from voxanon.config import ConfigError

SR = 16000
IDS = [f"spk{i % 37:03d}-utt{i:05d}" for i in range(1000)]


def mix(p_second: float, seed: int = 1986, work_dir: Path = Path("/nonexistent"), second: dict | None = None):
    """McAdams α = 0.6 (share 1 - p) mixed with McAdams α = 0.9 (share p): two real, cheap systems."""
    params = {"systems": [
        {"system": "mcadams", "p": 1 - p_second, "params": {"alpha": 0.6}},
        second or {"system": "mcadams", "p": p_second, "params": {"alpha": 0.9}},
    ]}
    return build_system("admixture", params, BuildContext(seed=seed, device="cpu", work_dir=work_dir))


@pytest.mark.parametrize("p", [0.2, 0.325, 0.4, 0.75])
def test_share_matches_p_and_is_reproducible(p):
    draws = [mix(p).choose(u) for u in IDS]
    share = np.mean(draws)
    assert abs(share - p) <= 0.03, share
    assert draws == [mix(p).choose(u) for u in IDS]  # a fresh build draws the same
    assert draws != [mix(p, seed=7).choose(u) for u in IDS]  # the seed matters


def test_draws_are_nested_across_p():
    """One uniform number per utterance: raising p only moves utterances to the second system."""
    low, high = ([mix(p).choose(u) for u in IDS] for p in (0.2, 0.4))
    assert all(h >= lo for lo, h in zip(low, high))


def test_p_zero_and_one_never_draw_the_other():
    assert {mix(0.0).choose(u) for u in IDS} == {0}
    assert {mix(1.0).choose(u) for u in IDS} == {1}


def test_three_systems():
    params = {"systems": [{"system": "mcadams", "p": p, "params": {"alpha": a}}
                          for p, a in ((0.5, 0.6), (0.3, 0.7), (0.2, 0.8))]}
    system = build_system("admixture", params, BuildContext(1986, "cpu", Path("/nonexistent")))
    counts = np.bincount([system.choose(u) for u in IDS], minlength=3) / len(IDS)
    assert np.all(np.abs(counts - [0.5, 0.3, 0.2]) <= 0.03), counts


def test_sub_systems_built_lazily_with_derived_seeds(tmp_path):
    # the second system's alpha is drawn per utterance from its derived seed
    system = mix(0.0, work_dir=tmp_path, second={"system": "mcadams", "p": 0.0, "params": {}})
    x = Utterance("spk1-a", "spk1", Audio(np.random.default_rng(0).standard_normal(4000).astype(np.float32) * 0.1, SR))
    out = system(x)
    assert out.record == {"system": "mcadams", "component": 0, "sub": {"alpha": 0.6}}
    assert list(system.built) == [0]  # the p = 0 system was never built
    assert (tmp_path / "0_mcadams").is_dir() and not (tmp_path / "1_mcadams").exists()
    seeds = {derived_seed(1986, 0), derived_seed(1986, 1), derived_seed(7, 0)}
    assert len(seeds) == 3 and 1986 not in seeds
    # component 1 alone, then the same sub-system built directly with the derived seed: same α
    only_second = mix(1.0, work_dir=tmp_path, second={"system": "mcadams", "p": 1.0, "params": {}})
    direct = build_system("mcadams", {}, BuildContext(derived_seed(1986, 1), "cpu", tmp_path))
    assert only_second(x).record["sub"] == direct(x).record
    assert only_second(x).record["sub"] != build_system("mcadams", {}, BuildContext(1986, "cpu", tmp_path))(x).record


@pytest.mark.parametrize("systems, message", [
    ([{"system": "mcadams", "p": 0.5}, {"system": "mcadams", "p": 0.4}], "must sum to 1.*= 0.9"),
    ([{"system": "mcadams", "p": 1.0}], "at least 2 systems"),
    ([{"system": "mcadams", "p": 0.5}, {"system": "nosuch", "p": 0.5}], "cannot be mixed"),
    ([{"system": "mcadams", "p": 0.5}, {"system": "admixture", "p": 0.5}], "cannot be mixed"),
    ([{"system": "mcadams", "p": 1.5}, {"system": "mcadams", "p": -0.5}], "not a probability"),
    ([{"system": "mcadams", "p": 0.5}, {"system": "mcadams", "p": 0.5, "params": {"alfa": 1}}],
     r"systems\[1\]\.params: unknown key\(s\) alfa"),
])
def test_bad_confs_fail_clearly(systems, message):
    with pytest.raises(ConfigError, match=message):
        build_system("admixture", {"systems": systems}, BuildContext(1986, "cpu", Path("/nonexistent")))


def make_data_dir(path: Path, n_utts: int = 12, with_trials: bool = True) -> list[str]:
    """A tiny Kaldi dir of noise-excited 'speech' (0.3 s each)."""
    (path / "wav").mkdir(parents=True)
    rng = np.random.default_rng(0)
    utts = [f"spk{i % 3}-u{i:02d}" for i in range(n_utts)]
    for u in utts:
        sf.write(path / "wav" / f"{u}.wav", (0.1 * rng.standard_normal(4800)).astype(np.float32), SR)
    (path / "wav.scp").write_text("".join(f"{u} wav/{u}.wav\n" for u in utts))
    (path / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in utts))
    spks = sorted({u.split("-")[0] for u in utts})
    (path / "spk2utt").write_text("".join(f"{s} {' '.join(u for u in utts if u.startswith(s + '-'))}\n" for s in spks))
    (path / "spk2gender").write_text("".join(f"{s} f\n" for s in spks))
    if with_trials:
        (path / "enrolls").write_text("".join(f"{u}\n" for u in utts[:3]))
        (path / "trials").write_text("".join(f"spk0 {u} {'target' if u.startswith('spk0-') else 'nontarget'}\n"
                                             for u in utts[3:]))
    return utts


@pytest.mark.parametrize("with_trials", [True, False])  # an eval set, or an attacker's training set
def test_runner_keeps_the_choice_out_of_the_data_dir(tmp_path, with_trials):
    utts = sorted(make_data_dir(tmp_path / "in", with_trials=with_trials))
    conf = tmp_path / "admix.yaml"
    conf.write_text(yaml.safe_dump({"exp": "t", "anonymizer": {"system": "admixture", "device": "cpu", "params": {
        "systems": [{"system": "mcadams", "p": 0.5, "params": {"alpha": 0.6}},
                    {"system": "mcadams", "p": 0.5, "params": {"alpha": 0.9}}]}}}))
    out, records = tmp_path / "out", tmp_path / "private" / "records"
    for job in (1, 2):
        assert cli.main(["job", "--conf", str(conf), "--job", str(job), "--nj", "2", "--record-dir", str(records),
                            str(tmp_path / "in"), str(out)]) == 0
    assert cli.main(["finalize", "--conf", str(conf), "--record-dir", str(records),
                        str(tmp_path / "in"), str(out)]) == 0

    # records: owner-only dir and files, one line per utterance, naming the drawn component
    assert stat.S_IMODE(records.stat().st_mode) == 0o700
    files = sorted(records.glob("records.*.jsonl"))
    assert [f.name for f in files] == ["records.1.jsonl", "records.2.jsonl"]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    lines = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert sorted(r["utt"] for r in lines) == utts
    chooser = mix(0.5)
    for r in lines:
        assert r["component"] == chooser.choose(r["utt"])
        assert r["sub"]["alpha"] == (0.6, 0.9)[r["component"]]
    assert {r["component"] for r in lines} == {0, 1}  # both systems were used

    # the data dir: the same ids, the usual Kaldi files, and nothing that tells the choice
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    kaldi = {"wav.scp", "utt2spk", "spk2utt", "spk2gender"} | ({"enrolls", "trials"} if with_trials else set())
    stamps = {".anonymizer.json"} | {f".done/{u}" for u in utts}  # hashes only (voxanon.anonymize.outdir)
    assert {n for n in names if not n.startswith("log/")} == kaldi | stamps | {f"wav/{u}.wav" for u in utts}
    for name in names - {f"wav/{u}.wav" for u in utts}:
        text = (out / name).read_text()
        assert "component" not in text and "records" not in text
    params = json.loads((out / ".anonymizer.json").read_text())
    assert "sub" not in json.dumps(params)
    assert sorted((out / "wav.scp").read_text().split()[0::2]) == utts
    assert all(sf.info(out / "wav" / f"{u}.wav").frames == 4800 for u in utts)


def test_parts_outputs_shared_across_p_through_the_cache(tmp_path):
    """The sweep's saving: after p = 0 and p = 1, any p is assembled from their outputs, no part built."""
    rng = np.random.default_rng(1)
    utts = [Utterance(u, "s", Audio((0.1 * rng.standard_normal(3200)).astype(np.float32), SR)) for u in IDS[:40]]

    def cached(p):
        params = {"cache_dir": str(tmp_path / "parts"), "systems": [
            {"system": "mcadams", "p": 1 - p, "params": {}}, {"system": "mcadams", "p": p, "params": {"alpha": 0.9}}]}
        return build_system("admixture", params, BuildContext(1986, "cpu", tmp_path / "work"))

    pure = {p: [cached(p)(u) for u in utts] for p in (0.0, 1.0)}
    mixed = cached(0.4)
    outs = [mixed(u) for u in utts]
    assert mixed.built == {}  # every output came from the cache
    assert {o.record["component"] for o in outs} == {0, 1}
    for u, o in zip(utts, outs):
        want = pure[float(o.record["component"])][utts.index(u)]
        assert o.record["sub"] == want.record["sub"] and np.array_equal(o.audio.samples, want.audio.samples)
    assert stat.S_IMODE((tmp_path / "parts").stat().st_mode) == 0o700
    changed = Utterance(utts[0].id, "s", Audio(utts[0].audio.samples * 0.5, SR))  # new audio, same id
    fresh = cached(0.4)
    fresh(changed)
    assert list(fresh.built) == [fresh.choose(changed.id)]  # not served from the cache


def test_a_part_that_cannot_be_built_fails_the_job_once(tmp_path, capfd):
    make_data_dir(tmp_path / "in")
    conf = tmp_path / "admix.yaml"
    conf.write_text(yaml.safe_dump({"exp": "t", "anonymizer": {"system": "admixture", "device": "cpu", "seed": 5,
                                                                "params": {"systems": [
        {"system": "mcadams", "p": 0.5, "params": {"alpha": 0.6}},
        {"system": "knnvc", "p": 0.5, "params": {"matching_sets": str(tmp_path / "no_sets")}}]}}}))
    code = cli.main(["job", "--conf", str(conf), "--record-dir", str(tmp_path / "rec"), str(tmp_path / "in"),
                        str(tmp_path / "out")])
    errors = [line for line in capfd.readouterr().err.splitlines() if " ERROR " in line]
    assert code != 0 and len(errors) == 1, errors
    assert "anonymizer.params.systems[1] (knnvc) cannot be built" in errors[0] and "no_sets" in errors[0]


@pytest.mark.parametrize("name, second_p", [("admixture_p0.2", 0.2), ("admixture_p0.325", 0.325),
                                            ("admixture_p0.4", 0.4), ("admixture_offline", 0.4)])
def test_shipped_confs_parse_down_to_each_system(name, second_p):
    from voxanon.anonymize import admixture
    from voxanon.anonymize.base import system_module
    from voxanon.anonymize.config import AnonymizerConfig
    from voxanon.config import from_dict, load_section

    root = Path(__file__).resolve().parents[1]
    conf = load_section(root / "conf" / f"{name}.yaml", "anonymizer", AnonymizerConfig)
    params = from_dict(admixture.Params, conf.params, "anonymizer.params")
    assert params.systems[1].p == second_p and params.systems[1].system == "asr_tts"
    for i, c in enumerate(params.systems):
        from_dict(system_module(c.system).Params, c.params, f"anonymizer.params.systems[{i}].params")

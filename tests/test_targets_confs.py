"""The shipped confs' target speakers and Table-1 WavLM-conversion rows, as the paper ran them:
VoxCeleb1 targets (paper §3.1) for every kNN-VC, WavLM-conversion and admixture conf, the
LibriSpeech pool as a named alternative, and rows 5-8 = the base plus what the paper adds."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from voxanon.config import read_conf, to_dict
from voxanon.experiment import TARGET_SYSTEMS, load_experiment

ROOT = Path(__file__).resolve().parents[1]
CONFS = sorted(p.stem for p in (ROOT / "conf").glob("*.yaml") if p.stem != "models")
ROWS = {line.split("\t")[0] + " " + line.split("\t")[1]: line.split("\t")[2]
        for line in (ROOT / "egs" / "jhu_vpc2024" / "rows.tsv").read_text().splitlines()
        if line and not line.startswith("#")}


def conf(name: str) -> dict:
    return read_conf(ROOT / "conf" / f"{name}.yaml")


def experiment(name: str):
    return load_experiment(ROOT / "conf" / f"{name}.yaml")


def matchers(raw: dict) -> list[tuple[str, dict]]:
    """(system, params) of the anonymizer, or of each admixture part."""
    anon = raw["anonymizer"]
    parts = anon["params"]["systems"] if anon["system"] == "admixture" else [anon]
    return [(p["system"], p.get("params") or {}) for p in parts]


TARGET_CONFS = [n for n in CONFS if any(s in TARGET_SYSTEMS for s, _ in matchers(conf(n)))]


def test_the_paper_rows_use_the_voxceleb1_pool():
    paper = [c for c in ROWS.values() if c != "-" and c != "whisper_vits"]
    assert set(paper) <= set(TARGET_CONFS) and len(paper) == 10
    for name in paper:
        raw = conf(name)
        assert raw["data"]["target_pool"] == "voxceleb1", name
        exp = experiment(name)
        assert exp.data.options["target_pool"]["corpus"] == "voxceleb", name
        assert exp.features.pool_vad_trigger_level == 7.0 and exp.targets.min_minutes == 5.0


@pytest.mark.parametrize("name", TARGET_CONFS)
def test_matching_sets_and_wavlm_follow_the_conf(name):
    """The values a conf no longer restates are derived: matching sets from the targets section,
    the converter's WavLM from the features section, its checkpoint from the experiment."""
    exp = experiment(name)
    features, pool = exp.features, exp.data.target_pool
    for system, params in matchers(exp.to_dict()):
        if system == "knnvc":
            assert params["matching_sets"] == f"{exp.targets.dir}/{pool}"
        if system == "wavlm_conv":
            assert (params["wavlm"], params["layer"]) == (features.checkpoint, features.layer)
            assert params["checkpoint"] == f"exp/{exp.exp}/converter/final.pt"
            assert pool in features.sets
            target = exp.train.pairs.target
            assert re.fullmatch(r"id1\d{4}", target), f"{name}: the converter's target {target!r} is no VoxCeleb1 id"


def test_librispeech_pool_is_a_named_alternative():
    raw = conf("knnvc_libri100")
    assert raw["data"]["target_pool"] == "libri100"
    assert raw["data"]["options"]["target_pool"] == {"corpus": "librispeech", "subset": "train-clean-100",
                                                     "root": "", "meta": ""}
    base, libri = experiment("knnvc").to_dict(), experiment("knnvc_libri100").to_dict()
    assert libri["anonymizer"]["params"] == {**base["anonymizer"]["params"], "matching_sets": "exp/targets/libri100"}
    assert "vocoder" in (ROOT / "conf" / "base" / "pool_libri100.yaml").read_text()  # says it trained the vocoder


def train(name: str) -> dict:
    return to_dict(experiment(name).train)


def test_wavlm_conversion_rows_add_to_the_base_as_the_paper_lists_them():
    base = train("wavlm_conv")
    assert base["pairs"]["recon_share"] == 0.0  # ID 5 "base": no target reconstruction
    assert not base["objectives"]["adversary"]["enabled"] and not base["objectives"]["discrete"]["enabled"]
    assert ROWS["5 WavLM conversion"] == "wavlm_conv"
    adds = {"6 + adversarial": {"adversary"}, "7 + discrete": {"discrete"},
            "8 + adversarial + discrete": {"adversary", "discrete"}}
    for row, objectives in adds.items():
        want = {**base, "objectives": {**base["objectives"], **{
            o: {**base["objectives"][o], "enabled": True} for o in objectives}}}
        assert train(ROWS[row]) == want, row
    recon = train("wavlm_conv_recon")  # reconstruction: its own conf, not a Table-1 row
    assert recon == {**base, "pairs": {**base["pairs"], "recon_share": 0.1}}
    assert "wavlm_conv_recon" not in ROWS.values()

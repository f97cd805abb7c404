"""The studies of egs/: Table 1 and the admixture sweep, from generated confs and synthetic results."""
from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from voxanon.config import ConfigError, read_conf
from voxanon.studies import sweep, table1
from voxanon.studies.confs import derive_conf
from voxanon.studies.metrics import ResultsError, load_metrics

ROOT = Path(__file__).resolve().parents[1]
TRIALS = ["libri_dev_trials_f", "libri_dev_trials_m", "libri_test_trials_f", "libri_test_trials_m"]
SETUP = {"exp": "mini", "data": {"recipe": "mini", "eval_sets": ["dev_trials"], "asv_train_set": "train"},
         "eval": {"metrics": ["asv", "wer"]}}


def results(eer: float, uar: float | None, wer: float, orig: tuple[float, float, float] = (5.0, 70.0, 2.0),
            aware: float | None = None) -> dict:
    """A results.json in voxanon.eval.results' layout: per-set values spread around the averages;
    ``aware``: the mixture-aware attacker's EER (an admixture's)."""
    spread = [-1.5, 0.5, -0.5, 1.5]
    scen = {"original": orig[0], "lazy-informed": eer + 10, "semi-informed": eer,
            **({"mixture-aware": aware} if aware is not None else {})}
    out = {"exp": "x",
           "asv": {"trial_sets": {t: {sc: {"eer": v + s, "min_dcf": 0.9} for sc, v in scen.items()}
                                  for t, s in zip(TRIALS, spread)},
                   "average": {}, "skipped": {"ignorant": "no original ASV"}},
           "wer": {side: {"sets": {"libri_dev_trials_f": {"wer": w}},
                          "splits": {"dev": {"wer": w - 0.1}, "test": {"wer": w + 0.1}, "all": {"wer": w}}}
                   for side, w in (("anon", wer), ("original", orig[2]))}}
    out["models"] = {"asv_orig": "VPC 2024 ASV_orig release (vpc-asv-orig)", "asv_anon": "exp/x/asv_anon",
                     "wer": "VPC 2024 ASR_eval (vpc-asr)", "ser": "VPC 2024 SER (vpc-ser)" if uar is not None else None}
    if uar is not None:
        out["ser"] = {"sets": {s: {"anon": {"uar": uar + d}, "original": {"uar": orig[1] + d}}
                               for s, d in (("IEMOCAP_dev", -1), ("IEMOCAP_test", 1))}}
    else:
        out["ser"] = {"skipped": "no emotion sets"}
    return out


def write_results(exp_root: Path, exp: str, data: dict) -> None:
    path = exp_root / exp / "results" / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))


def system_confs(conf_dir: Path) -> None:
    conf_dir.mkdir(parents=True, exist_ok=True)
    mc = read_conf(ROOT / "conf" / "mcadams.yaml")
    (conf_dir / "mcadams.yaml").write_text(yaml.safe_dump(mc))
    (conf_dir / "other.yaml").write_text(yaml.safe_dump({**mc, "exp": "other"}))
    mix = {"exp": "admix", "data": mc["data"], "anonymizer": {"system": "admixture", "params": {"systems": [
        {"system": "mcadams", "p": 0.6, "params": {"alpha": 0.6}},
        {"system": "mcadams", "p": 0.4, "params": {"alpha": 0.9}}]}}}
    (conf_dir / "admix.yaml").write_text(yaml.safe_dump(mix))


def test_derive_conf_moves_a_system_onto_a_setup():
    system = read_conf(ROOT / "conf" / "mcadams.yaml")
    conf = derive_conf(system, SETUP, "mcadams_mini")
    assert conf["exp"] == "mcadams_mini"
    assert conf["data"] == SETUP["data"] and conf["eval"] == SETUP["eval"]
    assert conf["anonymizer"] == system["anonymizer"]
    assert derive_conf(system, None, "m")["data"] == system["data"]


def test_table1_from_synthetic_results(tmp_path):
    conf_dir, study, exp_root = tmp_path / "conf", tmp_path / "study", tmp_path / "exp"
    system_confs(conf_dir)
    rows = tmp_path / "rows.tsv"
    rows.write_text("# id label conf paper\norig\toriginal\t-\t5.16/70.07/1.83\n"
                    "B2\tMcAdams\tmcadams\t-\nA\tadmixture p=0.4\tadmix\t40.81/47.09/3.33\n"
                    "X\tnot run\tother\t-\n")
    assert table1.main(["confs", "--rows", str(rows), "--conf-dir", str(conf_dir), "--dir", str(study)]) == 0
    assert read_conf(study / "conf" / "mcadams.yaml")["exp"] == "mcadams"
    # the first experiment trains the ASV on original data, the others (same data) reuse it
    assert "orig_model" not in (read_conf(study / "conf" / "mcadams.yaml").get("asv") or {})
    assert read_conf(study / "conf" / "admix.yaml")["asv"]["orig_model"] == "exp/mcadams/asv_orig"
    write_results(exp_root, "mcadams", results(8.0, 55.0, 10.0))
    write_results(exp_root, "admix", results(40.0, 47.0, 3.5))
    # the last row has no results: its cells are '-'
    assert table1.main(["table", "--dir", str(study), "--exp-root", str(exp_root)]) == 0

    with open(study / "table1.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["system"] for r in table] == ["original", "McAdams", "admixture p=0.4", "not run"]
    orig, mc, mix, _ = table
    assert orig["EER dev-f"] == "3.50" and orig["EER avg"] == "5.00" and orig["UAR avg"] == "70.00"
    assert mc["EER test-m"] == "9.50" and mc["EER avg"] == "8.00"
    assert mc["WER dev"] == "9.90" and mc["WER avg"] == "10.00"
    assert mix["UAR test"] == "48.00" and mix["paper EER/UAR/WER"] == "40.81/47.09/3.33"
    text = (study / "table1.txt").read_text()
    assert "EER %" in text and "UAR %" in text and "WER %" in text and "semi-informed" in text
    md = (study / "table1.md").read_text().splitlines()
    assert md[0].startswith("| ID | system | EER dev-f | EER dev-m | EER test-f | EER test-m | EER avg | UAR dev")
    assert md[5].startswith("| X | not run | - |")
    # which evaluation models made the columns
    assert "WER by: VPC 2024 ASR_eval (vpc-asr)\n" in text and "UAR by: VPC 2024 SER (vpc-ser)\n" in text
    assert "EER of the original data by: VPC 2024 ASV_orig release (vpc-asv-orig)\n" in text
    # another scenario
    assert table1.main(["table", "--dir", str(study), "--exp-root", str(exp_root), "--scenario", "lazy-informed"]) == 0
    with open(study / "table1.csv") as f:
        assert list(csv.DictReader(f))[1]["EER avg"] == "18.00"


def test_collect_finished_experiments_and_the_strongest_attacker_tradeoff(tmp_path):
    """Any finished experiments, named by their dirs, make the table and the trade-off plot without
    running anything; privacy is the lowest EER over the attackers that ran."""
    exp_root, study = tmp_path / "exp", tmp_path / "mine"
    write_results(exp_root, "mcadams_mini_timit-abc123", results(8.0, None, 10.0))
    write_results(exp_root, "mixed", results(40.0, None, 4.0, aware=30.0))  # the mixture-aware attacker wins
    (exp_root / "mixed" / "config.yaml").write_text("anonymizer: {system: admixture}\n")
    exps = [str(exp_root / "mcadams_mini_timit-abc123"), "mixed"]
    assert table1.main(["collect", "--dir", str(study), "--exp-root", str(exp_root), *exps]) == 0
    with open(study / "table1.csv") as f:
        assert [r["system"] for r in csv.DictReader(f)] == ["original", "mcadams_mini_timit-abc123", "mixed"]
    rows = (study / "tradeoff.tsv").read_text().splitlines()
    assert rows[1].split("\t") == ["mcadams_mini_timit-abc123", "false", "semi-informed", "8.00", "8.00", "", "10.00"]
    assert rows[2].split("\t") == ["mixed", "true", "mixture-aware", "30.00", "40.00", "", "4.00"]
    assert (study / "tradeoff.png").stat().st_size > 10_000


def test_missing_metric_families_leave_columns_out(tmp_path):
    rows = [table1.Row("orig", "original", "-"), table1.Row("1", "sys", "c", exp="e")]
    write_results(tmp_path, "e", results(8.0, None, 3.0))
    groups, lines = table1.build_table(table1.collect(rows, tmp_path, "semi-informed"))
    assert [g for g, _ in groups] == ["", "EER %", "WER %", "paper"]
    assert lines[1][:3] == ["1", "sys", "6.50"]


def test_bad_results_fail_clearly(tmp_path):
    with pytest.raises(ResultsError, match="no EER for scenario 'ignorant' \\(no original ASV\\)"):
        load_metrics(results(8.0, 50.0, 3.0), "ignorant")
    with pytest.raises(ResultsError, match=r"asv EER \(original\), a: expected a number"):
        load_metrics({"asv": {"trial_sets": {"a": {"original": {"eer": "x"}}}}}, "original")
    # per-set WERs when the sets have no dev/test split; a failed trials set is left out
    m = load_metrics({"asv": {"trial_sets": {"a": {"original": {"eer": 3.0}}, "b": {"original": {"error": "x"}}}},
                      "wer": {"original": {"sets": {"mini_trials_f": {"wer": 4.0}}, "splits": {"all": {"wer": 4.0}}}}},
                     "original")
    assert (m.eer, m.wer, m.uar) == ({"a": 3.0}, {"mini_trials_f": 4.0}, {})
    rows = tmp_path / "rows.tsv"
    rows.write_text("1\tknnvc\n")
    with pytest.raises(ConfigError, match="expected 4 tab-separated fields"):
        table1.read_rows(rows)
    rows.write_text("1\tkNN-VC\tknnvc\t-\n")
    with pytest.raises(ConfigError, match=r"missing in .*: knnvc.yaml"):
        table1.make_confs(table1.read_rows(rows), tmp_path, None, tmp_path / "s")


def test_sweep_confs_and_plot(tmp_path):
    conf_dir, study, exp_root = tmp_path / "conf", tmp_path / "sweep", tmp_path / "exp"
    system_confs(conf_dir)
    setup = tmp_path / "mini.yaml"
    setup.write_text(yaml.safe_dump(SETUP))
    ps = [0, 0.2, 0.325, 0.4, 1]
    assert sweep.main(["confs", "--base-conf", str(conf_dir / "admix.yaml"), "--p", " ".join(map(str, ps)),
                       "--setup-conf", str(setup), "--name", "sw", "--dir", str(study)]) == 0
    confs = {p: read_conf(study / "conf" / f"p{p:g}.yaml") for p in ps}
    for p, conf in confs.items():
        a, b = conf["anonymizer"]["params"]["systems"]
        assert (a["p"], b["p"]) == (pytest.approx(1 - p), p)
        assert conf["exp"] == f"sw_p{p:g}_mini" and conf["data"] == SETUP["data"]
        assert conf["anonymizer"]["suffix"] == f"_admix_p{p:g}"
        assert conf.get("asv", {}).get("orig_model") == (None if p == 0 else "exp/sw_p0_mini/asv_orig")
        assert conf.get("asv", {}).get("part_models") == (None if p == 0 else "exp/sw_p0_mini/mixture")
    # privacy rises faster than utility falls (the paper's finding) for the semi-informed attacker;
    # the mixture-aware one keeps near the pure systems' EERs (none at p = 0.4: an older run);
    # p = 0.325 has no results yet
    for p in (0, 0.2, 0.4, 1):
        write_results(exp_root, f"sw_p{p:g}_mini", results(8 + 60 * p ** 0.5, 57 - 27 * p, 3 + 0.6 * p,
                                                           aware=None if p == 0.4 else 8 + 40 * p))
    assert sweep.main(["plot", "--dir", str(study), "--exp-root", str(exp_root)]) == 0
    png = (study / "sweep.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000
    lines = (study / "sweep.csv").read_text().splitlines()
    assert lines[0] == "p,EER semi-informed avg,EER mixture-aware avg,UAR avg,WER avg"
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "0.2", "0.4", "1"]
    assert lines[2] == f"0.2,{8 + 60 * 0.2 ** 0.5:.2f},16.00,51.60,3.12"
    assert lines[3].split(",")[2] == ""  # no mixture-aware EER at p = 0.4

    # both curves are drawn on both axes, the mixture-aware one without its missing point
    import matplotlib.pyplot as plt

    drawn = []
    real_savefig = plt.Figure.savefig

    def spy(fig, *args, **kwargs):
        drawn.extend((line.get_label(), len(line.get_xdata())) for ax in fig.axes for line in ax.get_lines())
        return real_savefig(fig, *args, **kwargs)

    plt.Figure.savefig = spy
    try:
        assert sweep.main(["plot", "--dir", str(study), "--exp-root", str(exp_root)]) == 0
    finally:
        plt.Figure.savefig = real_savefig
    assert drawn.count(("semi-informed attacker", 4)) == 2 and drawn.count(("mixture-aware attacker", 3)) == 2


def test_sweep_needs_a_two_system_admixture(tmp_path):
    with pytest.raises(ConfigError, match="admixture of exactly 2 systems"):
        sweep.with_p(read_conf(ROOT / "conf" / "mcadams.yaml"), 0.5)
    assert sweep.main(["plot", "--dir", str(tmp_path)]) == 2  # no experiments.tsv: clear error, no traceback


def test_egs_scripts_write_confs(tmp_path):
    """The shell drivers' option parsing and stage 1 (stage 2 runs whole experiments)."""
    conf_dir = tmp_path / "conf"
    system_confs(conf_dir)
    rows = tmp_path / "rows.tsv"
    rows.write_text("orig\toriginal\t-\t-\nB2\tMcAdams\tmcadams\t-\n")
    run = subprocess.run(["egs/jhu_vpc2024/run.sh", "--rows", str(rows), "--conf-dir", str(conf_dir),
                          "--dir", str(tmp_path / "t1"), "--stop-stage", "1"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "t1" / "confs.tsv").read_text() == f"orig\t-\nB2\t{tmp_path / 't1' / 'conf' / 'mcadams.yaml'}\n"
    run = subprocess.run(["egs/admixture_sweep/run.sh", "--base-conf", str(conf_dir / "admix.yaml"), "--p", "0 0.5",
                          "--dir", str(tmp_path / "sw"), "--stop-stage", "1"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert read_conf(tmp_path / "sw" / "conf" / "p0.5.yaml")["exp"] == "sw_p0.5"
    bad = subprocess.run(["egs/admixture_sweep/run.sh", "--nosuch", "1"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown option --nosuch" in bad.stderr

"""Stage 8 with more than the VPC attacker: the VPC figure and the strongest attacker's, each
labelled, in results.json, the summaries and the report; the convergence curves and warnings."""
from __future__ import annotations

import json
import re

from voxanon.eval.report import write_report
from voxanon.eval.results import assemble, extended_text, result_for_rank
from voxanon.studies.tradeoff import strongest

EERS = {"lazy-informed": 40.0, "semi-informed": 30.0, "semi-informed-finetuned": 22.0}
CONVERGENCE = {
    "asv_anon": {"attacker": "semi-informed", "valid_eer": [35.0, 28.0, 21.0], "fell_by": 14.0, "epochs": 2,
                 "margin": 1.0, "converged": False},
    "asv_anon_ft": {"attacker": "semi-informed-finetuned", "valid_eer": [20.0, 19.6, 19.5], "fell_by": 0.5,
                    "epochs": 2, "margin": 1.0, "converged": True},
}


def results(tmp_path) -> dict:
    out = tmp_path / "exp" / "results"
    out.mkdir(parents=True)
    per = {sc: {"eer": eer, "min_dcf": 1.0, "cllr": 1.0, "min_cllr": 0.9, "linkability": 0.1, "n_target": 4,
                "n_nontarget": 12} for sc, eer in EERS.items()}
    asv = {"metric": "asv", "suffix": "_x", "trial_lists": [], "trial_sets": {"libri_dev_trials_f": per},
           "average": {sc: {k: v for k, v in m.items() if not k.startswith("n_")} for sc, m in per.items()},
           "skipped": {}, "convergence": CONVERGENCE}
    (out / "asv.json").write_text(json.dumps(asv))
    return assemble(out, "unit")


def test_headline_names_the_vpc_and_the_strongest_attacker(tmp_path):
    res = results(tmp_path)
    head = res["headline"]
    assert head["eer_semi_informed"] == 30.0 and head["eer_semi_informed_finetuned"] == 22.0
    assert (head["strongest_attacker"], head["eer_strongest"]) == ("semi-informed-finetuned", 22.0)
    assert strongest(res, "unit")[0] == head["strongest_attacker"]  # the studies pick the same one
    # the VPC columns keep the VPC attacker
    anon_rows = result_for_rank(res).split("---- ASV_eval^anon results ----")[1]
    assert re.search(r"libri\s+dev\s+f\s+anon\s+anon\s+30\.0$", anon_rows, re.M) and "22.0" not in anon_rows
    text = extended_text(res)
    assert "EER, VPC attacker (semi-informed; quote it for a VPC submission): 30.00 %" in text
    assert "EER, strongest attacker measured (semi-informed-finetuned; quote it when claiming privacy): 22.00 %" in text


def test_unconverged_attacker_is_warned_about_and_its_curve_plotted(tmp_path):
    res = results(tmp_path)
    assert len(res["warnings"]) == 1 and res["warnings"][0].startswith(
        "asv_anon (semi-informed): this attacker had not converged: the EER overstates privacy")
    assert "asv_anon_ft (semi-informed-finetuned): 20.00 19.60 19.50" in extended_text(res)
    page = write_report(res, tmp_path / "exp" / "report", tmp_path / "data", n_audio=0).read_text()
    assert "had not converged: the EER overstates privacy" in page and "quote it when claiming privacy" in page
    assert "<h2>Attacker convergence</h2>" in page and "35.00 28.00 21.00" in page
    assert (tmp_path / "exp" / "report" / "plots" / "convergence.png").stat().st_size > 5000

"""The VPC 2026 Track 1 protocol: its base conf composes with every shipped system conf, and its
results layout (ASV_eval anonymized/anonymized on the mixed trials, then ASV_eval^anon)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from voxanon.eval.results import result_for_rank
from voxanon.experiment import load_experiment

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.stem for p in (ROOT / "conf").glob("*.yaml") if p.stem != "models")
BASE = ROOT / "conf" / "base" / "vpc2026_track1.yaml"


def composed(name: str, tmp_path: Path) -> Path:
    conf = tmp_path / f"{name}_vpc26.yaml"
    conf.write_text(f"conf: [{ROOT / 'conf' / name}.yaml, {BASE}]\nexp: {name}_vpc26\n")
    return conf


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_conf_checks_composed_with_the_2026_base(name, tmp_path):
    conf = composed(name, tmp_path)
    done = subprocess.run([sys.executable, "-m", "voxanon.bin.conf", "check", str(conf)], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    exp = load_experiment(conf)
    shipped = load_experiment(ROOT / "conf" / f"{name}.yaml")
    assert (exp.anonymizer.system, exp.anonymizer.systems) == (shipped.anonymizer.system, shipped.anonymizer.systems)
    assert exp.eval.protocol == "vpc2026-track1" and exp.eval.norm == "l2"
    assert [s for s in exp.data.eval_sets if "trials" in s] == ["libri_dev_trials_mixed", "libri_test_trials_mixed"]
    assert (exp.asv.orig_model, exp.asv.init_model, exp.asv.optimizer) == ("vpc-asv-ssl", "vpc-asv-ssl", "adamw")
    assert (exp.asv.epochs, exp.asv.batch_size, exp.asv.lr, exp.asv.weight_decay) == (2, 32, 0.01, 0.01)
    assert shipped.eval.protocol == "vpc2024" and shipped.eval.norm == "none"  # the shipped figures unchanged


def test_2026_layout_reports_asv_eval_anonymized_on_mixed_trials():
    eer = {"dev": (11.423, 6.973), "test": (7.22, 4.713)}
    res = {"created": "2026-03-03T05:17:00",
           "asv": {"trial_sets": {f"libri_{p}_trials_mixed": {"lazy-informed": {"eer": lazy}, "semi-informed": {"eer": semi}}
                                  for p, (lazy, semi) in eer.items()}},
           "wer": {"original": {"sets": {"libri_dev_asr": {"wer": 1.802}}},
                   "anon": {"sets": {"libri_dev_asr": {"wer": 10.439}}}}}
    text = result_for_rank(res, "vpc2026-track1")
    pre, post = text.split("\n\n---- Time")
    rows = lambda block: [line.split() for line in block.splitlines() if line[:1].isdigit()]  # noqa: E731
    assert rows(pre.split("---- ASV_eval results ----")[1].split("\n\n")[0]) == [
        ["2", "libri", "dev", "mixed", "anon", "anon", "11.423"], ["5", "libri", "test", "mixed", "anon", "anon", "7.220"]]
    assert "---- ASR results ----" in pre and "10.439" in pre
    assert rows(post.split("---- ASV_eval^anon results ----")[1]) == [
        ["2", "libri", "dev", "mixed", "anon", "anon", "6.973"], ["5", "libri", "test", "mixed", "anon", "anon", "4.713"]]
    # the 2024 layout of the same results has no ASV_eval block (no original/original figures)
    assert "ASV_eval results" not in result_for_rank(res)


def test_finetuning_step_plan_and_learning_rates_follow_the_2026_recipe(tmp_path):
    """2 epochs of batches of 32 (drop_last), AdamW weight decay 0.01, the cyclic lr stepped before
    each update as speechbrain's CyclicLRScheduler.on_batch_end in the 2026 compute_objectives."""
    import torch
    from speechbrain.nnet.schedulers import CyclicLRScheduler

    from voxanon.eval.asv_train import cyclic_lr, global_batches, make_optimizer

    asv = load_experiment(composed("mcadams", tmp_path)).asv
    rows = 1000  # one row per 3 s chunk (asv.chunk_s)
    plan = [global_batches(rows, asv.batch_size, drop_last=asv.drop_last) for _ in range(asv.epochs)]
    assert [len(epoch) for epoch in plan] == [31, 31] and {len(b) for epoch in plan for b in epoch} == {32}

    param = torch.nn.Parameter(torch.zeros(1))
    ours = make_optimizer(asv, [param])
    ref = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=0.01, weight_decay=0.01)
    sched = CyclicLRScheduler(base_lr=1e-8, max_lr=0.01, step_size=65000)
    assert type(ours) is torch.optim.AdamW and ours.defaults["weight_decay"] == 0.01
    want = []
    for _ in range(sum(len(epoch) for epoch in plan)):
        sched.on_batch_end(ref)
        want.append(ref.param_groups[0]["lr"])
    got = [cyclic_lr(i, asv.base_lr, asv.lr, asv.step_size) for i in range(1, len(want) + 1)]
    assert got == pytest.approx(want, rel=1e-12) and (asv.margin, asv.scale, asv.chunk_s, asv.seed) == (0.2, 30.0, 3.0, 1986)

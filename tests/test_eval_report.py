"""Stages 6-8 end to end through their shell scripts on generated data: attackers, evaluation
(with a metric skipped for missing labels), results.json, the VPC summary, and the HTML report
rendered in headless Chromium (plots load, audio players present)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from eval_fixtures import make_dir
from voxanon.data.kaldi import load_data_dir
from voxanon.eval.eer import all_metrics
from voxanon.eval.report import write_report
from voxanon.eval.results import assemble, summary_text
from voxanon.eval.scoring import write_scores

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")

CONF = """exp: evaltest
data:
  recipe: mini
  eval_sets: [ev]
  asv_train_set: train
  emotion_sets: [emo]
anonymizer:
  system: mcadams
  suffix: _anon
asv: {n_mels: 40, channels: 32, emb_dim: 24, attention_channels: 16, epochs: 1, batch_size: 8,
      chunk_s: 1.0, step_size: 20, features: online, num_workers: 0, device: cpu}
eval: {ser_folds: 3, device: cpu}
report: {audio_examples: 2}
"""


def run_stage(script: str, conf: Path, env: dict) -> str:
    proc = subprocess.run([str(ROOT / script), str(conf)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def render(page: Path, profile: Path) -> dict:
    """Open ``page`` in headless Chromium with a probe script; what loaded, from the DOM."""
    html = page.read_text()
    probe = page.with_name("probe.html")
    probe.write_text(html.replace("</body>", """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const d = document.createElement('div'); d.id = 'probe';
  d.textContent = `imgs=${imgs.length} loaded=${imgs.filter(i => i.complete && i.naturalWidth > 0).length} ` +
    `audio=${document.querySelectorAll('audio').length} rows=${document.querySelectorAll('#asv-table tr').length}`;
  document.body.appendChild(d);
});
</script></body>"""))
    proc = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                           "--no-first-run", "--disable-background-networking", "--disable-component-update",
                           "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
                           "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    m = re.search(r'<div id="probe">imgs=(\d+) loaded=(\d+) audio=(\d+) rows=(\d+)</div>', proc.stdout)
    assert m, proc.stdout[-2000:] + proc.stderr[-2000:]
    return dict(zip(("imgs", "loaded", "audio", "rows"), map(int, m.groups())))


def check_page(report: Path, profile: Path, n_plots: int, n_audio: int) -> None:
    html = (report / "index.html").read_text()
    assert html.count("<audio") == 2 * n_audio and 'id="asv-table"' in html
    for src in re.findall(r"src='([^']+)'", html):
        assert (report / src).is_file(), src
    if not CHROMIUM.is_file():
        pytest.skip("chromium not installed (utils/setup_env.sh installs it)")
    seen = render(report / "index.html", profile)
    assert seen["imgs"] == n_plots and seen["loaded"] == n_plots and seen["audio"] == 2 * n_audio
    assert seen["rows"] >= 3


def test_report_from_results_renders_in_chromium(tmp_path):
    """results.json + summary + page from stage-7 parts (scores drawn at random, real audio dirs)."""
    data = tmp_path / "data"
    make_dir(data / "ev", n_spk=3, n_utt=3, n_enroll=1, text=True, seconds=(0.5, 0.6))
    shutil.copytree(data / "ev", data / "ev_x")
    trials = load_data_dir(data / "ev").trials
    rng = np.random.default_rng(0)
    results = tmp_path / "exp" / "results"
    asv = {"metric": "asv", "suffix": "_x", "trial_lists": [{"name": "ev", "enroll_set": "ev", "trial_set": "ev"}],
           "trial_sets": {"ev": {}}, "average": {}, "skipped": {"semi-informed": "asv_anon: not trained"}}
    for scenario in ("original", "ignorant"):
        scores = np.array([rng.normal(1.0 if t.target else 0.0) for t in trials])
        path = results / "scores" / scenario / "ev"
        write_scores(path, trials, scores)
        target = np.array([t.target for t in trials])
        m = vars(all_metrics(scores[target], scores[~target]))
        asv["trial_sets"]["ev"][scenario] = {**m, "scores": str(path)}
        asv["average"][scenario] = {k: m[k] for k in ("eer", "min_dcf", "cllr", "min_cllr", "linkability")}
    (results / "asv.json").write_text(json.dumps(asv))
    (results / "ser.json").write_text(json.dumps({"metric": "ser", "skipped": "no emotion sets"}))
    res = assemble(results, "unit")
    assert res["wer"]["skipped"].endswith("(stage 7 did not evaluate wer)")
    assert res["headline"]["eer_original"] == asv["average"]["original"]["eer"]
    text = summary_text(res)
    assert "skipped: asv_anon: not trained" in text and "skipped: no emotion sets" in text
    write_report(res, tmp_path / "exp" / "report", data, n_audio=2)
    check_page(tmp_path / "exp" / "report", tmp_path / "profile", n_plots=2, n_audio=2)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    data = tmp / "data"
    make_dir(data / "train", n_spk=5, n_utt=5, n_enroll=0)
    make_dir(data / "ev", n_spk=4, n_utt=4, n_enroll=2, spk_offset=10)  # no text: WER is skipped
    make_dir(data / "emo", n_spk=3, n_utt=6, n_enroll=0, emotions=2, spk_offset=20, seconds=(0.8, 1.0))
    for s in ("train", "ev", "emo"):  # the "anonymized" data: the same audio
        shutil.copytree(data / s, data / f"{s}_anon")
    conf = tmp / "conf.yaml"
    conf.write_text(CONF)
    env = {**os.environ, "VOXANON_DATA": str(data), "VOXANON_EXP": str(tmp / "exp"), "OMP_NUM_THREADS": "1",
           "train_cmd": "run.pl", "decode_cmd": "run.pl", "cuda_cmd": "run.pl"}
    logs = [run_stage(s, conf, env) for s in ("local/train_attacker.sh", "local/evaluate.sh", "local/make_report.sh")]
    return tmp / "exp", logs


@pytest.mark.slow
def test_stages_results_and_summary(experiment):
    exp, logs = experiment
    assert (exp / "asv_orig" / "embedding_model.ckpt").is_file() and (exp / "asv_anon" / "asv.json").is_file()
    res = json.loads((exp / "results" / "results.json").read_text())
    per = res["asv"]["trial_sets"]["ev"]
    assert set(per) == {"original", "ignorant", "lazy-informed", "semi-informed"}
    for m in per.values():
        assert 0 <= m["eer"] <= 100 and m["n_target"] == 8 and m["n_nontarget"] == 24
        assert Path(m["scores"]).is_file()
    assert "no 'text' file" in res["wer"]["skipped"]
    emo = res["ser"]["sets"]["emo"]
    assert emo["classes"] == ["e0", "e1"] and "uar" in emo["original"] and "uar" in emo["anon"]
    assert res["headline"]["eer_semi_informed"] == per["semi-informed"]["eer"]
    text = (exp / "results" / "result_for_rank").read_text()
    for block in ("---- SER results ----", "---- ASV_eval results ----", "---- ASR results ----",
                  "---- ASV_eval^anon results ----"):
        assert block in text
    assert re.search(r"AVERAGE\s+semi-informed\s+anon\s+anon\s+\d+\.\d{3}", text)
    assert "skipped: no 'text' file" in text
    assert "semi-informed" in logs[1] or "EER" in logs[1]


@pytest.mark.slow
def test_stage_report_renders_in_chromium(experiment, tmp_path):
    exp, _ = experiment
    check_page(exp / "report", tmp_path / "profile", n_plots=2, n_audio=2)

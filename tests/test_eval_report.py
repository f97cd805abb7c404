"""Stages 6-8 end to end through their shell scripts on generated data: attackers, evaluation
(with a metric skipped for missing labels), results.json, the VPC summary, and the HTML report
rendered in headless Chromium (plots load, audio players present)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from voxanon.data.kaldi import DataDir, load_data_dir, write_data_dir
from voxanon.data.sets import DataConfig
from voxanon.eval.components import component_figures
from voxanon.eval.console import console_summary
from voxanon.eval.report import write_report
from voxanon.eval.results import assemble, extended_text, result_for_rank
from voxanon.eval.scoring import average, list_metrics
from voxanon.eval.split import describe_split
from voxanon.testing.datadirs import iemocap_dir, make_dir
from voxanon.testing.vpc_models import make_vpc_asr, make_vpc_asv_orig, make_vpc_ser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")

CONF = """exp: evaltest
data:
  recipe: mini
  eval_sets: [libri_dev_enrolls, libri_dev_trials_f]
  asv_train_set: train
  emotion_sets: [IEMOCAP_dev]
anonymizer:
  system: mcadams
  suffix: _anon
asv: {n_mels: 40, channels: 32, emb_dim: 24, attention_channels: 16, epochs: 1, batch_size: 8,
      chunk_s: 1.0, step_size: 20, features: online, num_workers: 0, device: cpu, orig_model: MODELS/asv_orig}
eval: {device: cpu, ser_model: MODELS/ser, asr: {backend: speechbrain, model: MODELS/asr},
       scenarios: [original, ignorant, lazy-informed, semi-informed, semi-informed-finetuned]}
report: {audio_examples: 2}
"""


def run_stage(script: str, conf: Path, data: Path, exp: Path, env: dict) -> str:
    proc = subprocess.run([str(ROOT / script), str(conf), str(data), str(exp)], cwd=ROOT, env=env, capture_output=True, text=True,
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
  const audio = [...document.querySelectorAll('audio')];
  const report = () => {
    d.textContent = `imgs=${imgs.length} loaded=${imgs.filter(i => i.complete && i.naturalWidth > 0).length} ` +
      `audio=${audio.length} rows=${document.querySelectorAll('#asv-table tr').length} ` +
      `timed=${audio.filter(a => a.duration > 0).length}`;
  };
  audio.forEach(a => a.addEventListener('loadedmetadata', report));
  report();
  document.body.appendChild(d);
});
</script></body>"""))
    proc = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                           "--no-first-run", "--disable-background-networking", "--disable-component-update",
                           "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
                           "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    m = re.search(r'<div id="probe">imgs=(\d+) loaded=(\d+) audio=(\d+) rows=(\d+) timed=(\d+)</div>', proc.stdout)
    assert m, proc.stdout[-2000:] + proc.stderr[-2000:]
    return dict(zip(("imgs", "loaded", "audio", "rows", "timed"), map(int, m.groups())))


def check_page(report: Path, profile: Path, n_plots: int, n_audio: int) -> None:
    html = (report / "index.html").read_text()
    assert html.count("<audio") == 2 * n_audio and 'id="asv-table"' in html
    for src in re.findall(r"src='([^']+)'", html):
        assert (report / src).is_file(), src
    if not CHROMIUM.is_file():
        pytest.skip("chromium not installed (utils/setup_env.sh installs it)")
    seen = render(report / "index.html", profile)
    assert seen["imgs"] == n_plots and seen["loaded"] == n_plots and seen["audio"] == 2 * n_audio
    assert seen["rows"] >= 3 and seen["timed"] == 2 * n_audio  # preload='metadata': real durations


def gendered_list(path: Path, gender: str, spk_offset: int) -> DataDir:
    """A trials dir (enrolls + trials) whose speakers are all of ``gender``."""
    make_dir(path, n_spk=3, n_utt=3, n_enroll=1, text=True, seconds=(0.5, 0.6), spk_offset=spk_offset)
    data = load_data_dir(path)
    write_data_dir(replace(data, tables={**data.tables, "spk2gender": {s: gender for s in data.spk2utt}}), path)
    return load_data_dir(path)


def test_report_from_results_renders_in_chromium(tmp_path):
    """results.json + summary + page from stage-7 parts (scores drawn at random, real audio dirs):
    intervals and small-list warnings, the data and split, audio of both genders beside the ASR
    hypotheses, the utility WER of data without transcripts, per-part figures of an admixture."""
    data, exp = tmp_path / "data", tmp_path / "exp"
    results = exp / "results"
    rng = np.random.default_rng(0)
    asv = {"metric": "asv", "suffix": "_x", "trial_lists": [], "trial_sets": {}, "average": {},
           "skipped": {"semi-informed": "asv_anon: not trained"}}
    hyp, ref = results / "wer" / "ev_x" / "text", results / "wer" / "ev_x" / "ref"
    hyp.parent.mkdir(parents=True)
    draws = {}
    for k, (name, g) in enumerate((("ev_trials_f", "f"), ("ev_trials_m", "m"))):
        trials = gendered_list(data / name, g, 10 * k).trials
        shutil.copytree(data / name, data / f"{name}_x")
        asv["trial_lists"].append({"name": name, "enroll_set": name, "trial_set": name})
        for scenario in ("original", "ignorant"):
            scores = np.array([rng.normal(1.0 if t.target else 0.0) for t in trials])
            m = list_metrics(trials, scores, results / "scores" / scenario / name, {}, name)
            asv["trial_sets"].setdefault(name, {})[scenario] = m
        utts = sorted({t.utt for t in trials})
        draws.update({u: i % 2 for i, u in enumerate(utts)})
        records = exp / "anon_records" / f"{name}_x" / "records.1.jsonl"
        records.parent.mkdir(parents=True)
        records.write_text("".join(json.dumps({"utt": u, "system": ["mcadams", "asr_tts"][draws[u]],
                                               "component": draws[u], "sub": {}}) + "\n" for u in utts))
    for scenario in ("original", "ignorant"):
        asv["average"][scenario] = average(asv["trial_sets"], scenario)
    (results / "asv.json").write_text(json.dumps(asv))
    # no transcripts: WER of the anonymized audio against the ASR of the original
    hyp.write_text("".join(f"{u} HELLO WORLD\n" for u in sorted(draws)))
    ref.write_text("".join(f"{u} HELLO {'WORLD' if draws[u] else 'THERE'}\n" for u in sorted(draws)))
    (results / "wer.json").write_text(json.dumps({
        "metric": "wer", "suffix": "_x", "reference": "asr_of_original", "asr": {"backend": "faster_whisper", "name": "fw"},
        "anon": {"sets": {"ev_x": {"wer": 25.0, "n_utts": len(draws), "hyp_file": str(hyp)}}, "mean": 25.0}}))

    res = assemble(results, "unit", requested=("asv", "wer"))
    res["data"] = describe_split(DataConfig(eval_sets=("ev_trials_f", "ev_trials_m")), data)
    res["components"] = component_figures(res, exp)
    assert res["ser"] == {"not_requested": "the conf's eval.metrics has no ser"}
    assert res["headline"]["eer_original"] == asv["average"]["original"]["eer"]
    per = res["asv"]["trial_sets"]["ev_trials_f"]["original"]
    assert per["eer_ci"][0] <= per["eer"] <= per["eer_ci"][1] and "only 6 target / 12 non-target" in per["warning"]
    assert res["warnings"] == [f"{n}: {res['asv']['trial_sets'][n]['original']['warning']}"
                               for n in ("ev_trials_f", "ev_trials_m")]  # once per list, not per attacker
    parts = res["components"]["parts"]
    assert parts["0"]["wer"] == 50.0 and parts["1"]["wer"] == 0.0 and parts["1"]["system"] == "asr_tts"
    assert set(parts["0"]["eer"]) == {"ignorant"} and set(parts["0"]["eer"]["ignorant"]) == {"ev_trials_f", "ev_trials_m"}
    text = extended_text(res)
    assert "skipped: asv_anon: not trained" in text and "not computed (the conf's eval.metrics has no ser)" in text
    assert "ev_trials_m (trials): 3 speakers (m 3), 9 utterances, 6 target / 12 non-target trials" in text
    rank = result_for_rank(res)  # the VPC layout: only the blocks with figures
    assert "---- ASV_eval results ----" in rank and "SER results" not in rank and "ASV_eval^anon" not in rank
    console = console_summary(res, exp / "report" / "index.html")
    assert re.search(r"^\d+\s+ev\s+trials\s+m\s+original\s+original\s+\d", console, re.M)  # gender kept
    assert re.search(r"^\d+\s+ev\s+trials\s+f\s+original\s+anon\s+\d", console, re.M)  # every attacker
    assert console.count("WARNING ev_trials_") == 2
    assert re.search(r"^EER ignorant: \d+\.\d\d % \(ev_trials_f \d+\.\d+ % \[95 % ", console, re.M)
    assert "WER: 25.00 % on anonymized audio against the ASR transcript of the original" in console
    assert "UAR: not computed" in console and console.endswith(f"report: {exp / 'report' / 'index.html'}\n")

    write_report(res, exp / "report", data, n_audio=2)
    page = (exp / "report" / "index.html").read_text()
    audio_rows = re.findall(r"<tr><td class=l>(spk\d+-u\d+)</td><td>spk\d+</td><td>([fm])</td><td>(.*?)</td><td>(.*?)</td>",
                            page)
    assert {g for _, g, _, _ in audio_rows} == {"f", "m"} and all(h == "HELLO WORLD" for *_, h in audio_rows)
    assert all(t.startswith("HELLO WORLD NUMBER") for _, _, t, _ in audio_rows)  # reference beside hypothesis
    assert "preload='none'" not in page and "UAR skipped" not in page and 'class="note">UAR not computed' in page
    assert "against the ASR transcript of the original audio" in page and 'id="components"' in page
    assert "ev_trials_f (trials): 3 speakers (f 3)" in page and "WARNING ev_trials_f: only 6 target" in page
    check_page(exp / "report", tmp_path / "profile", n_plots=4, n_audio=2)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    data, models = tmp / "data", tmp / "models"
    make_vpc_asr(models / "asr"), make_vpc_ser(models / "ser"), make_vpc_asv_orig(models / "asv_orig")
    make_dir(data / "train", n_spk=5, n_utt=5, n_enroll=0)
    # the VPC layout: enrollment and trials in separate dirs
    ev = load_data_dir(make_dir(tmp / "src", n_spk=4, n_utt=6, n_enroll=2, spk_offset=10, text=True))
    ev = replace(ev, wav_scp={u: str(tmp / "src" / w) for u, w in ev.wav_scp.items()})
    write_data_dir(replace(ev.subset(ev.enrolls), trials=None), data / "libri_dev_enrolls")
    write_data_dir(replace(ev.subset(u for u in ev.utts if u not in ev.enrolls), enrolls=None), data / "libri_dev_trials_f")
    iemocap_dir(data / "IEMOCAP_dev")
    for s in ("train", "libri_dev_enrolls", "libri_dev_trials_f", "IEMOCAP_dev"):  # "anonymized": same audio
        shutil.copytree(data / s, data / f"{s}_anon")
    conf = tmp / "conf.yaml"
    conf.write_text(CONF.replace("MODELS", str(models)))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "train_cmd": "run.pl", "decode_cmd": "run.pl", "cuda_cmd": "run.pl"}
    logs = [run_stage(s, conf, data, tmp / "exp", env) for s in ("local/train_attacker.sh", "local/evaluate.sh", "local/make_report.sh")]
    return tmp / "exp", logs


@pytest.mark.slow
def test_stages_results_and_summary(experiment):
    exp, logs = experiment
    assert (exp / "asv_anon" / "asv.json").is_file()
    res = json.loads((exp / "results" / "results.json").read_text())
    assert not (exp / "asv_orig").exists()  # ASV_orig is the given (VPC-layout) model, not trained
    per = res["asv"]["trial_sets"]["libri_dev_trials_f"]
    assert set(per) == {"original", "ignorant", "lazy-informed", "semi-informed", "semi-informed-finetuned"}
    # the stronger attacker: ASV_orig fine-tuned on the anonymized set, in ASV_orig's architecture
    ft = json.loads((exp / "asv_anon_ft" / "asv.json").read_text())
    assert ft["init_model"].endswith("models/asv_orig") and ft["settings"]["init_model"] == ft["init_model"]
    assert set(res["asv"]["convergence"]) == {"asv_anon", "asv_anon_ft"}
    eers = {sc: m["eer"] for sc, m in per.items() if sc != "original"}
    assert res["headline"]["eer_strongest"] == min(eers.values()) == eers[res["headline"]["strongest_attacker"]]
    for m in per.values():
        assert 0 <= m["eer"] <= 100 and m["n_target"] == 16 and m["n_nontarget"] == 48
        assert Path(m["scores"]).is_file()
    wer = res["wer"]["anon"]["sets"]["libri_dev_asr"]
    assert wer["n_utts"] == 16 and res["headline"]["wer_anon"] == wer["wer"] == res["wer"]["original"]["mean"]
    emo = res["ser"]["sets"]["IEMOCAP_dev"]
    assert emo["anon"]["uar"] == emo["original"]["uar"] and len(emo["original"]["rows"]) == 4
    assert res["headline"]["eer_semi_informed"] == per["semi-informed"]["eer"]
    assert res["models"]["wer"].startswith("speechbrain EncoderASR")
    text = (exp / "results" / "result_for_rank_anon").read_text()
    blocks = re.findall(r"^---- (.*) ----$", text, re.M)
    assert [b for b in blocks if not b.startswith("Time")] == [
        "SER results", "ASV_eval results", "ASR results", "ASV_eval^anon results"]
    assert re.search(r"^\s+dataset\s+split\s+ser\s+UAR\s+ACC_ang\s+ACC_hap\s+ACC_neu\s+ACC_sad$", text, re.M)
    assert re.search(r"^0\s+libri\s+dev\s+f\s+original\s+original\s+\d+\.\d+$", text, re.M)
    assert re.search(r"^0\s+libri\s+dev\s+original\s+\d+\.\d+$", text, re.M)
    assert re.search(r"^1\s+libri\s+dev\s+anon\s+\d+\.\d+$", text, re.M)
    assert re.search(r"^2\s+libri\s+dev\s+f\s+anon\s+anon\s+\d+\.\d+$", text, re.M)
    extended = (exp / "results" / "results_extended.txt").read_text()
    assert re.search(r"AVERAGE\s+semi-informed\s+\d+\.\d{3}", extended)
    assert "semi-informed" in logs[1] or "EER" in logs[1]
    console = logs[2]  # stage 8: every attacker in the VPC layout, then the short summary
    for scenario in ("original", "ignorant", "lazy-informed", "semi-informed"):
        assert re.search(rf"^EER {scenario}: \d+\.\d\d % \(libri_dev_trials_f \d+\.\d+ % \[95 % ", console, re.M)
    assert re.search(r"^1\s+libri\s+dev\s+f\s+original\s+anon\s+\d", console, re.M)
    assert "WARNING libri_dev_trials_f: only 16 target / 48 non-target trials" in console
    assert re.search(r"^WER: \d+\.\d\d % on anonymized audio, \d+\.\d\d % on the original", console, re.M)
    assert re.search(r"^UAR: \d+\.\d\d % on anonymized audio", console, re.M)
    assert console.endswith(f"report: {exp / 'report' / 'index.html'}\n")
    assert res["data"]["sets"]["libri_dev_trials_f"] == {"role": "trials", "speakers": 4, "utterances": 16,
                                                         "genders": {"f": 2, "m": 2}, "n_target": 16, "n_nontarget": 48}


@pytest.mark.slow
def test_stage_report_renders_in_chromium(experiment, tmp_path):
    exp, _ = experiment
    check_page(exp / "report", tmp_path / "profile", n_plots=2, n_audio=2)


@pytest.mark.slow
def test_wer_without_transcripts_is_against_the_asr_of_the_original(experiment, tmp_path):
    from voxanon.eval.pipeline import run_wer
    from voxanon.eval.config import EvalConfig

    exp, _ = experiment
    data = tmp_path / "data"
    for name in ("libri_dev_trials_f", "libri_dev_trials_f_anon"):
        d = load_data_dir(exp.parent / "data" / name)
        wav_scp = {u: str((exp.parent / "data" / name / w).resolve()) for u, w in d.wav_scp.items()}
        write_data_dir(replace(d, wav_scp=wav_scp, tables={k: v for k, v in d.tables.items() if k != "text"}),
                       data / name)
    ev = EvalConfig(device="cpu", asr={"backend": "speechbrain", "model": str(exp.parent / "models" / "asr")})
    res = run_wer(DataConfig(eval_sets=("libri_dev_trials_f",)), ev, data, "_anon", tmp_path / "out")
    assert res["reference"] == "asr_of_original" and "original" not in res
    # the "anonymized" audio is the original here: it matches its own transcript
    assert res["anon"]["sets"]["libri_dev_asr"]["wer"] == 0.0 and res["anon"]["sets"]["libri_dev_asr"]["n_utts"] == 16

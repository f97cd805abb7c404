"""Stage-7 (ASV) throughput: voxanon's evaluate against a VPC-style direct path on the same audio.

  python bench/eval_speed.py [--rounds 2] [--channels 512] [--speakers N] [--before COMMIT]
                             [--threads N] [--work DIR] [--out bench/results/eval_speed.md]

Builds a VPC 2024 layout from ``../shared/data/timit`` (generated speech-like audio when absent):
``libri_dev_enrolls`` (the enrollment utterances), ``libri_dev_trials_f`` / ``_m`` (the other
utterances, same-gender trials), and an "anonymized" copy of each (``<set>_anon``, the audio
pitch-shifted by resampling: different files, different embeddings). Two random-weight ECAPA-TDNN
of the VPC size (512 channels, 192-d) in the release's layout stand in for ASV_orig and ASV_anon
(speed does not depend on the weights). The four VPC scenarios (original, ignorant,
lazy-informed, semi-informed) are scored on both trial lists, so each model needs the audio of
six (orig) or three (anon) data dirs: 3 x 160 = 480 distinct (model, utterance) embeddings.

Paths, run alternately ``--rounds`` times, each in a fresh process with an empty cache (imports,
model loading, audio loading, pre-processing, embedding, scoring, EER all counted), with the
OMP/MKL threads run.pl gives stage 7 (every core) unless ``--threads``:

* ``voxanon``: ``python -m voxanon.bin.evaluate --metrics asv`` on a conf of that layout, the
  code of this checkout; with ``--before COMMIT`` that commit's code too, once, first
  (``git archive``);
* ``vpc-style``: what the VPC's ``run_evaluation.py`` does: one ``EncoderClassifier`` per model,
  every utterance of each (model, data dir) embedded once in a plain loop (soundfile load,
  -30 LUFS with pyloudnorm, peak normalization, zeros trimmed, ``encode_batch`` on a batch of
  one), speaker means, cosine, speechbrain ``EER``; with ``OMP_WAIT_POLICY=PASSIVE`` as
  voxanon's evaluate sets for itself (same conditions).

Reported: wall seconds of the whole process, embeddings computed (model calls; voxanon's counted
from its progress lines), utterances embedded per wall second, the ratio of the mean wall times,
the largest EER difference between the two paths, and how much padding a batch would change
the embeddings.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SETS = ("libri_dev_enrolls", "libri_dev_trials_f", "libri_dev_trials_m")
SCENARIOS = ("original", "ignorant", "lazy-informed", "semi-informed")
# scenario -> (enroll anonymized, trials anonymized, model), as voxanon.eval.scoring.SCENARIOS
VPC_SCENARIOS = {"original": (False, False, "orig"), "ignorant": (False, True, "orig"),
                 "lazy-informed": (True, True, "orig"), "semi-informed": (True, True, "anon")}



# -- the layout ------------------------------------------------------------------------------------
def source_dir(work: Path) -> tuple[Path, str]:
    if (SHARED / "timit" / "trials").is_file():
        return SHARED / "timit", "TIMIT (../shared/data/timit)"
    from voxanon.testing.datadirs import make_dir

    return make_dir(work / "src", n_spk=16, n_utt=10, n_enroll=3, seconds=(2.0, 4.0)), "generated (16 speakers)"


def build(work: Path, channels: int, speakers: int = 0) -> tuple[Path, str, int]:
    """The data root, conf and models under ``work``; (conf path, what the audio is, utterances)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    from voxanon.audio import load_16k
    from voxanon.data.kaldi import DataDir, load_data_dir, resolve_wav, write_data_dir
    from voxanon.testing.vpc_models import make_vpc_asv_orig

    src_path, what = source_dir(work)
    src = load_data_dir(src_path)
    gender = src.table("spk2gender")
    if speakers:  # the first speakers/2 of each gender
        keep = [s for g in "fm" for s in sorted(s for s in gender if gender[s] == g)[:speakers // 2]]
        src = src.subset(u for u in src.utts if src.utt2spk[u] in keep)
    enrolls = set(src.enrolls) & set(src.utts)
    members = {"libri_dev_enrolls": sorted(enrolls),
               "libri_dev_trials_f": sorted(u for u in src.utts if u not in enrolls and gender[src.utt2spk[u]] == "f"),
               "libri_dev_trials_m": sorted(u for u in src.utts if u not in enrolls and gender[src.utt2spk[u]] == "m")}
    data = work / "data"
    for name, utts in members.items():
        spks = {src.utt2spk[u] for u in utts}
        trials = None
        if name != "libri_dev_enrolls":
            enrolled = {src.utt2spk[u] for u in enrolls}
            trials = tuple(t for t in src.trials if t.utt in set(utts) and t.enroll_spk in enrolled)
        tables = {"spk2gender": {s: gender[s] for s in spks}}
        orig = DataDir({u: resolve_wav(src, u) for u in utts}, {u: src.utt2spk[u] for u in utts}, tables,
                       tuple(utts) if name == "libri_dev_enrolls" else None, trials)
        write_data_dir(orig, data / name)
        wav_dir = work / "anon_wav" / name
        wav_dir.mkdir(parents=True, exist_ok=True)
        anon_scp = {}
        for u in utts:  # "anonymized": pitch up ~6 % (resampled, played at 16 kHz)
            x = resample_poly(load_16k(resolve_wav(src, u), src.path).samples, 16, 17).astype(np.float32)
            sf.write(wav_dir / f"{u}.wav", x, 16000)
            anon_scp[u] = str(wav_dir / f"{u}.wav")
        write_data_dir(DataDir(anon_scp, orig.utt2spk, tables, orig.enrolls, trials), data / f"{name}_anon")
    make_vpc_asv_orig(work / "asv_orig", channels, 128, 192, seed=40)
    make_vpc_asv_orig(work / "exp" / "asv_anon", channels, 128, 192, seed=41)
    conf = work / "conf.yaml"
    conf.write_text(json.dumps({
        "exp": "speed",
        "data": {"eval_sets": list(SETS), "emotion_sets": []},
        "anonymizer": {"system": "mcadams", "suffix": "_anon"},
        "asv": {"orig_model": str(work / "asv_orig"), "device": "cpu"},
        "eval": {"metrics": ["asv"], "scenarios": list(SCENARIOS), "device": "cpu"},
    }, indent=1) + "\n")
    return conf, what + (f", first {speakers // 2} speakers of each gender" if speakers else ""), len(src.utts)


# -- the VPC-style path (run in its own process) ---------------------------------------------------
def vpc_style(work: Path) -> dict:
    """Embed every utterance of each (model, data dir) once in a plain loop, then score."""
    import pyloudnorm
    import soundfile as sf
    import torch
    from speechbrain.inference.speaker import EncoderClassifier
    from speechbrain.utils.metric_stats import EER

    from voxanon.data.kaldi import load_data_dir, resolve_wav

    data = work / "data"
    t0 = time.perf_counter()
    models = {k: EncoderClassifier.from_hparams(source=str(d), savedir=str(d), run_opts={"device": "cpu"})
              for k, d in (("orig", work / "asv_orig"), ("anon", work / "exp" / "asv_anon"))}
    vectors: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    n = 0

    def embed(model: str, name: str) -> dict[str, np.ndarray]:
        nonlocal n
        if (model, name) not in vectors:  # the VPC keeps each (model, dataset) under its results dir
            d = load_data_dir(data / name)
            out = {}
            for utt in d.utts:
                signal, fs = sf.read(resolve_wav(d, utt), dtype="float32")
                meter = pyloudnorm.Meter(fs)
                x = pyloudnorm.normalize.loudness(signal, meter.integrated_loudness(signal), -30.0)
                x = x / np.max(np.abs(x))
                wav = torch.tensor(np.trim_zeros(x.astype(np.float32))).unsqueeze(0)
                with torch.no_grad():
                    out[utt] = models[model].encode_batch(wavs=wav).squeeze().numpy()
                n += 1
            vectors[(model, name)] = out
        return vectors[(model, name)]

    eers = {}
    for scenario, (e_anon, t_anon, model) in VPC_SCENARIOS.items():
        for trial_set in SETS[1:]:
            enroll_set = SETS[0]
            e_dir = load_data_dir(data / enroll_set)
            trials = load_data_dir(data / trial_set).trials
            e_vec = embed(model, enroll_set + ("_anon" if e_anon else ""))
            t_vec = embed(model, trial_set + ("_anon" if t_anon else ""))
            spk = {s: np.mean([e_vec[u] for u in e_dir.utts if e_dir.utt2spk[u] == s], axis=0)
                   for s in {t.enroll_spk for t in trials}}

            def cos(a, b):
                return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

            scores = [(cos(spk[t.enroll_spk], t_vec[t.utt]), t.target) for t in trials]
            eer, _ = EER(torch.tensor([s for s, tg in scores if tg]), torch.tensor([s for s, tg in scores if not tg]))
            eers[f"{trial_set} {scenario}"] = 100 * float(eer)
    return {"embedded": n, "embed_and_score_s": time.perf_counter() - t0, "eers": eers}


def padding_check(work: Path, n: int = 8) -> str:
    """How much a padded batch (speechbrain encode_batch with relative lengths) changes the
    embeddings of ``n`` enrollment utterances against one at a time (the VPC's and ours)."""
    import torch
    from speechbrain.inference.speaker import EncoderClassifier

    from voxanon.audio import load_16k
    from voxanon.data.kaldi import load_data_dir, resolve_wav
    from voxanon.eval.scoring import preprocess

    d = work / "asv_orig"
    clf = EncoderClassifier.from_hparams(source=str(d), savedir=str(d), run_opts={"device": "cpu"})
    data = load_data_dir(work / "data" / SETS[0])
    xs = [np.trim_zeros(preprocess(load_16k(resolve_wav(data, u), data.path).samples, -30.0, 1.0))
          for u in data.utts[:n]]
    longest = max(len(x) for x in xs)
    with torch.no_grad():
        one = [clf.encode_batch(torch.from_numpy(x)[None]).squeeze().numpy() for x in xs]
        wavs = torch.stack([torch.nn.functional.pad(torch.from_numpy(x), (0, longest - len(x))) for x in xs])
        batch = clf.encode_batch(wavs, torch.tensor([len(x) / longest for x in xs])).squeeze(1).numpy()
    padded = [i for i, x in enumerate(xs) if len(x) < longest]
    rel = max(np.abs(one[i] - batch[i]).max() / np.abs(one[i]).max() for i in padded)
    cos = min(float(one[i] @ batch[i] / np.linalg.norm(one[i]) / np.linalg.norm(batch[i])) for i in padded)
    return (f"Padding check: {len(padded)} of {n} enrollment utterances padded into one batch (with their "
            f"lengths) embed differently from one at a time: largest difference {rel:.1e} of the largest "
            f"component, lowest cosine {cos:.6f} (the VPC comparison tests allow 1e-4). Scoring therefore "
            "embeds one utterance at a time, as the VPC does.")


# -- running and timing ----------------------------------------------------------------------------
def run_voxanon(work: Path, conf: Path, pyscripts: Path, threads: int, env_extra: dict | None = None) -> dict:
    results = work / "exp" / "results"
    if results.exists():
        subprocess.run(["rm", "-rf", str(results)], check=True)
    env = {**os.environ, "PYTHONPATH": f"{pyscripts}", "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads), **(env_extra or {})}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "voxanon.bin.evaluate", "--data-root", str(work / "data"),
                           "--exp", str(work / "exp"), "--metrics", "asv", str(conf)],
                          capture_output=True, text=True, env=env, cwd=str(work))
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"evaluate failed ({pyscripts}):\n{proc.stderr[-3000:]}")
    # each embedding request ends with a progress line "embed <set>: n/n (...)"
    done = {}
    for m in re.finditer(r"embed (\S+): (\d+)/(\d+) ", proc.stderr):
        done.setdefault(m.group(1), []).append((int(m.group(2)), int(m.group(3))))
    embedded = sum(sum(t for d, t in rows if d == t) for rows in done.values())
    res = json.loads((results / "asv.json").read_text())
    eers = {f"{name} {sc}": m["eer"] for name, per in res["trial_sets"].items() for sc, m in per.items() if "eer" in m}
    return {"wall_s": wall, "embedded": embedded, "eers": eers}


def run_vpc_style(work: Path, threads: int, env_extra: dict | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "pyscripts"), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads), **(env_extra or {})}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--vpc-style", str(work)], capture_output=True, text=True,
                          env=env)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"vpc-style failed:\n{proc.stderr[-3000:]}")
    return {"wall_s": wall, **json.loads(proc.stdout.strip().splitlines()[-1])}


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2, help="alternations of voxanon and vpc-style")
    p.add_argument("--channels", type=int, default=512, help="ECAPA channels (VPC 2024: 512)")
    p.add_argument("--speakers", type=int, default=0, help="use the first N/2 speakers of each gender (0: all)")
    p.add_argument("--before", help="also time this commit's voxanon code once, first (e.g. the commit before "
                   "the change), with the default OpenMP waits it ran with")
    p.add_argument("--threads", type=int, default=0,
                   help="OMP/MKL threads of every path (0: every core, what run.pl gives stage 7)")
    p.add_argument("--busy", type=int, default=0,
                   help="run N busy-looping processes meanwhile (other jobs on a shared machine)")
    p.add_argument("--vpc-default-waits", action="store_true",
                   help="also time vpc-style with OpenMP's default (active) waits, as the VPC's code runs")
    p.add_argument("--work", help="build the layout here and keep it (default: a temporary dir)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "eval_speed.md"))
    p.add_argument("--vpc-style", metavar="WORK", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.vpc_style:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        print(json.dumps(vpc_style(Path(args.vpc_style))))
        return 0
    from eval_bench import machine  # bench/ is on sys.path: this script's own dir

    threads = args.threads or os.cpu_count() or 1
    tmp = None if args.work else tempfile.TemporaryDirectory()
    work = Path(args.work or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    conf, what, n_utts = build(work, args.channels, args.speakers)
    commit = git("rev-parse", "--short", "HEAD") + (" (with uncommitted changes)" if git(
        "status", "--porcelain", "pyscripts", "bench/eval_speed.py") else "")
    header_machine = machine("cpu")
    rows = []

    def record(name: str, r: int, x: dict) -> None:
        rows.append((name, r, x))
        print(name, r + 1, {k: (round(v, 2) if isinstance(v, float) else v) for k, v in x.items() if k != "eers"},
              flush=True)

    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    before_name = None
    if args.before:
        before = work / "before"
        before.mkdir(exist_ok=True)
        subprocess.run(f"git -C {ROOT} archive {args.before} pyscripts | tar -x -C {before}", shell=True, check=True)
        before_name = f"voxanon before ({git('rev-parse', '--short', args.before)})"
        record(before_name, 0, run_voxanon(work, conf, before / "pyscripts", threads))
    passive = {"OMP_WAIT_POLICY": "PASSIVE"}  # what voxanon's evaluate now sets for itself
    active = "vpc-style, default OpenMP waits"
    try:
        for r in range(args.rounds):
            record("voxanon", r, run_voxanon(work, conf, ROOT / "pyscripts", threads))
            record("vpc-style", r, run_vpc_style(work, threads, passive))
            if args.vpc_default_waits:
                record(active, r, run_vpc_style(work, threads))
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    names = [n for n in (before_name, "voxanon", "vpc-style", active if args.vpc_default_waits else None) if n]
    mean = {n: float(np.mean([x["wall_s"] for m, _, x in rows if m == n])) for n in names}
    rate = {n: float(np.mean([x["embedded"] / x["wall_s"] for m, _, x in rows if m == n])) for n in names}
    ours = [x for m, _, x in rows if m == "voxanon"][-1]["eers"]
    vpc = [x for m, _, x in rows if m == "vpc-style"][-1]["eers"]
    both = [k for k in vpc if k in ours]
    max_diff = max((abs(ours[k] - vpc[k]) for k in both), default=float("nan"))
    cmd = (f"python bench/eval_speed.py --rounds {args.rounds} --channels {args.channels}"
           + (f" --speakers {args.speakers}" if args.speakers else "")
           + (f" --threads {args.threads}" if args.threads else "")
           + (f" --busy {args.busy}" if args.busy else "")
           + (" --vpc-default-waits" if args.vpc_default_waits else "")
           + (f" --before {args.before}" if args.before else ""))
    lines = [
        "# Stage-7 ASV evaluation speed: voxanon against a VPC-style direct path", "",
        f"Command: `{cmd}`", "",
        f"Code measured: commit {commit}.", "",
        f"Machine: {header_machine}", "",
        f"Data: {what}: {n_utts} utterances in the VPC layout (libri_dev_enrolls, libri_dev_trials_f/m and "
        f"their pitch-shifted `_anon` copies); ECAPA-TDNN {args.channels} channels, 192-d, random weights, as "
        f"ASV_orig and ASV_anon; scenarios {', '.join(SCENARIOS)} on both trial lists (8 score lists): "
        f"{3 * n_utts} distinct (model, utterance) embeddings. {threads} OMP/MKL thread(s) per process (run.pl "
        "gives the single stage-7 task every core). Every run is a fresh process with an empty cache; the "
        "wall seconds include imports, model loading, audio loading and pre-processing, scoring and EERs."
        + (f" {args.busy} busy-looping process(es) ran meanwhile (other jobs on a shared machine)." if args.busy
           else ""), "",
        "voxanon = `python -m voxanon.bin.evaluate --metrics asv`; vpc-style = the VPC's run_evaluation.py way "
        "(one EncoderClassifier per model, each utterance of each (model, data dir) embedded once in a plain "
        "loop, speechbrain EER), run with `OMP_WAIT_POLICY=PASSIVE` as voxanon's evaluate now sets for itself"
        + (f"; {before_name} = that commit's code, run once with the OpenMP defaults it ran with" if before_name
           else "") + ".", "",
        "| path | round | wall seconds | embeddings computed | utterances embedded per wall second |",
        "|---|---|---|---|---|"]
    for name, r, x in rows:
        lines.append(f"| {name} | {r + 1} | {x['wall_s']:.1f} | {x['embedded']} | {x['embedded'] / x['wall_s']:.2f} |")
    lines += ["", "| path | mean wall seconds | mean utterances/s | wall time / vpc-style |", "|---|---|---|---|"]
    lines += [f"| {n} | {mean[n]:.1f} | {rate[n]:.2f} | {mean[n] / mean['vpc-style']:.2f} |" for n in names]
    lines += ["", f"EERs of the last voxanon and vpc-style runs: largest difference {max_diff:.3g} points over the "
              f"{len(both)} (list, scenario) pairs (the EER algorithms differ in float32 and tie rules: docs/evaluation.md; "
              "the embeddings are the same).", "", padding_check(work), ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Random admixture against the semi-informed and the mixture-aware attacker, on real speech.

  OMP_NUM_THREADS=2 python bench/admixture_attack.py anonymize [--work exp/bench_admixture_attack]
  OMP_NUM_THREADS=2 python bench/admixture_attack.py evaluate  [--work ...] [--p "0 0.2 0.4 0.6 1"] [--filtering true]

The offline admixture of conf/admixture_offline.yaml (McAdams + the packaged ASR -> TTS cascade,
its seed) on the real-speech sets of ../shared/data: attacker training on libri100 + vctk + arctic
+ emodb anonymized, trials on timit. ``anonymize`` runs each pure system once over every set
(the admixture's part cache, WORK/parts); ``evaluate`` assembles every p from those two outputs
(the draws are nested across p, as in egs/admixture_sweep), then per p trains the semi-informed ASV
on the mixed training set and the mixture-aware attacker (voxanon.eval.mixture_attack) on the two
pure outputs (and, with --filtering, one ASV per classifier cluster of the mixed training set:
training-set filtering), and scores timit. The ASV is small (``ASV`` below: 128 channels, few epochs) so the
whole bench fits a few CPU hours: its EERs compare attackers, they are not VPC figures.
Writes bench/results/admixture_attack.{json,md}.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import shutil
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from voxanon.anonymize.admixture import Admixture, PartCache
from voxanon.anonymize.base import BuildContext, Utterance
from voxanon.anonymize.config import parse_params
from voxanon.audio import SAMPLE_RATE, load_16k, resample, write_wav
from voxanon.data.kaldi import DataDir, load_data_dir, resolve_wav, write_data_dir
from voxanon.eval.config import AsvConfig
from voxanon.experiment import load_experiment
from voxanon.progress import Progress, setup_logging

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
TRAIN_SETS = ("libri100", "vctk", "arctic", "emodb")
TRIAL_SET = "timit"
CONF = ROOT / "conf" / "admixture_offline.yaml"
# Cut to fit about an hour of a shared 2-core machine: the cascade transcribes with the packaged
# tiny.en (the conf's documented faster alternative) instead of base, one thread per job; the
# attacker trains on libri100's first 100 speakers (one 4 s segment each), 5 emodb utterances per
# speaker, 15 arctic utterances per speaker and all of vctk; timit (the trials) is whole.
ASR_MODEL = "whisper-tiny.en-ct2"
SPEAKERS = {"libri100": 100}
UTTS_PER_SPEAKER = {"libri100": 1, "emodb": 5, "arctic": 15}
log = logging.getLogger("bench")


def admixture(p: float, cache: Path, work: Path) -> Admixture:
    """conf/admixture_offline.yaml with probability p for its second part (the cascade)."""
    anon = load_experiment(CONF).anonymizer
    first, second = anon.params["systems"]
    second = {**second, "params": {**second["params"], "asr": {**second["params"]["asr"], "model": ASR_MODEL,
                                                                            "cpu_threads": 1}}}
    params = parse_params("admixture", {"cache_dir": str(cache), "systems": [
        {**first, "p": round(1 - p, 10)}, {**second, "p": p}]})
    return Admixture(params, BuildContext(anon.seed, "cpu", work))


def bench_set(name: str) -> DataDir:
    data = load_data_dir(SHARED / name)
    spks = sorted(data.spk2utt)[:SPEAKERS.get(name)]
    return data.subset(u for s in spks for u in sorted(data.spk2utt[s])[:UTTS_PER_SPEAKER.get(name)])


def utterances(data: DataDir):
    gender = data.table("spk2gender") or {}
    for utt in data.utts:
        spk = data.utt2spk[utt]
        yield Utterance(utt, spk, load_16k(resolve_wav(data, utt), data.path), gender.get(spk))


def anonymize(work: Path, job: int, nj: int) -> dict:
    """Each pure system over every set once (utterances job, job + nj, ... of each); the outputs
    stay in the part cache, whose dirs WORK/parts.json names for ``evaluate``."""
    cost = {}
    for p in (0.0, 1.0):
        mix = admixture(p, work / "parts", work / f"build{job}")
        start = time.process_time(), time.time()
        for name in (TRIAL_SET, *TRAIN_SETS):
            data = bench_set(name)
            data = data.subset(data.utts[job - 1::nj])
            prog = Progress(len(data.utts), f"p={p:g} {name}")
            for utt in utterances(data):
                mix(utt)
                prog.step()
        cost[f"p{p:g}"] = {"cpu_s": time.process_time() - start[0], "wall_s": time.time() - start[1]}
        log.info("p=%g: %s", p, cost[f"p{p:g}"])
    (work / "parts.json").write_text(json.dumps([c.dir.name for c in mix.caches]) + "\n")
    return cost


def part_outputs(work: Path) -> list[PartCache]:
    """The part caches ``anonymize`` filled (named in WORK/parts.json: evaluating never runs a part,
    even if the systems' code has changed their cache keys since)."""
    return [PartCache(work / "parts", key) for key in json.loads((work / "parts.json").read_text())]


ASV = AsvConfig(channels=128, attention_channels=64, emb_dim=192, lr=0.002, base_lr=0.0002, step_size=8, epochs=4,
                batch_size=32, chunk_s=2.0, features="precomputed", num_workers=0, device="cpu", orig_model="")
METRIC_ARGS = {"p_target": 0.01, "c_miss": 1.0, "c_fa": 1.0, "omega": 1.0}


def renamed(data: DataDir, prefix: str) -> DataDir:
    """Utterance and speaker ids prefixed with the corpus (the corpora's ids could collide)."""
    return DataDir({f"{prefix}-{u}": w for u, w in data.wav_scp.items()},
                   {f"{prefix}-{u}": f"{prefix}-{s}" for u, s in data.utt2spk.items()})


def assemble(work: Path, p: float, parts: list[PartCache]) -> dict[str, dict[str, int]]:
    """WORK/data/<set>_p<p> for every set, from the part outputs (no part runs: the draws are
    nested), and train_p<p> (the four training sets together); returns {set: {utt: drawn part}}."""
    mix = admixture(p, work / "parts", work / "build")
    root, draws = work / "data", {}
    train_wav, train_spk = {}, {}
    for name in (TRIAL_SET, *TRAIN_SETS):
        data = bench_set(name)
        out = root / f"{name}_p{p:g}"
        wav_scp = {}
        for utt in utterances(data):
            part = mix.choose(utt.id)
            digest = hashlib.sha256(np.ascontiguousarray(utt.audio.samples).tobytes()).hexdigest()
            result = parts[part].get(utt.id, digest)
            if result is None:
                raise SystemExit(f"{utt.id}: no output of part {part} in {parts[part].dir}: run 'anonymize' first")
            wav = out / "wav" / f"{utt.id}.wav"
            wav_scp[utt.id] = str(wav.resolve())
            if not wav.is_file():  # kept from an earlier evaluate: the embedding caches stay valid
                write_wav(wav, resample(result.audio, SAMPLE_RATE))
            draws.setdefault(name, {})[utt.id] = part
        anon = replace(data, wav_scp=wav_scp, path=out)
        write_data_dir(anon, out)
        if name in TRAIN_SETS:
            r = renamed(anon, name)
            train_wav.update(r.wav_scp)
            train_spk.update(r.utt2spk)
    write_data_dir(DataDir(train_wav, train_spk), root / f"train_p{p:g}")
    return draws


def original_trials(work: Path) -> None:
    data = load_data_dir(SHARED / TRIAL_SET)
    write_data_dir(replace(data, wav_scp={u: str(Path(resolve_wav(data, u)).resolve()) for u in data.utts}),
                   work / "data" / TRIAL_SET)


def evaluate(work: Path, ps: list[float], filtering: bool, write) -> None:
    """The table's rows; ``write(result so far)`` after each p, so a cut run keeps what it measured."""
    from voxanon.eval.asv_model import load_asv
    from voxanon.eval.asv_train import train_asv
    from voxanon.eval.mixture_attack import evaluate_mixture
    from voxanon.eval.mixture_classifier import features, train_classifier
    from voxanon.eval.mixture_parts import cluster_dirs, mixture_dir
    from voxanon.eval.scoring import EmbeddingStore, evaluate_asv, find_trial_lists

    root = work / "data"
    original_trials(work)
    parts_out = part_outputs(work)
    voices = dict(Counter(json.loads(f.read_text())["record"].get("speaker", "?")
                          for f in sorted(parts_out[1].dir.glob("*.json"))))
    draws = {p: assemble(work, p, parts_out) for p in sorted({0.0, 1.0, *ps})}
    timer = {"train_s": 0.0, "score_s": 0.0}
    retried: list[str] = []
    trained: list[Path] = []  # p = 0 and 1: the part ASVs are the semi-informed ones

    def model(p: float, data: Path | None = None, name: str = "") -> Path:
        """The semi-informed ASV of p (at p = 0 and 1: the part ASVs), or one on ``data``."""
        out = work / "asv" / (name or f"p{p:g}")
        if out in trained:
            return out
        trained.append(out)
        start = time.time()
        try:
            train_asv(ASV, load_data_dir(data or root / f"train_p{p:g}"), out)
        except ValueError as err:  # a last batch of one row: BatchNorm cannot train on it
            if "more than 1 value per channel" not in str(err):
                raise
            shutil.rmtree(out)
            train_asv(replace(ASV, batch_size=ASV.batch_size - 1), load_data_dir(data or root / f"train_p{p:g}"), out)
            retried.append(out.name)
        timer["train_s"] += time.time() - start
        return out

    def store(path: Path) -> EmbeddingStore:
        return EmbeddingStore(load_asv(path, "cpu"), path, work / "emb" / path.name, -30.0, 1.0)

    parts = [store(model(0.0)), store(model(1.0))]
    part_data = [load_data_dir(root / f"train_p{p:g}") for p in (0.0, 1.0)]
    clf, info = train_classifier(part_data, [f"train_p{p:g}" for p in (0.0, 1.0)], work / "feats")
    lists = find_trial_lists([TRIAL_SET], root)
    rows = []
    for p in ps:
        exp = work / "exp" / f"p{p:g}"
        suffix = f"_p{p:g}"
        for i in (0, 1):  # the attacker's part outputs of the training set, under the stage-6 names
            write_data_dir(part_data[i], root / f"train{suffix}_part{i}")
        write_record(exp / "anon_records" / f"{TRIAL_SET}{suffix}", draws[p][TRIAL_SET])
        mixture_dir(exp).mkdir(parents=True, exist_ok=True)
        (mixture_dir(exp) / "classifier.json").write_text(json.dumps({"classifier": clf.to_json(), "info": info}))
        start = time.time()
        semi = store(model(p))
        res = evaluate_asv(lists, ["semi-informed"], {"anon": semi}, root, suffix, exp / "results", METRIC_ARGS)
        clusters = {f"cluster{i}": "not run (--filtering false)" for i in (0, 1)}
        if filtering and 0 < p < 1:  # a pure system has nothing to filter
            mixed = load_data_dir(root / f"train{suffix}")
            labels = clf.label(features(mixed, f"train{suffix}", work / "feats"))
            for i, d in enumerate(cluster_dirs(mixed, labels, 2, exp / "mixture")):
                clusters[f"cluster{i}"] = store(model(p, d, f"p{p:g}_cluster{i}")) if d else "under 2 speakers"
        mix = evaluate_mixture(lists, {"anon": semi, "part0": parts[0], "part1": parts[1], **clusters}, root, suffix,
                               "train", exp, exp / "results", ASV, METRIC_ARGS, 2)
        timer["score_s"] += time.time() - start
        aware = mix["trial_sets"][TRIAL_SET]["mixture-aware"]
        rows.append({"p": p, "semi_informed_eer": res["trial_sets"][TRIAL_SET]["semi-informed"]["eer"],
                     "mixture_aware_eer": aware["eer"], "cross_component_trials": aware["cross_component_trials"],
                     "n_trials": aware["n_target"] + aware["n_nontarget"],
                     "cascade_share_trials": float(np.mean(list(draws[p][TRIAL_SET].values()))),
                     "classifier_vs_draws": mix["mixture"]["classifier"]["eval_vs_draws"].get("accuracy"),
                     "filtered_eer": mix["trial_sets"][TRIAL_SET].get("filtered", {}).get("eer"),
                     "filtered_clusters": mix["mixture"]["filtered"]["clusters"]})
        log.info("p=%g: %s", p, rows[-1])
        write({"rows": rows, "classifier": info, "timer": timer, "voices": voices, "batch_31": retried,
               "train": {"utts": len(part_data[0].utts), "speakers": len(set(part_data[0].utt2spk.values()))}})


def write_record(record_dir: Path, draws: dict[str, int]) -> None:
    record_dir.mkdir(parents=True, exist_ok=True)
    (record_dir / "records.1.jsonl").write_text("".join(json.dumps({"utt": u, "component": c}) + "\n"
                                                        for u, c in sorted(draws.items())))


def markdown(res: dict, cost: dict) -> str:
    info = res["classifier"]
    lines = ["# Random admixture vs the semi-informed and the mixture-aware attacker, real speech", "",
             f"`python bench/admixture_attack.py anonymize` then `evaluate` (OMP_NUM_THREADS=1-2), "
             f"{platform.machine()}, {os.cpu_count()} cores shared with other work, Python {platform.python_version()}.",
             "",
             "Offline admixture of conf/admixture_offline.yaml: McAdams (part 0, share 1 - p) and the packaged "
             f"ASR -> TTS cascade (part 1, share p; ASR {ASR_MODEL}; voices drawn: "
             + ", ".join(f"{v} ({n})" for v, n in sorted(res["voices"].items())) + "), the conf's seed. "
             "Attacker training: "
             f"{res['train']['utts']} utterances of {res['train']['speakers']} speakers "
             "(libri100: first 100 speakers, one 4 s segment each; emodb: 5 per speaker; arctic: 15 per speaker; "
             "vctk: all), anonymized; trials: timit (16 speakers, 3 enrollment utterances each, "
             f"{res['rows'][0]['n_trials']} same-gender trials), anonymized.",
             "",
             f"ASV: ECAPA-TDNN, {ASV.channels} channels, {ASV.epochs} epochs, batch {ASV.batch_size}, "
             f"{ASV.chunk_s:g} s chunks, lr {ASV.lr} cyclic: a small attacker, far from the VPC recipe; the EERs "
             "compare attackers on the same data, they are not VPC figures. "
             + (f"Batch {ASV.batch_size - 1} for {', '.join(dict.fromkeys(res['batch_31']))}: with {ASV.batch_size} the last "
                "batch of an epoch held one row, on which training BatchNorm fails." if res["batch_31"] else ""),
             "",
             "| p (cascade share) | semi-informed EER % | mixture-aware EER % | filtered EER % (best cluster) | "
             "cross-component trials | cascade share of timit | classifier vs true draws (timit) |",
             "|---|---|---|---|---|---|---|"]
    for r in sorted(res["rows"], key=lambda r: r["p"]):
        acc = r["classifier_vs_draws"]
        filt = "-" if r["filtered_eer"] is None else f"{r['filtered_eer']:.2f}"
        lines.append(f"| {r['p']:g} | {r['semi_informed_eer']:.2f} | {r['mixture_aware_eer']:.2f} | {filt} | "
                     f"{r['cross_component_trials']} / {r['n_trials']} | {r['cascade_share_trials']:.2f} | "
                     f"{'-' if acc is None else f'{100 * acc:.1f} %'} |")
    acc = info.get("held_out_accuracy")
    lines += ["", f"Component classifier (log-mel statistics, logistic regression): "
              f"{'n/a' if acc is None else f'{100 * acc:.1f} %'} on the attacker's own part outputs of "
              f"{info.get('held_out_speakers')} held-out training speakers ({info.get('held_out_utts')} utterances).",
              "At p = 0 and p = 1 the mixture-aware attacker's part ASVs are the semi-informed ASVs of the pure "
              "systems (the per-component EERs).", "",
              "Cost: " + ", ".join(f"{k} {v['cpu_s']:.0f} CPU s / {v['wall_s']:.0f} s wall" for k, v in cost.items())
              + f" (each pure system once over every set, two jobs); ASV training {res['timer']['train_s']:.0f} s, "
              f"scoring {res['timer']['score_s']:.0f} s.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("anonymize", "evaluate"))
    ap.add_argument("--work", default="exp/bench_admixture_attack")
    ap.add_argument("--p", default="0 0.2 0.4 0.6 1")
    ap.add_argument("--job", type=int, default=1, help="anonymize: this job of --nj")
    ap.add_argument("--nj", type=int, default=1)
    ap.add_argument("--filtering", default="true", choices=("true", "false"),
                    help="evaluate: also train an ASV per classifier cluster of each p's training set")
    args = ap.parse_args(argv)
    setup_logging()
    work = Path(args.work)
    if args.step == "anonymize":
        cost = anonymize(work, args.job, args.nj)
        (work / f"anonymize_cost.{args.job}.json").write_text(json.dumps(cost, indent=1) + "\n")
        return 0
    cost = {}
    for path in sorted(work.glob("anonymize_cost.*.json")):
        for k, v in json.loads(path.read_text()).items():
            cost.setdefault(k, {"cpu_s": 0.0, "wall_s": 0.0})
            cost[k]["cpu_s"] += v["cpu_s"]
            cost[k]["wall_s"] = max(cost[k]["wall_s"], v["wall_s"])
    out = ROOT / "bench" / "results"

    def write(res: dict) -> None:
        (out / "admixture_attack.json").write_text(json.dumps({**res, "anonymize_cost": cost}, indent=1) + "\n")
        (out / "admixture_attack.md").write_text(markdown(res, cost))

    evaluate(work, [float(p) for p in args.p.split()], args.filtering == "true", write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

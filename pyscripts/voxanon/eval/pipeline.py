"""Stage 7: privacy (ASV EER and more) and utility (WER, UAR) of an experiment's anonymized sets.

Original dirs are ``<data-root>/<set>``, anonymized ones ``<data-root>/<set><suffix>``. ASV
models: ``asv.orig_model`` (a dir or registry name) or ``<exp>/asv_orig`` for the ignorant /
lazy-informed attackers, ``<exp>/asv_anon`` for the semi-informed one, ``<exp>/asv_anon_ft`` for
the opt-in semi-informed-finetuned one (from stage 6; each trained attacker's validation EER per
epoch goes into the results as its convergence); for an admixture also the mixture-aware attacker
and training-set filtering (``<exp>/mixture``, voxanon.eval.mixture_attack). Writes under
``<exp>/results/``: ``asv.json``, ``wer.json``, ``ser.json`` (one per metric, each atomically;
stage 8 assembles ``results.json``), ``scores/<scenario>/<trial set>`` score files, ``wer/``
hypotheses, caches. A metric whose inputs are missing (no ``text``, no ``utt2emo``, no model) is
recorded as skipped with the reason; the others are still computed. Each metric ends with its
figures logged one a line, naming the audio.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from voxanon.config import fingerprint, from_dict
from voxanon.data.kaldi import DataDir, DataDirError, load_data_dir
from voxanon.eval.config import AsvConfig, EvalConfig
from voxanon.experiment import Experiment
from voxanon.fileio import atomic_write_text

log = logging.getLogger("voxanon.evaluate")


def resolve_orig_model(asv: AsvConfig, exp: Path) -> Path | str:
    """The ASV_orig dir, or a string saying why there is none."""
    if asv.orig_model:
        from voxanon.registry import ModelError, resolve_model

        try:
            return Path(resolve_model(asv.orig_model))
        except ModelError as err:
            return f"asv.orig_model {asv.orig_model!r}: {err}"
    path = exp / "asv_orig"
    return path if (path / "embedding_model.ckpt").is_file() else f"{path}: not trained (run stage 6)"


def orig_model_name(asv: AsvConfig, exp: Path) -> str:
    if asv.orig_model == "vpc-asv-orig":
        return "VPC 2024 ASV_orig release (vpc-asv-orig)"
    if asv.orig_model == "vpc-asv-ssl":
        return "VPC 2026 ASV_eval asv_ssl release (vpc-asv-ssl)"
    return asv.orig_model or f"{exp / 'asv_orig'} (trained by stage 6 on the original data)"


def run_asv(experiment: Experiment, data_cfg, asv: AsvConfig, ev: EvalConfig, data_root: Path, suffix: str, exp: Path,
            out: Path) -> dict:
    from voxanon.device import resolve_device
    from voxanon.eval.asv_model import load_asv
    from voxanon.eval.mixture_attack import evaluate_mixture
    from voxanon.eval.mixture_parts import mixture_dir
    from voxanon.eval.scoring import EmbeddingStore, average, evaluate_asv, find_trial_lists

    lists = find_trial_lists(data_cfg.eval_sets, data_root)
    device = resolve_device(ev.device)

    def store(key: str, path: Path | str) -> EmbeddingStore | str:
        """The model's embedding store, or why there is none."""
        if isinstance(path, Path) and not (path / "embedding_model.ckpt").is_file():
            return f"{path}: not trained (run stage 6)"
        if isinstance(path, str):
            return path
        return EmbeddingStore(load_asv(path, device), path, out / "emb" / f"asv_{key}", ev.target_lufs, ev.peak,
                              ev.allow_pipes)

    stores = {"orig": store("orig", resolve_orig_model(asv, exp)), "anon": store("anon", exp / "asv_anon")}
    if "semi-informed-finetuned" in ev.scenarios:
        stores["anon_ft"] = store("anon_ft", exp / "asv_anon_ft")
    metric_args = {"p_target": ev.dcf_p_target, "c_miss": ev.dcf_c_miss, "c_fa": ev.dcf_c_fa,
                   "omega": ev.linkability_omega}
    res = evaluate_asv(lists, [s for s in ev.scenarios if s != "mixture-aware"], stores, data_root, suffix, out,
                       metric_args, ev.norm, ev.skip_missing_trials)  # mixture-aware: below
    res["embedding_norm"] = ev.norm
    anon_path = exp / "asv_anon"
    res["models"] = {"orig": orig_model_name(asv, exp) if not isinstance(stores["orig"], str) else stores["orig"],
                     "anon": f"{anon_path} (trained by stage 6)" if not isinstance(stores["anon"], str)
                     else stores["anon"]}
    if "anon_ft" in stores:
        res["models"]["anon_ft"] = stores["anon_ft"] if isinstance(stores["anon_ft"], str) else \
            f"{exp / 'asv_anon_ft'} (fine-tuned from ASV_orig by stage 6)"
    res["convergence"] = attacker_convergence(asv, exp)
    if experiment.anonymizer.system == "admixture" and {"semi-informed", "mixture-aware"} <= set(ev.scenarios) and data_cfg.asv_train_set:
        n_parts = len(experiment.anonymizer.params["systems"])
        mix = mixture_dir(exp)
        part_models = Path(asv.part_models) if asv.part_models else mix
        for i in range(n_parts):
            stores[f"part{i}"] = store(f"part{i}", part_models / f"asv_part{i}")
            stores[f"cluster{i}"] = store(f"cluster{i}", mix / f"asv_cluster{i}")
        more = evaluate_mixture(lists, stores, data_root, suffix, data_cfg.asv_train_set, exp, out, asv,
                                metric_args, n_parts)
        for name, per in more["trial_sets"].items():
            res["trial_sets"][name].update(per)
        for scenario in ("mixture-aware", "filtered"):
            if scenario in more["skipped"]:
                res["skipped"][scenario] = more["skipped"][scenario]
                log.warning("scenario %s skipped: %s", scenario, more["skipped"][scenario])
            else:
                res["average"][scenario] = average(res["trial_sets"], scenario)
        res["mixture"] = more["mixture"]
        eers = {sc: res["average"][sc]["eer"] for sc in ("semi-informed", "mixture-aware", "filtered")
                if "eer" in res["average"].get(sc, {})}
        if eers:  # the lowest EER: the attacker the admixture protects least against
            res["mixture"]["strongest"] = min(eers, key=eers.get)
        res["models"]["mixture"] = (f"{part_models}/asv_part<i> (one per admixture part) and {mix}/asv_cluster<i> "
                                    "(trained by stage 6)")
    res["trial_lists"] = [{"name": t.name, "enroll_set": t.enroll_set, "trial_set": t.trial_set} for t in lists]
    return res


# model dirs stage 6 trains -> the attacker they are
TRAINED = {"asv_orig": "ASV_orig (original, ignorant, lazy-informed)", "asv_anon": "semi-informed",
           "asv_anon_ft": "semi-informed-finetuned"}


def attacker_convergence(asv: AsvConfig, exp: Path) -> dict:
    """Each attacker stage 6 trained: its validation EER per epoch and whether it had converged."""
    from voxanon.eval.asv_model import read_info
    from voxanon.eval.convergence import convergence

    out = {}
    for name, attacker in TRAINED.items():
        history = read_info(exp / name).get("history") if name != "asv_orig" or not asv.orig_model else None
        if history:
            out[name] = {"attacker": attacker, **convergence(history, asv.convergence_margin, asv.convergence_epochs)}
    return out


def combined_dir(dirs: list[Path], name: Path) -> DataDir:
    """The union of ``dirs`` (wav entries made absolute) under the name ``name``, as the VPC's
    ``combine_asr_data`` pools trials_f + trials_m."""
    from voxanon.data.kaldi import resolve_wav

    wav_scp, utt2spk = {}, {}
    for d in dirs:
        data = load_data_dir(d)
        wav_scp.update({u: resolve_wav(data, u) for u in data.wav_scp})
        utt2spk.update(data.utt2spk)
    return DataDir(wav_scp=wav_scp, utt2spk=utt2spk, path=name)


def run_wer(data_cfg, ev: EvalConfig, data_root: Path, suffix: str, out: Path) -> dict:
    from voxanon.asr import AsrConfig, load_asr
    from voxanon.device import resolve_device
    from voxanon.eval.wer import asr_sets, transcribe_set, wer_of_set

    trial_sets = [s for s in data_cfg.eval_sets if (data_root / s / "trials").is_file()] or list(data_cfg.eval_sets)
    groups = asr_sets(trial_sets)
    refs = {name: {u: t for m in members for u, t in (load_data_dir(data_root / m).table("text") or {}).items()}
            for name, members in groups.items()}
    cfg = from_dict(AsrConfig, ev.asr, "eval.asr")
    asr = load_asr(cfg, resolve_device(ev.device))
    text_norm = "vpc" if cfg.backend == "speechbrain" else "whisper"
    hyp_root = out / "wer" / fingerprint(cfg)  # every setting, defaults included
    res: dict = {"asr": {**asdict(cfg), "name": asr_name(cfg)}, "sets_used": groups, "reference": "text"}
    if not any(refs.values()):  # no transcripts: the utility proxy, the ASR's words on the original
        log.warning("no 'text' file in the eval sets (%s): WER of the anonymized audio against the ASR "
                    "transcript of the original audio", " ".join(trial_sets))
        res["reference"] = "asr_of_original"
        refs = {name: transcribe_set(combined_dir([data_root / m for m in members], data_root / name), asr,
                                     cfg.batch_size, hyp_root / f"{name}.hyp.jsonl", ev.allow_pipes)[0]
                for name, members in groups.items()}
    for side, sfx in (("original", ""), ("anon", suffix)):
        if side == "original" and (not ev.wer_original or res["reference"] != "text"):
            continue
        per_set = {}
        for name, members in groups.items():
            dirs = [data_root / f"{m}{sfx}" for m in members]
            missing = [str(d) for d in dirs if not (d / "wav.scp").is_file()]
            if not refs[name]:
                per_set[name] = {"skipped": "no 'text' file (reference transcripts) in the original data dir"}
            elif missing:
                per_set[name] = {"skipped": f"data dir(s) missing: {' '.join(missing)}"}
            else:
                per_set[name] = wer_of_set(f"{name}{sfx}", combined_dir(dirs, data_root / f"{name}{sfx}"),
                                           refs[name], asr, text_norm, cfg.batch_size, hyp_root, ev.allow_pipes,
                                           ev.allow_partial)
        wers = [r["wer"] for r in per_set.values() if "wer" in r]
        res[side] = {"sets": per_set, **({"mean": float(sum(wers) / len(wers))} if wers else {})}
    return res


def asr_name(cfg) -> str:
    """Who produced a WER: "VPC 2024 ASR_eval (vpc-asr)" or the backend and model."""
    if cfg.backend == "speechbrain" and cfg.model == "vpc-asr":
        return "VPC 2024 ASR_eval (speechbrain wav2vec2-CTC, vpc-asr)"
    return f"{cfg.backend} {cfg.model} (proxy, not the VPC ASR)" if cfg.backend != "speechbrain" \
        else f"speechbrain EncoderASR {cfg.model}"


def run_ser(data_cfg, ev: EvalConfig, data_root: Path, suffix: str, out: Path) -> dict:
    from voxanon.device import resolve_device
    from voxanon.eval.ser import evaluate_uar
    from voxanon.registry import resolve_model

    if not data_cfg.emotion_sets:
        return {"skipped": "the conf names no emotion sets (data.emotion_sets)"}
    model_root = Path(resolve_model(ev.ser_model))
    res = {"ser_model": ev.ser_model, "name": ser_name(ev.ser_model), "sets": {}}
    loaded: dict = {}  # fold -> model, loaded once for all the emotion sets
    for s in data_cfg.emotion_sets:
        orig = load_data_dir(data_root / s)
        anon_dir = data_root / f"{s}{suffix}"
        anon = load_data_dir(anon_dir) if (anon_dir / "wav.scp").is_file() else None
        r = evaluate_uar(orig, anon, model_root, out / "ser" / fingerprint(str(model_root)),
                         resolve_device(ev.device), ev.allow_pipes, ev.allow_partial, loaded)
        if anon is None and "skipped" not in r:
            r["anon"] = {"skipped": f"{anon_dir}: anonymized dir missing (run stage 5)"}
        res["sets"][s] = r
    return res


def ser_name(model: str) -> str:
    return "VPC 2024 SER (wav2vec2 fold models, vpc-ser)" if model == "vpc-ser" else f"wav2vec2 fold models {model}"


def summary(metric: str, res: dict) -> list[str]:
    """The console lines of one metric's figures, each naming its audio (original or anonymized)."""
    from voxanon.eval.results import convergence_warnings, eer_text, list_warnings, mixture_summary

    lines = []
    if metric == "asv":
        for name, per in res.get("trial_sets", {}).items():
            lines += [f"EER {name} {sc}: {eer_text(m)}" for sc, m in per.items() if "eer" in m]
        lines += [f"EER average {sc}: {m['eer']:.3f} %" for sc, m in res.get("average", {}).items() if "eer" in m]
        lines += [f"{sc} skipped: {why}" for sc, why in res.get("skipped", {}).items()]
        lines += mixture_summary(res.get("mixture"))
        lines += [f"WARNING {w}" for w in list_warnings({"asv": res})]
        lines += [f"WARNING: {w}" for w in convergence_warnings(res.get("convergence"))]
    elif metric == "wer":
        ref = " against the ASR transcript of the original" if res.get("reference") == "asr_of_original" else ""
        for side, label in (("original", "original audio"), ("anon", f"anonymized audio ({res.get('suffix')}){ref}")):
            for name, r in res.get(side, {}).get("sets", {}).items():
                lines.append(f"WER {name}, {label}: " + (f"{r['wer']:.3f} %" if "wer" in r else f"skipped: {r.get('skipped')}"))
    elif metric == "ser":
        for name, s in res.get("sets", {}).items():
            for side, label in (("original", "original audio"), ("anon", "anonymized audio")):
                r = s.get(side) or {}
                if "uar" in r:
                    lines.append(f"UAR {name}, {label}: {r['uar']:.3f} %")
    return lines


def evaluate(experiment: Experiment, data_root: Path, exp: Path, metrics: list[str]) -> list[str]:
    """Compute ``metrics`` (asv, wer, ser), each into ``<exp>/results/<metric>.json``; returns the
    metrics that failed (their reasons logged and in their json)."""
    data_cfg, asv, ev, suffix = experiment.data, experiment.asv, experiment.eval, experiment.anonymizer.suffix
    out = exp / "results"
    runners = {
        "asv": lambda: run_asv(experiment, data_cfg, asv, ev, data_root, suffix, exp, out),
        "wer": lambda: run_wer(data_cfg, ev, data_root, suffix, out),
        "ser": lambda: run_ser(data_cfg, ev, data_root, suffix, out),
    }
    unknown = [m for m in metrics if m not in runners]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)} (asv, wer, ser)")
    failed = []
    for metric in metrics:
        log.info("evaluating %s", metric)
        try:
            res = runners[metric]()
        except (DataDirError, ValueError, RuntimeError, OSError, ImportError) as err:
            log.error("%s failed: %s", metric, err)
            res = {"error": str(err)}
            failed.append(metric)
        res = {"metric": metric, "suffix": suffix, "data_root": str(data_root), **res}
        atomic_write_text(out / f"{metric}.json", json.dumps(res, indent=1, default=str) + "\n")
        if isinstance(res.get("skipped"), str):
            log.warning("%s skipped: %s", metric, res["skipped"])
        for line in summary(metric, res):
            log.info("%s", line)
    return failed

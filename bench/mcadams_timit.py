"""McAdams (VPC B2) on real speech: speed on one core, length, content (WER) and voice change.

  python bench/mcadams_timit.py [--data ../shared/data/timit] [--anon data/timit_mcadams] [--asr whisper-base-ct2]

--anon is the output of ``steps/anonymize.sh conf/mcadams.yaml <data> <anon>``; the bench checks
that it holds the same ids and lengths as the input and that it equals what the anonymizer
produces in-process (timed here, one thread). Content: WER of the packaged faster-whisper model on
the original and the anonymized audio. Voice: a 16-way speaker classifier (logistic regression on
MFCC mean/std, speaker-independent of the sentence) trained on 6 original utterances per speaker
and tested on the other 4, original vs anonymized (and trained+tested on anonymized audio).
Writes bench/results/mcadams_timit.{json,md}.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # the one-core figure

import argparse
import json
import platform
import re
import time
from pathlib import Path

import numpy as np

from voxanon.anonymize.base import BuildContext, Utterance, build_system
from voxanon.anonymize.config import AnonymizerConfig
from voxanon.audio import read_audio
from voxanon.config import load_section
from voxanon.data.kaldi import load_data_dir, resolve_wav

ROOT = Path(__file__).resolve().parents[1]


def mfcc_stats(x: np.ndarray) -> np.ndarray:
    import librosa

    m = librosa.feature.mfcc(y=x, sr=16000, n_mfcc=20, n_fft=512, hop_length=160)
    return np.concatenate([m.mean(1), m.std(1)])


def speaker_id(train: dict, test: dict, utt2spk: dict) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(np.stack(list(train.values())), [utt2spk[u] for u in train])
    return float(np.mean(clf.predict(np.stack(list(test.values()))) == [utt2spk[u] for u in test]))


def normalize(text: str) -> str:
    """Upper case, punctuation (but apostrophes) removed."""
    return " ".join(re.sub(r"[^A-Z' ]", " ", text.upper()).split())


def wer(refs: list[str], hyps: list[str]) -> float:
    import jiwer

    return 100.0 * jiwer.wer([normalize(t) for t in refs], [normalize(t) for t in hyps])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "timit"))
    p.add_argument("--anon", default=str(ROOT / "data" / "timit_mcadams"))
    p.add_argument("--conf", default=str(ROOT / "conf" / "mcadams.yaml"))
    p.add_argument("--asr", default="whisper-base-ct2", help="registry name of the packaged ASR ('' to skip)")
    args = p.parse_args()

    data, anon = load_data_dir(args.data), load_data_dir(args.anon)
    conf = load_section(args.conf, "anonymizer", AnonymizerConfig)
    system = build_system(conf.system, conf.params, BuildContext(conf.seed, "cpu", Path("/tmp")))
    orig, out, seconds, max_diff = {}, {}, 0.0, 0.0
    start = time.process_time()
    for utt in data.utts:
        orig[utt] = read_audio(resolve_wav(data, utt), data.path)
    for utt in data.utts:
        t = time.process_time()
        result = system(Utterance(utt, data.utt2spk[utt], orig[utt]))
        seconds += time.process_time() - t
        out[utt] = read_audio(resolve_wav(anon, utt), anon.path)
        assert len(out[utt].samples) == len(result.audio.samples)
        max_diff = max(max_diff, float(np.abs(out[utt].samples - result.audio.samples).max()))
    audio_s = sum(a.duration for a in orig.values())
    res = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, 1 thread used",
        "utterances": len(data.utts), "audio_s": round(audio_s, 1),
        "anonymize_cpu_s": round(seconds, 2), "real_time_factor": round(seconds / audio_s, 4),
        "same_ids": sorted(anon.utts) == sorted(data.utts),
        "lengths_equal": all(len(out[u].samples) == len(orig[u].samples) for u in data.utts),
        "max_abs_diff_steps_vs_inprocess": max_diff,
    }
    # voice: speaker ID on MFCC statistics; the first 6 utterances of a speaker train, the rest test
    utt2spk = data.utt2spk
    order = {u: i for s, us in data.spk2utt.items() for i, u in enumerate(sorted(us))}
    tr = [u for u in data.utts if order[u] < 6]
    te = [u for u in data.utts if order[u] >= 6]
    f_orig = {u: mfcc_stats(orig[u].samples) for u in data.utts}
    f_anon = {u: mfcc_stats(out[u].samples) for u in data.utts}
    res["speaker_id_acc_orig_orig"] = speaker_id({u: f_orig[u] for u in tr}, {u: f_orig[u] for u in te}, utt2spk)
    res["speaker_id_acc_orig_anon"] = speaker_id({u: f_orig[u] for u in tr}, {u: f_anon[u] for u in te}, utt2spk)
    res["speaker_id_acc_anon_anon"] = speaker_id({u: f_anon[u] for u in tr}, {u: f_anon[u] for u in te}, utt2spk)
    res["chance"] = 1 / len(data.spk2utt)
    if args.asr and "text" in data.tables:
        from voxanon.asr import AsrConfig, load_asr

        asr = load_asr(AsrConfig(model=args.asr), "cpu")
        refs = [data.tables["text"][u] for u in data.utts]
        t = time.time()
        res["wer_orig"] = round(wer(refs, [asr.transcribe(orig[u]) for u in data.utts]), 2)
        res["wer_anon"] = round(wer(refs, [asr.transcribe(out[u]) for u in data.utts]), 2)
        res["asr"] = args.asr
        res["asr_wall_s"] = round(time.time() - t, 1)
    res["total_cpu_s"] = round(time.process_time() - start, 1)
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "mcadams_timit.json").write_text(json.dumps(res, indent=1) + "\n")
    md = ["# McAdams (conf/mcadams.yaml) on ../shared/data/timit", "", "| measure | value |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in res.items()]
    (ROOT / "bench" / "results" / "mcadams_timit.md").write_text("\n".join(md) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()

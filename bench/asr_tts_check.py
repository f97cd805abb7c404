"""Sanity check of an asr_tts run on a small real-speech set: utility (WER of the transcripts the
anonymizer used, and of Whisper base on its output, against ``text``) and privacy (can a
pretrained speaker encoder still link the output to the input speaker?).

  python bench/asr_tts_check.py SRC_DATA ANON_DATA RECORDS.jsonl [--threads 2] [--out bench/results/asr_tts_timit.md]

* WER against SRC_DATA/text, normalized as ``voxanon.eval.wer`` normalizes for Whisper (upper
  case, punctuation dropped); also with digits spelled out by ``voxanon.tts.text.normalize_text``,
  since the references spell numbers. Of the
  ``transcript`` of each record (the ASR output on the original audio), and of the packaged
  Whisper base (faster-whisper, int8, guarded) on the anonymized audio, overall and per voice:
  what the cascade's speech is worth to a recognizer, against the originals.
* Privacy, with Resemblyzer's GE2E encoder (pretrained weights ship in the pip package):
  EER on SRC_DATA's ``trials`` with enrollment = mean embedding of each speaker's ``enrolls``
  utterances: original/original, original enroll/anonymized trials (ignorant attacker) and
  anonymized/anonymized (lazy-informed). Also: the share of anonymized utterances whose closest
  original speaker (cosine to the speaker's mean embedding over all its original utterances) is
  the true one, against chance and against the originals themselves (leave-one-out), and the mean cosine of each anonymized utterance to its own
  source speaker vs. to the synthetic voice that spoke it.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from voxanon.asr import AsrConfig, load_asr
from voxanon.audio import load_16k
from voxanon.data.kaldi import load_data_dir, resolve_wav
from voxanon.eval.eer import compute_eer
from voxanon.eval import wer as vpc_wer
from voxanon.tts.text import normalize_text

ROOT = Path(__file__).resolve().parents[1]


def embed_all(encoder, data, cache: Path) -> dict[str, np.ndarray]:
    """utt -> L2-normalized 256-d GE2E embedding; kept in ``cache`` (.npz) for re-runs."""
    from resemblyzer import preprocess_wav

    if cache.is_file():
        with np.load(cache) as saved:
            if set(saved.files) == set(data.utts):
                return {utt: saved[utt] for utt in data.utts}
    out = {}
    for utt in data.utts:
        audio = load_16k(resolve_wav(data, utt), data.path)
        out[utt] = encoder.embed_utterance(preprocess_wav(audio.samples, source_sr=16000))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def corpus_wer(refs: list[str], hyps: list[str]) -> dict:
    """``voxanon.eval.wer.corpus_wer`` of the texts normalized as its "whisper" text norm."""
    return vpc_wer.corpus_wer([vpc_wer.normalize_text(r).split() for r in refs],
                              [vpc_wer.normalize_text(h).split() for h in hyps])


def centroid(vectors) -> np.ndarray:
    mean = np.mean(list(vectors), axis=0)
    return mean / np.linalg.norm(mean)


def trial_eer(data, enroll_emb, trial_emb) -> float:
    enroll_spk = defaultdict(list)
    for utt in data.enrolls:
        enroll_spk[data.utt2spk[utt]].append(enroll_emb[utt])
    models = {spk: centroid(v) for spk, v in enroll_spk.items()}
    tar, non = [], []
    for trial in data.trials:
        score = float(models[trial.enroll_spk] @ trial_emb[trial.utt])
        (tar if trial.target else non).append(score)
    return 100.0 * compute_eer(np.array(tar), np.array(non))[0]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("anon")
    p.add_argument("records")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "asr_tts_timit.md"))
    p.add_argument("--threads", type=int, default=2, help="CPU threads of the recognizer")
    args = p.parse_args()
    src, anon = load_data_dir(args.src), load_data_dir(args.anon)
    records = {r["utt"]: r for r in map(json.loads, Path(args.records).read_text().splitlines())}
    utts = [u for u in src.utts if u in records]
    refs = [src.table("text")[u] for u in utts]
    hyps = [records[u]["transcript"] for u in utts]
    wer = corpus_wer(refs, hyps)
    wer_spelled = corpus_wer(refs, [normalize_text(h) for h in hyps])

    start = time.time()
    asr = load_asr(AsrConfig(model="whisper-base-ct2", compute_type="int8", cpu_threads=args.threads))
    heard = {u: asr.transcribe(load_16k(resolve_wav(anon, u), anon.path)) for u in utts}
    asr_seconds = time.time() - start
    out_wer = corpus_wer(refs, [heard[u] for u in utts])
    out_wer_spelled = corpus_wer(refs, [normalize_text(heard[u]) for u in utts])
    per_voice = defaultdict(list)
    for u, ref in zip(utts, refs):
        per_voice[records[u]["speaker"]].append((ref, normalize_text(heard[u])))

    import torch
    from resemblyzer import VoiceEncoder

    torch.set_num_threads(args.threads)
    start = time.time()
    encoder = VoiceEncoder("cpu", verbose=False)
    cache = ROOT / "bench" / "out" / "asr_tts_check"
    orig = embed_all(encoder, src, cache / f"{Path(args.src).resolve().name}.orig.npz")
    anonym = embed_all(encoder, anon, cache / f"{Path(args.anon).resolve().name}.anon.npz")
    eer_orig = trial_eer(src, orig, orig)
    eer_ignorant = trial_eer(src, orig, anonym)
    eer_lazy = trial_eer(src, anonym, anonym)

    by_spk = defaultdict(list)
    for utt, e in orig.items():
        by_spk[src.utt2spk[utt]].append(e)
    speakers = sorted(by_spk)
    spk_models = np.stack([centroid(by_spk[s]) for s in speakers])
    by_voice = defaultdict(list)
    for utt in utts:
        by_voice[records[utt]["speaker"]].append(anonym[utt])
    voice_models = {v: centroid(e) for v, e in by_voice.items()}
    def top1_leave_one_out(u: str) -> bool:  # the original utterance's own speaker model leaves it out
        models = spk_models.copy()
        own = speakers.index(src.utt2spk[u])
        models[own] = centroid([e for v, e in orig.items() if src.utt2spk[v] == src.utt2spk[u] and v != u])
        return int(np.argmax(models @ orig[u])) == own

    top1_orig = np.mean([top1_leave_one_out(u) for u in utts])
    top1_anon = np.mean([speakers[int(np.argmax(spk_models @ anonym[u]))] == src.utt2spk[u] for u in utts])
    cos_source = np.mean([spk_models[speakers.index(src.utt2spk[u])] @ anonym[u] for u in utts])
    cos_voice = np.mean([voice_models[records[u]["speaker"]] @ anonym[u] for u in utts])
    voices = sorted(by_voice)

    lines = [
        "# asr_tts on a real-speech set: utility and privacy check",
        "",
        f"Source `{args.src}` ({len(utts)} utterances, {len(speakers)} speakers), anonymized `{args.anon}`.",
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}; "
        f"embedding took {time.time() - start:.0f} s.",
        "",
        "## Utility: WER",
        "",
        "| speech | recognizer | WER % | WER %, digits spelled |",
        "|---|---|---|---|",
        f"| original | the anonymizer's ASR (its transcripts) | {wer['wer']:.2f} | {wer_spelled['wer']:.2f} |",
        f"| anonymized | packaged Whisper base (int8, guarded) | {out_wer['wer']:.2f} | {out_wer_spelled['wer']:.2f} |",
        "",
        f"{wer['n_words']} reference words, normalized as voxanon.eval.wer's whisper text norm; Whisper base on the anonymized "
        f"audio took {asr_seconds:.0f} s with {args.threads} thread(s). Per voice (digits spelled):",
        "",
        "| voice | utterances | WER % |",
        "|---|---|---|",
        *(f"| {v} | {len(pairs)} | {corpus_wer([r for r, _ in pairs], [h for _, h in pairs])['wer']:.2f} |"
          for v, pairs in sorted(per_voice.items())),
        "",
        "## Privacy: Resemblyzer GE2E speaker encoder (pretrained, from the pip package)",
        "",
        "| trials | EER % |",
        "|---|---|",
        f"| original enroll / original trials | {eer_orig:.2f} |",
        f"| original enroll / anonymized trials (ignorant) | {eer_ignorant:.2f} |",
        f"| anonymized enroll / anonymized trials (lazy-informed) | {eer_lazy:.2f} |",
        "",
        f"- closest original speaker is the true one: originals (leave-one-out) {100 * top1_orig:.1f} %, anonymized "
        f"{100 * top1_anon:.1f} % (chance {100 / len(speakers):.1f} %)",
        f"- mean cosine of an anonymized utterance to its source speaker {cos_source:.3f}, to the synthetic "
        f"voice that spoke it {cos_voice:.3f}",
        "- voices drawn: " + ", ".join(f"{v} ({len(by_voice[v])})" for v in voices),
        "",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

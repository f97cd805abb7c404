"""WER of (anonymized) speech as the VPC 2024 computes it.

ASR sets: the trial sets of one dataset are pooled, as the VPC's ``combine_asr_data`` pools
``libri_dev_trials_f`` + ``libri_dev_trials_m`` into ``libri_dev_asr`` (``asr_sets``); a trial set
not named ``*_trials_<x>`` is its own ASR set. Utterances are ordered like the VPC's: by utterance
id, then by length, longest first (stable), and decoded ``batch_size`` at a time
(``asr.transcribe_batch`` pads each batch). Transcripts are cached per utterance with the audio
stamp (``voxanon.eval.cache``), whole batches at a time, so a resumed run decodes the same batches.

Words: with the VPC's ASR (``text_norm="vpc"``) references get the VPC's data-prep rule
(``vpc_normalize``: , ! ? . become spaces, spaces squeezed, upper-case) and hypotheses are taken
as decoded; both are split at single spaces as the VPC's ``compute_wer`` does. Whisper backends
(``text_norm="whisper"``) carry quotes, colons and hyphens that LibriSpeech references never have,
so both sides also lose every punctuation mark except apostrophes (``normalize_text``).
WER = speechbrain's corpus-level error rate (``ErrorRateStats``: all edits over all reference words).

Strict like the VPC: an utterance with a reference but no audio, or whose audio fails to load,
stops the set with its id named (``AudioError``). ``allow_partial`` leaves such utterances out,
lists them, and marks the figure ``partial``.
"""
from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Literal

import soundfile as sf

from voxanon.audio import SAMPLE_RATE, AudioError, is_pipe, load_16k
from voxanon.data.kaldi import DataDir, resolve_wav
from voxanon.eval.cache import TextCache, audio_stamp
from voxanon.fileio import atomic_write_text
from voxanon.progress import Progress

log = logging.getLogger("voxanon.wer")
TextNorm = Literal["vpc", "whisper"]

_VPC_PUNCT = re.compile(r"[,!?.]")
_OTHER_PUNCT = re.compile(r"[^\w\s']")
_TRIALS = re.compile(r"_trials_[^_]+$")


def vpc_normalize(text: str) -> str:
    return " ".join(_VPC_PUNCT.sub(" ", text).split()).upper()


def normalize_text(text: str) -> str:
    return " ".join(_OTHER_PUNCT.sub(" ", vpc_normalize(text)).replace("_", " ").split())


def words(text: str, is_ref: bool, text_norm: TextNorm) -> list[str]:
    if text_norm == "whisper":
        text = normalize_text(text)
    elif is_ref:
        text = vpc_normalize(text)
    return text.strip().split(" ")


def asr_sets(trial_sets: list[str]) -> dict[str, list[str]]:
    """ASR set name -> its trial sets (``libri_dev_trials_f``, ``_m`` -> ``libri_dev_asr``)."""
    out: dict[str, list[str]] = {}
    for s in trial_sets:
        out.setdefault(_TRIALS.sub("_asr", s) if _TRIALS.search(s) else s, []).append(s)
    return out


def corpus_wer(refs: list[list[str]], hyps: list[list[str]]) -> dict:
    """Corpus-level WER (percent) of word lists, with the error counts."""
    from speechbrain.utils.edit_distance import wer_details_for_batch, wer_summary

    s = wer_summary(wer_details_for_batch(list(range(len(refs))), refs, hyps))
    return {"wer": float(s["WER"]), "n_utts": len(refs), "n_words": s["num_scored_tokens"],
            "substitutions": s["substitutions"], "deletions": s["deletions"], "insertions": s["insertions"]}


def _length_16k(data: DataDir, utt: str, allow_pipes: bool) -> int:
    entry = resolve_wav(data, utt)
    try:
        if not is_pipe(entry):
            info = sf.info(entry)
            return math.ceil(info.frames * SAMPLE_RATE / info.samplerate)
        return len(load_16k(entry, data.path, allow_pipes).samples)
    except (RuntimeError, OSError) as err:
        raise AudioError(f"{data.path}: {utt}: cannot read {entry}: {str(err).splitlines()[0]}") from None


def vpc_batches(data: DataDir, utts: list[str], batch_size: int, allow_pipes: bool) -> list[list[str]]:
    """``utts`` sorted by id, then by length (longest first, stable), cut into batches."""
    lengths = {u: _length_16k(data, u, allow_pipes) for u in sorted(utts)}
    order = sorted(lengths, key=lambda u: -lengths[u])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def transcribe_set(data: DataDir, asr, batch_size: int, cache: Path, allow_pipes: bool = False,
                   allow_partial: bool = False) -> tuple[dict[str, str], list[str]]:
    """Transcripts of every utterance of ``data`` (cached); returns (hyps, failed)."""
    stamps = {u: audio_stamp(data, u) for u in data.utts}
    store = TextCache(cache)
    hyps = store.load(stamps)
    failed: list[str] = []
    batches = [b for b in vpc_batches(data, data.utts, batch_size, allow_pipes) if not set(b) <= set(hyps)]
    prog = Progress(sum(map(len, batches)), f"transcribe {data.path.name if data.path else ''}")
    for batch in batches:
        audios, ok = [], []
        for utt in batch:
            try:
                audios.append(data.audio(utt, allow_pipes))
                ok.append(utt)
            except AudioError as err:
                if not allow_partial:
                    raise AudioError(f"{data.path}: {utt}: {err}") from None
                failed.append(f"{utt} ({str(err).splitlines()[0][:100]})")
        if ok:
            texts = dict(zip(ok, asr.transcribe_batch(audios)))
            store.append(texts, stamps)
            hyps.update(texts)
        prog.step(len(batch))
    return hyps, failed


def wer_of_set(name: str, data: DataDir, refs: dict[str, str], asr, text_norm: TextNorm, batch_size: int,
               out_dir: Path, allow_pipes: bool = False, allow_partial: bool = False) -> dict:
    """WER of one ASR set; writes ``out_dir/<name>/text`` (the hypotheses, Kaldi format) and
    ``out_dir/<name>/ref`` (the references of the scored utterances)."""
    lost = sorted(set(refs) - set(data.wav_scp))
    if lost and not allow_partial:
        raise AudioError(f"{data.path}: no audio for {len(lost)} utterance(s) with a reference: "
                         f"{' '.join(lost[:10])}")
    hyps, failed = transcribe_set(data, asr, batch_size, out_dir / f"{name}.hyp.jsonl", allow_pipes, allow_partial)
    failed += [f"{u} (not in {data.path})" for u in lost]
    utts = [u for u in sorted(refs) if u in hyps]
    if not utts:
        return {"skipped": f"no utterance could be transcribed ({len(failed)} failed)", "failed": failed[:20]}
    atomic_write_text(out_dir / name / "text", "".join(f"{u} {hyps[u]}\n" for u in sorted(hyps)))
    atomic_write_text(out_dir / name / "ref", "".join(f"{u} {refs[u]}\n" for u in utts))  # what it was scored on
    res = corpus_wer([words(refs[u], True, text_norm) for u in utts], [words(hyps[u], False, text_norm) for u in utts])
    log.info("WER %s: %.3f %% (%d utterances)", name, res["wer"], len(utts))
    return {**res, "partial": bool(failed), "failed": failed, "hyp_file": str(out_dir / name / "text")}

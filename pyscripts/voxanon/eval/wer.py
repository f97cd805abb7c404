"""WER of (anonymized) speech: transcribe, normalize, corpus-level word error rate.

Text normalization: the VPC 2024 rule (``vpc_normalize``: , ! ? . become spaces, spaces
squeezed, upper-case) applied to references and hypotheses, and then any other punctuation except
apostrophes removed (``normalize_text``), because Whisper-style hypotheses carry quotes, colons and
hyphens that LibriSpeech references never have.

WER is corpus-level (jiwer: all substitutions + deletions + insertions over all reference words)
per data set, and per split (``dev``, ``test``: every scored set whose name has that word, pooled
as VPC pools trials_f + trials_m), plus ``all``. Hypotheses are appended to
``<out>/<set>.hyp`` as they come, so an interrupted run resumes; an utterance that fails to load
or transcribe is listed and left out, the rest still count.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable

import jiwer

from voxanon.audio import AudioError, load_16k
from voxanon.data.kaldi import DataDir, read_table, resolve_wav
from voxanon.progress import Progress

log = logging.getLogger("voxanon.wer")
Transcriber = Callable[[object], str]  # voxanon.audio.Audio (16 kHz) -> text

_VPC_PUNCT = re.compile(r"[,!?.]")
_OTHER_PUNCT = re.compile(r"[^\w\s']")


def vpc_normalize(text: str) -> str:
    return " ".join(_VPC_PUNCT.sub(" ", text).split()).upper()


def normalize_text(text: str) -> str:
    return " ".join(_OTHER_PUNCT.sub(" ", vpc_normalize(text)).replace("_", " ").split())


def split_of(set_name: str) -> str | None:
    words = set(re.split(r"[_\-.]", set_name.lower()))
    return "dev" if "dev" in words else "test" if "test" in words else None


def transcribe_set(data: DataDir, utts: list[str], transcribe: Transcriber, hyp_file: Path,
                   allow_pipes: bool = False) -> dict:
    """Transcribe ``utts`` of ``data`` into ``hyp_file`` (resumable: lines already there are kept).

    Returns {"hyps": {utt: text}, "failed": ["utt (reason)"]}."""
    hyps = read_table(hyp_file) if hyp_file.is_file() else {}
    todo = [u for u in utts if u not in hyps]
    failed = []
    if todo:
        hyp_file.parent.mkdir(parents=True, exist_ok=True)
        prog = Progress(len(todo), f"transcribe {data.path.name if data.path else ''}")
        with open(hyp_file, "a", encoding="utf-8") as f:
            for utt in todo:
                try:
                    hyp = transcribe(load_16k(resolve_wav(data, utt), data.path, allow_pipes))
                except (AudioError, RuntimeError) as err:
                    failed.append(f"{utt} ({str(err).splitlines()[0][:100]})")
                    log.warning("%s: %s", utt, err)
                else:
                    hyps[utt] = " ".join(str(hyp).split())
                    f.write(f"{utt} {hyps[utt]}\n")
                    f.flush()
                prog.step()
    return {"hyps": {u: hyps[u] for u in utts if u in hyps}, "failed": failed}


def corpus_wer(refs: list[str], hyps: list[str]) -> dict:
    """Corpus-level WER (percent) of normalized texts, with the error counts."""
    refs = [normalize_text(r) for r in refs]
    hyps = [normalize_text(h) for h in hyps]
    out = jiwer.process_words(refs, hyps)
    n_words = sum(len(r.split()) for r in refs)
    errors = out.substitutions + out.deletions + out.insertions
    return {"wer": 100.0 * errors / n_words, "n_utts": len(refs), "n_words": n_words,
            "substitutions": out.substitutions, "deletions": out.deletions, "insertions": out.insertions}


def wer_of_sets(sets: dict[str, DataDir], references: dict[str, dict[str, str]], transcribe: Transcriber,
                out_dir: Path, allow_pipes: bool = False) -> dict:
    """WER per set (keyed by the set name used for results) and per split.

    ``sets`` maps a result name to the audio dir; ``references`` maps it to {utt: reference text}
    (from the original dir: anonymized dirs keep the ids). A set without references is skipped
    with a reason."""
    per_set, pooled = {}, {}
    for name, data in sets.items():
        refs = references.get(name) or {}
        if not refs:
            per_set[name] = {"skipped": "no 'text' file (reference transcripts) in the original data dir"}
            continue
        utts = [u for u in sorted(refs) if normalize_text(refs[u])]
        missing = [u for u in utts if u not in data.wav_scp]
        res = transcribe_set(data, [u for u in utts if u in data.wav_scp], transcribe, out_dir / f"{name}.hyp",
                             allow_pipes)
        res["failed"] += [f"{u} (not in {data.path})" for u in missing]
        utts = sorted(res["hyps"])
        if not utts:
            per_set[name] = {"skipped": f"no utterance could be transcribed ({len(res['failed'])} failed)",
                             "failed": res["failed"][:20]}
            continue
        per_set[name] = {**corpus_wer([refs[u] for u in utts], [res["hyps"][u] for u in utts]),
                         "failed": res["failed"], "hyp_file": str(out_dir / f"{name}.hyp")}
        for split in filter(None, (split_of(name), "all")):
            pooled.setdefault(split, ([], []))
            pooled[split][0].extend(refs[u] for u in utts)
            pooled[split][1].extend(res["hyps"][u] for u in utts)
        log.info("WER %s: %.2f %% (%d utterances)", name, per_set[name]["wer"], len(utts))
    return {"sets": per_set, "splits": {s: corpus_wer(r, h) for s, (r, h) in pooled.items()}}

"""Your own speech for the mini recipe (``./run.sh --data DIR``): a Kaldi data dir or a folder of audio.

* A Kaldi dir (``DIR/wav.scp`` + ``utt2spk``): ids, ``text``, ``spk2gender``, ``utt2emo`` and
  ``spk2fold`` are kept; relative wav paths (relative to DIR) are made absolute; pipe entries
  (``cmd |``) are refused. Its own ``trials`` (VPC format, with ``enrolls`` or without) are used
  as they are (``own_trial_sets``) instead of the recipe's split.
* A folder of ``.wav``/``.flac`` files, searched recursively. The speaker of ``DIR/<spk>/.../x.wav``
  is ``<spk>`` (the first folder level under DIR); of a file directly in DIR, the start of its
  name up to the first ``_`` or ``-`` (``anna_001.wav`` -> ``anna``). A ``x.txt`` next to
  ``x.wav`` is its transcript (for WER).

Speakers without a gender label are given one estimated from the median F0 of their first
utterances (below 165 Hz -> m); the estimate and the F0 go to the log and to
``<data-root>/mini/spk2gender.estimated``. Put a ``spk2gender`` (``<spk> m|f``) in DIR to override.
"""
from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from voxanon.audio import load_16k
from voxanon.corpora.common import AUDIO_SUFFIXES, CorpusError
from voxanon.data.kaldi import DataDir, load_data_dir, resolve_wav, validate_data_dir
from voxanon.fileio import atomic_write_text

log = logging.getLogger("voxanon.user_data")

F0_THRESHOLD_HZ = 165.0  # between typical adult male (~120 Hz) and female (~210 Hz) medians
GENDER_UTTS = 3  # utterances per speaker used to estimate F0
KEEP_TABLES = ("text", "spk2gender", "utt2emo", "spk2fold")


def import_user_data(path: Path, work: Path) -> DataDir:
    """The user's speech as one data dir with absolute wav paths and a complete ``spk2gender``."""
    path = Path(path).resolve()
    if (path / "wav.scp").is_file():
        data = import_kaldi_dir(path)
    elif path.is_dir():
        data = import_audio_folder(path)
    else:
        raise CorpusError(f"--data {path}: neither a Kaldi data dir (wav.scp) nor a folder of audio files")
    log.info("%s: %d utterances, %d speakers", path, len(data.utt2spk), len(data.spk2utt))
    if "spk2gender" not in data.tables:
        data = replace(data, tables={**data.tables, "spk2gender": estimate_genders(data, work)})
    return data


def import_kaldi_dir(path: Path) -> DataDir:
    problems = validate_data_dir(path)
    if problems:
        raise CorpusError(f"--data {path}: not a valid Kaldi data dir:\n  " + "\n  ".join(problems))
    data = load_data_dir(path)
    pipes = [u for u, entry in data.wav_scp.items() if entry.rstrip().endswith("|")]
    if pipes:
        raise CorpusError(f"--data {path}: wav.scp entry of {pipes[0]} is a command (pipe), {len(pipes)} in all; "
                          "--data takes audio files: decode them to files and list those")
    if data.trials:
        log.info("%s: its own trials are used (%d trials); no split of its speakers", path, len(data.trials))
    return DataDir(
        wav_scp={u: resolve_wav(data, u) for u in data.wav_scp},
        utt2spk=dict(data.utt2spk),
        tables={k: v for k, v in data.tables.items() if k in KEEP_TABLES},
        enrolls=data.enrolls if data.trials else None,
        trials=data.trials or None,
    )


def own_trial_sets(data: DataDir, prefix: str) -> tuple[dict[str, DataDir], list[str]]:
    """A dir's own ``trials`` in the VPC layout: ``<prefix>_enrolls`` (its ``enrolls``, else every
    utterance of an enrolled speaker that is not a trial utterance) and ``<prefix>_trials_f`` /
    ``_m`` (the trials split by the gender of the trial utterance's speaker, cross-gender
    non-targets kept). Returns the sets and the speakers left over for attacker training."""
    gender = data.tables["spk2gender"]
    trial_utts = {t.utt for t in data.trials}
    enrolled = {t.enroll_spk for t in data.trials}
    enrolls = list(data.enrolls) if data.enrolls is not None else \
        [u for u in data.utts if data.utt2spk[u] in enrolled and u not in trial_utts]
    problems = [f"trials name speaker {s}, who has no enrollment utterance"
                for s in sorted(enrolled - {data.utt2spk[u] for u in enrolls})]
    sets = {f"{prefix}_enrolls": replace(data.subset(enrolls), enrolls=tuple(enrolls), trials=None)}
    for g in ("f", "m"):
        trials = tuple(t for t in data.trials if gender[data.utt2spk[t.utt]] == g)
        if not trials:
            problems.append(f"no trial utterance of gender {g} ({prefix}_trials_{g} would be empty)")
        sets[f"{prefix}_trials_{g}"] = replace(data.subset({t.utt for t in trials}), trials=trials, enrolls=None)
    if problems:
        raise CorpusError(f"{data.path or 'the data'}: its trials cannot be used: " + "; ".join(problems))
    used = enrolled | {data.utt2spk[u] for u in trial_utts | set(enrolls)}
    return sets, sorted(set(data.spk2utt) - used)


def speaker_of(rel: Path) -> str:
    if len(rel.parts) > 1:
        return rel.parts[0]
    prefix = re.split(r"[_-]", rel.stem, maxsplit=1)
    if len(prefix) < 2 or not prefix[0]:
        raise CorpusError(f"{rel}: cannot tell its speaker: put it in a folder named after the speaker, "
                          "or name it <speaker>_<utt>.wav")
    return prefix[0]


def import_audio_folder(path: Path) -> DataDir:
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise CorpusError(f"--data {path}: no {'/'.join(AUDIO_SUFFIXES)} files found")
    wav_scp, utt2spk, text, where = {}, {}, {}, {}
    for f in files:
        rel = f.relative_to(path)
        spk = _clean_id(speaker_of(rel))
        stem = _clean_id(f.stem)
        utt = stem if stem.startswith(f"{spk}-") or stem.startswith(f"{spk}_") else f"{spk}-{stem}"
        if utt in wav_scp:
            raise CorpusError(f"--data {path}: {rel} and {where[utt]} both give utterance id {utt!r}; rename one")
        wav_scp[utt], utt2spk[utt], where[utt] = str(f), spk, rel
        sidecar = f.with_suffix(".txt")
        if sidecar.is_file():
            text[utt] = " ".join(sidecar.read_text(encoding="utf-8").split())
    tables = {"text": text} if text else {}
    if text and len(text) < len(wav_scp):
        log.warning("%s: %d of %d files have a .txt transcript; WER needs all, so text is left out",
                    path, len(text), len(wav_scp))
        tables = {}
    return DataDir(wav_scp, utt2spk, tables)


def _clean_id(name: str) -> str:
    return re.sub(r"\s+", "_", name.strip())


def median_f0(samples: np.ndarray, rate: int) -> float:
    """Median F0 (Hz) of the voiced frames (pyworld DIO + StoneMask); 0.0 when nothing is voiced."""
    import pyworld

    x = samples.astype(np.float64)
    f0, t = pyworld.dio(x, rate, f0_floor=60.0, f0_ceil=500.0)
    f0 = pyworld.stonemask(x, f0, t, rate)
    voiced = f0[f0 > 0]
    return float(np.median(voiced)) if len(voiced) else 0.0


def estimate_genders(data: DataDir, work: Path) -> dict[str, str]:
    """spk -> m|f from the median F0 over each speaker's first ``GENDER_UTTS`` utterances."""
    genders, lines = {}, []
    for spk, utts in data.spk2utt.items():
        f0s = []
        for utt in utts[:GENDER_UTTS]:
            audio = load_16k(data.wav_scp[utt])
            f0s.append(median_f0(audio.samples[: 10 * audio.sample_rate], audio.sample_rate))
        f0 = float(np.median([f for f in f0s if f > 0])) if any(f0s) else 0.0
        if f0 == 0.0:
            raise CorpusError(f"speaker {spk}: no voiced speech found in {', '.join(utts[:GENDER_UTTS])}; "
                              "cannot estimate its gender (add a spk2gender file)")
        genders[spk] = "m" if f0 < F0_THRESHOLD_HZ else "f"
        lines.append(f"{spk} {genders[spk]} {f0:.0f}")
    log.warning("no spk2gender: genders estimated from median F0 (< %.0f Hz -> m), see %s: %s",
                F0_THRESHOLD_HZ, work / "spk2gender.estimated", ", ".join(lines))
    atomic_write_text(work / "spk2gender.estimated", "# <spk> <estimated gender> <median F0 Hz>\n" +
                      "".join(f"{line}\n" for line in lines))
    return genders

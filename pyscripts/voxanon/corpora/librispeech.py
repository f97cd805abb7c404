"""LibriSpeech (OpenSLR 12) in its published layout -> Kaldi data dir.

Layout::

    <root>/SPEAKERS.TXT                       ID | SEX | SUBSET | MINUTES | NAME
    <root>/<subset>/<spk>/<chapter>/<spk>-<chapter>-<nnnn>.flac
    <root>/<subset>/<spk>/<chapter>/<spk>-<chapter>.trans.txt

Any subset (train-clean-100, train-clean-360, dev-clean, ...). wav.scp holds absolute FLAC paths
(read directly, no pipes), ``text`` is VPC-normalized, ``spk2gender`` comes from SPEAKERS.TXT.
"""
from __future__ import annotations

from pathlib import Path

from voxanon.corpora.common import CorpusError, require_dir, vpc_normalize
from voxanon.data.kaldi import DataDir


def read_speakers(root: Path) -> dict[str, str]:
    """SPEAKERS.TXT -> {speaker id: 'm' | 'f'}."""
    path = root / "SPEAKERS.TXT"
    if not path.is_file():
        raise CorpusError(f"LibriSpeech: {path} not found (it gives each speaker's sex)")
    genders = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(";") or "|" not in line:
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) >= 2 and fields[1] in ("M", "F"):
            genders[fields[0]] = fields[1].lower()
    return genders


def prepare_librispeech(root: str | Path, subset: str, max_speakers: int = 0,
                        max_utts_per_speaker: int = 0) -> DataDir:
    """The Kaldi dir of one LibriSpeech subset (optionally the first N speakers / utterances)."""
    root = require_dir(root, "LibriSpeech root (data.options.librispeech_root)")
    sub = root / subset
    if not sub.is_dir():
        have = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise CorpusError(f"LibriSpeech: subset {subset!r} not found at {sub} (found: {', '.join(have) or 'nothing'})")
    genders = read_speakers(root)
    speakers = sorted((p for p in sub.iterdir() if p.is_dir()), key=lambda p: p.name)
    if max_speakers:
        speakers = speakers[:max_speakers]
    wav_scp, utt2spk, text = {}, {}, {}
    for spk_dir in speakers:
        flacs = sorted(spk_dir.glob("*/*.flac"))
        if max_utts_per_speaker:
            flacs = flacs[:max_utts_per_speaker]
        for flac in flacs:
            wav_scp[flac.stem] = str(flac)
            utt2spk[flac.stem] = spk_dir.name
        for trans in sorted(spk_dir.glob("*/*.trans.txt")):
            for line in trans.read_text(encoding="utf-8").splitlines():
                utt, _, words = line.strip().partition(" ")
                if utt in wav_scp:
                    text[utt] = vpc_normalize(words)
    if not wav_scp:
        raise CorpusError(f"LibriSpeech: no <spk>/<chapter>/*.flac files under {sub}")
    no_text = sorted(set(wav_scp) - set(text))
    if no_text:
        raise CorpusError(f"LibriSpeech {subset}: no transcript in *.trans.txt for {len(no_text)} "
                          f"utterance(s), e.g. {' '.join(no_text[:5])}")
    spks = set(utt2spk.values())
    unknown = sorted(spks - set(genders))
    if unknown:
        raise CorpusError(f"LibriSpeech: speaker(s) missing from {root / 'SPEAKERS.TXT'}: {' '.join(unknown[:10])}")
    return DataDir(wav_scp, utt2spk, {"text": text, "spk2gender": {s: genders[s] for s in spks}})

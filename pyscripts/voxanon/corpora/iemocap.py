"""IEMOCAP (USC release layout) -> ``IEMOCAP_dev`` / ``IEMOCAP_test`` as VPC 2024 uses them.

Layout::

    <root>/Session<n>/sentences/wav/<dialog>/<utt>.wav
    <root>/Session<n>/dialog/EmoEvaluation/<dialog>.txt     "[t0 - t1]\t<utt>\t<emo>\t[v, a, d]"
    <root>/Session<n>/dialog/transcriptions/<dialog>.txt    "<utt> [t0-t1]: words"   (optional)

Four classes as in the challenge: ang, hap (exc counted as hap), neu, sad; other labels dropped.
The speaker of ``Ses01F_impro01_M003`` is ``Ses01M`` (session + the letter of the utterance
number), its gender that letter; ``spk2fold`` gives the SER fold whose model did not see the
speaker's session.

The dev/test split: when the VPC 2024 release's ``IEMOCAP_dev`` / ``IEMOCAP_test`` lists are
present (``vpc_data_dir``), their utterance ids and ``spk2fold`` are used as they are. Without
them a documented stand-in is used: dialogs whose name carries F (``Ses0nF_*``) go to dev, M to
test, fold = session number. Both halves then hold all ten speakers, as the challenge's do, but
the utterance lists may differ from the challenge's, so a warning says so.
"""
from __future__ import annotations

import re
from pathlib import Path

from voxanon.corpora.common import CorpusError, require_dir, vpc_normalize
from voxanon.data.kaldi import DataDir, read_table

EMOTIONS = {"ang": "ang", "hap": "hap", "exc": "hap", "neu": "neu", "sad": "sad"}
SETS = ("IEMOCAP_dev", "IEMOCAP_test")
_LABEL = re.compile(r"^\[[\d.]+ - [\d.]+\]\t(\S+)\t(\S+)\t")


def speaker_of(utt: str) -> str:
    """``Ses01F_impro01_M003`` -> ``Ses01M``."""
    return utt[:5] + utt.rsplit("_", 1)[-1][0]


def read_corpus(root: str | Path) -> tuple[dict[str, Path], dict[str, str], dict[str, str]]:
    """(wav path, 4-class emotion, raw transcript) by utterance id, over all five sessions."""
    root = require_dir(root, "IEMOCAP root (data.options.iemocap_root)")
    sessions = sorted(p for p in root.glob("Session[1-5]") if p.is_dir())
    if not sessions:
        raise CorpusError(f"IEMOCAP: no Session1..Session5 under {root}")
    wavs, emos, text = {}, {}, {}
    for session in sessions:
        for wav in sorted((session / "sentences" / "wav").glob("*/*.wav")):
            wavs[wav.stem] = wav.resolve()
        labels = sorted((session / "dialog" / "EmoEvaluation").glob("*.txt"))
        if not labels:
            raise CorpusError(f"IEMOCAP: no label files in {session / 'dialog' / 'EmoEvaluation'}")
        for label_file in labels:
            for line in label_file.read_text(encoding="utf-8", errors="replace").splitlines():
                m = _LABEL.match(line)
                if m and m.group(2) in EMOTIONS:
                    emos[m.group(1)] = EMOTIONS[m.group(2)]
        for trans in sorted((session / "dialog" / "transcriptions").glob("*.txt")):
            for line in trans.read_text(encoding="utf-8", errors="replace").splitlines():
                utt, _, rest = line.partition(" ")
                if ":" in rest:
                    text[utt] = rest.split(":", 1)[1].strip()
    if not wavs:
        raise CorpusError(f"IEMOCAP: no Session*/sentences/wav/<dialog>/*.wav under {root}")
    return wavs, emos, text


def prepare_iemocap(root: str | Path, vpc_data_dir: str | Path = "") -> tuple[dict[str, DataDir], list[str]]:
    """Both sets, and warnings (split stand-in used, listed utterances without audio/label)."""
    wavs, emos, text = read_corpus(root)
    labelled = sorted(u for u in emos if u in wavs)
    warnings = []
    lists = {s: Path(vpc_data_dir) / s for s in SETS} if vpc_data_dir else {}
    if lists and all((d / "utt2spk").is_file() for d in lists.values()):
        split = {s: read_table(d / "utt2spk") for s, d in lists.items()}
        folds = {s: read_table(d / "spk2fold") for s, d in lists.items() if (d / "spk2fold").is_file()}
    else:
        warnings.append("IEMOCAP: VPC 2024 lists (IEMOCAP_dev/, IEMOCAP_test/ in vpc_data_dir) not found; "
                        "split by dialog (Ses0nF_* -> dev, Ses0nM_* -> test), fold = session: "
                        "the utterance lists may differ from the challenge's")
        split = {"IEMOCAP_dev": {u: speaker_of(u) for u in labelled if u[5] == "F"},
                 "IEMOCAP_test": {u: speaker_of(u) for u in labelled if u[5] == "M"}}
        folds = {}
    out = {}
    for name, listed in split.items():
        unusable = [u for u in listed if u not in wavs or u not in emos]
        if unusable:
            warnings.append(f"{name}: {len(unusable)} listed utterance(s) without audio or a 4-class label "
                            f"in {root}, dropped (e.g. {' '.join(unusable[:3])})")
        utts = [u for u in listed if u in wavs and u in emos]
        if not utts:
            raise CorpusError(f"{name}: no utterances with audio and a 4-class label under {root}")
        utt2spk = {u: listed[u] for u in utts}
        first = {}  # speaker -> one of its utterances: the id gives session and sex
        for u in utts:
            first.setdefault(utt2spk[u], u)
        tables = {
            "utt2emo": {u: emos[u] for u in utts},
            "spk2gender": {s: speaker_of(u)[-1].lower() for s, u in first.items()},
            "spk2fold": {s: folds.get(name, {}).get(s) or str(int(u[3:5])) for s, u in first.items()},
        }
        if all(u in text for u in utts):
            tables["text"] = {u: vpc_normalize(text[u]) for u in utts}
        out[name] = DataDir({u: str(wavs[u]) for u in utts}, utt2spk, tables)
    return out, warnings

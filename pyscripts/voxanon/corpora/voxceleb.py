"""VoxCeleb (1 or 2) in its published layout -> a target-speaker pool dir for kNN-VC.

Layout: ``<root>/id<NNNNN>/<video>/<nnnnn>.wav`` (VoxCeleb1) or ``.m4a`` (VoxCeleb2 dev/aac).
Utterance ids are ``<spk>-<video>-<nnnnn>``. m4a (AAC) is not readable by soundfile, so each such
file is converted once with ffmpeg to a 16 kHz mono wav under ``<out>/wav/`` (resumable: an
existing wav is kept; a file ffmpeg cannot read is logged and skipped). ``spk2gender`` comes from
the VoxCeleb meta file (vox1_meta.csv, tab-separated, or vox2_meta.csv, comma-separated) when given.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from voxanon.corpora.common import CorpusError, require_dir
from voxanon.data.kaldi import DataDir
from voxanon.progress import Progress

log = logging.getLogger("voxanon.corpora")


def read_meta(path: str | Path) -> dict[str, str]:
    """VoxCeleb meta csv -> {speaker id: 'm' | 'f'} (any column order, tab or comma separated)."""
    genders = {}
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        fields = [f.strip().lower() for f in re.split(r"[\t,]", line)]
        spk = next((f for f in fields if re.fullmatch(r"id\d+", f)), None)
        sex = next((f for f in fields if f in ("m", "f")), None)
        if spk and sex:
            genders[spk] = sex
    if not genders:
        raise CorpusError(f"VoxCeleb meta {path}: no '<id> ... <m|f>' rows found")
    return genders


def prepare_voxceleb(root: str | Path, out: str | Path, meta: str | Path = "", max_speakers: int = 0,
                     max_utts_per_speaker: int = 0) -> DataDir:
    """The pool dir's content; m4a files are converted into ``<out>/wav`` first."""
    root = require_dir(root, "VoxCeleb root (data.options.target_pool.root)")
    speakers = sorted(p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"id\d+", p.name))
    if not speakers:
        raise CorpusError(f"VoxCeleb: no id<NNNNN>/ speaker dirs under {root}")
    if max_speakers:
        speakers = speakers[:max_speakers]
    files = []
    for spk in speakers:
        found = sorted(p for p in spk.glob("*/*") if p.suffix.lower() in (".wav", ".m4a"))
        files += [(spk.name, f) for f in (found[:max_utts_per_speaker] if max_utts_per_speaker else found)]
    if not files:
        raise CorpusError(f"VoxCeleb: no <id>/<video>/*.wav or *.m4a files under {root}")
    wav_dir = Path(out) / "wav"
    if any(f.suffix.lower() == ".m4a" for _, f in files) and shutil.which("ffmpeg") is None:
        raise CorpusError("VoxCeleb: .m4a files need ffmpeg to convert them (apt-get install ffmpeg)")
    wav_scp, utt2spk, failed = {}, {}, []
    progress = Progress(len(files), "voxceleb pool")
    for spk, path in files:
        utt = f"{spk}-{path.parent.name}-{path.stem}"
        if path.suffix.lower() == ".m4a":
            wav = wav_dir / f"{utt}.wav"
            if not wav.is_file() and not _convert(path, wav):
                failed.append(str(path))
                progress.step()
                continue
            path = wav
        wav_scp[utt] = str(path.resolve())
        utt2spk[utt] = spk
        progress.step()
    if failed:
        log.warning("VoxCeleb: %d file(s) could not be converted and were skipped, e.g. %s", len(failed), failed[0])
    if not wav_scp:
        raise CorpusError(f"VoxCeleb: no usable audio under {root}")
    tables = {}
    if meta:
        genders = read_meta(meta)
        spks = set(utt2spk.values())
        unknown = sorted(spks - set(genders))
        if unknown:
            raise CorpusError(f"VoxCeleb meta {meta}: no gender for {' '.join(unknown[:10])}")
        tables["spk2gender"] = {s: genders[s] for s in spks}
    return DataDir(wav_scp, utt2spk, tables)


def _convert(src: Path, dst: Path) -> bool:
    """ffmpeg src -> 16 kHz mono 16-bit wav, written atomically; False (logged) on failure."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp.wav")
    proc = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(src),
                           "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", str(tmp)],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        log.warning("VoxCeleb: ffmpeg failed on %s: %s", src, proc.stderr.strip()[-200:])
        return False
    os.replace(tmp, dst)
    return True

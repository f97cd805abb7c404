"""Audio I/O. Audio always travels with its sample rate; the recipe works at 16 kHz mono.

``wav.scp`` entries are either a file path (any format soundfile reads: wav, flac, ...; a
relative path is relative to the data dir) or a Kaldi pipe ``cmd |``. Pipes run a shell command taken from a data file, so they are refused
unless the caller opts in (``allow_pipes=True``, ``--allow-pipes true`` on the command line).
"""
from __future__ import annotations

import io
import re
import stat
import subprocess
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf

from voxanon.fileio import atomic_path

SAMPLE_RATE = 16000


class AudioError(RuntimeError):
    """Audio that cannot be read or is unusable (names the file or utterance)."""


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32, shape (num_samples,), mono, nominally in [-1, 1]
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


# A Kaldi ``segments`` line turns into the per-utterance entry "<recording's entry> [<start>:<end>]"
# (seconds) when a data dir is loaded, so every reader of audio reads just the segment.
_SEGMENT = re.compile(r"^(.*\S)\s+\[(\d+(?:\.\d*)?):(\d+(?:\.\d*)?)\]$")


@dataclass(frozen=True)
class Segment:
    """A part of a recording as a ``wav.scp`` entry: ``str(seg)`` is "<recording> [<start>:<end>]",
    and :func:`parse_segment` reads it back. The times keep their text as written (seconds)."""
    recording: str  # the recording's wav.scp entry: a path or a pipe
    start: str
    end: str

    @property
    def seconds(self) -> tuple[float, float]:
        return float(self.start), float(self.end)

    def __str__(self) -> str:
        return f"{self.recording.strip()} [{self.start}:{self.end}]"


def parse_segment(entry: str) -> Segment | None:
    """The segment an entry names; None for a whole recording (a path or a pipe)."""
    m = _SEGMENT.match(entry.strip())
    return Segment(m.group(1), m.group(2), m.group(3)) if m else None


def is_pipe(entry: str) -> bool:
    """True when the entry is not one plain audio file as named: a pipe ``cmd |``, or a segment
    of a recording; read those through :func:`read_audio` only."""
    return entry.rstrip().endswith("|") or parse_segment(entry) is not None


def audio_file(entry: str, base_dir: str | Path | None = None) -> Path:
    """The file a plain ``wav.scp`` entry names, checked before anything opens it.

    One rule, whatever the working dir: a relative path is relative to ``base_dir`` (the data
    dir; Kaldi's would be the recipe dir). Only a non-empty regular file is accepted: a FIFO or a
    device would block the reader for ever.
    """
    path = Path(entry)
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AudioError(f"{path}: audio file not found") from None
    if not stat.S_ISREG(st.st_mode):
        raise AudioError(f"{path}: not a regular file (a FIFO, device or dir)")
    if st.st_size == 0:
        raise AudioError(f"{path}: audio file is empty")
    return path


def read_audio(entry: str, base_dir: str | Path | None = None, allow_pipes: bool = False) -> Audio:
    """Read one ``wav.scp`` entry (or a segment entry) as float32 mono (sample rate unchanged).

    A relative path is relative to ``base_dir`` (the data dir) when one is given, whatever the
    working dir (see :func:`audio_file`).
    """
    entry = entry.strip()
    segment = parse_segment(entry)
    if segment is not None:
        entry, (start, end) = segment.recording, segment.seconds
        audio = read_audio(entry, base_dir, allow_pipes)
        first, last = (round(t * audio.sample_rate) for t in (start, end))
        if last > len(audio.samples) + round(0.1 * audio.sample_rate) or first >= last:
            raise AudioError(f"{entry}: segment {start}-{end} s lies outside the recording "
                             f"({audio.duration:.2f} s)")
        return Audio(audio.samples[first:last], audio.sample_rate)
    if is_pipe(entry):
        if not allow_pipes:
            raise AudioError(
                f"wav.scp entry is a shell pipe ({entry[:60]!r}); pipes run commands from data files, "
                "enable them explicitly with --allow-pipes true"
            )
        proc = subprocess.run(entry[:-1], shell=True, capture_output=True)
        if proc.returncode != 0:
            raise AudioError(f"pipe {entry!r} failed ({proc.returncode}): {proc.stderr.decode()[-300:]}")
        source: object = io.BytesIO(proc.stdout)
    else:
        source = str(audio_file(entry, base_dir))
    try:
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several types for corrupt input
        raise AudioError(f"{entry}: cannot decode audio ({err})") from err
    return Audio(np.ascontiguousarray(data.mean(axis=1), dtype=np.float32), int(rate))


def read_window(entry: str, base_dir: str | Path | None, start: int, frames: int) -> np.ndarray | None:
    """Samples [start, start + frames) of a plain 16 kHz file entry, decoding only that stretch: the
    same samples as that slice of ``load_16k``. None for a pipe, a segment or another rate (read
    those whole)."""
    entry = entry.strip()
    if parse_segment(entry) is not None or is_pipe(entry):
        return None
    try:
        with sf.SoundFile(str(audio_file(entry, base_dir))) as f:
            if f.samplerate != SAMPLE_RATE:
                return None
            f.seek(start)
            data = f.read(frames, dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several types for corrupt input
        raise AudioError(f"{entry}: cannot decode audio ({err})") from err
    return check_finite(Audio(np.ascontiguousarray(data.mean(axis=1), dtype=np.float32), SAMPLE_RATE), entry).samples


def check_finite(audio: Audio, name: str) -> Audio:
    if not np.all(np.isfinite(audio.samples)):
        raise AudioError(f"{name}: audio contains NaN or inf samples")
    return audio


def resample(audio: Audio, rate: int) -> Audio:
    if audio.sample_rate == rate:
        return audio
    from scipy.signal import resample_poly  # here: importing scipy.signal costs every tool ~1 s at start

    g = gcd(audio.sample_rate, rate)
    out = resample_poly(audio.samples, rate // g, audio.sample_rate // g).astype(np.float32)
    return Audio(out, rate)


def load_16k(entry: str, base_dir: str | Path | None = None, allow_pipes: bool = False) -> Audio:
    """The recipe's working format: 16 kHz mono float32, finite."""
    return check_finite(resample(read_audio(entry, base_dir, allow_pipes), SAMPLE_RATE), entry)


def write_wav(path: str | Path, audio: Audio) -> None:
    """Write 16-bit PCM wav atomically (temp file + rename), clipping to [-1, 1]."""
    with atomic_path(path) as tmp:
        sf.write(tmp, np.clip(audio.samples, -1.0, 1.0), audio.sample_rate, subtype="PCM_16", format="WAV")


def peak_normalize(audio: Audio, peak: float = 0.95) -> Audio:
    top = float(np.max(np.abs(audio.samples))) if len(audio.samples) else 0.0
    if top <= 0:
        return audio
    return Audio((audio.samples * (peak / top)).astype(np.float32), audio.sample_rate)


def loudness_normalize(audio: Audio, target_lufs: float) -> Audio:
    """Scale to ``target_lufs`` integrated loudness (ITU-R BS.1770); silent or very short audio is
    returned unchanged because its loudness is undefined."""
    import pyloudnorm

    meter = pyloudnorm.Meter(audio.sample_rate)
    if len(audio.samples) < int(0.4 * audio.sample_rate) + 1:  # shorter than one gating block
        return audio
    loudness = meter.integrated_loudness(audio.samples.astype(np.float64))
    if not np.isfinite(loudness):
        return audio
    gain = 10.0 ** ((target_lufs - loudness) / 20.0)
    return Audio((audio.samples * gain).astype(np.float32), audio.sample_rate)


def trim_silence(audio: Audio, trigger_level: float = 7.0) -> Audio:
    """Leading and trailing silence cut as the kNN-VC reference cuts its matching-set audio:
    sox's VAD (``torchaudio.functional.vad``, default settings) trims the front, then the front of
    the reversed rest. Empty when it finds no voice."""
    import torch
    import torchaudio.functional as AF

    x = torch.from_numpy(np.ascontiguousarray(audio.samples, dtype=np.float32))[None]
    for _ in range(2):  # front, then (reversed) back; the second flip restores the order
        if x.shape[-1] == 0:
            break
        x = AF.vad(x, audio.sample_rate, trigger_level=trigger_level).flip(-1)
    return Audio(x[0].numpy(), audio.sample_rate)

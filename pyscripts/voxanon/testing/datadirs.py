"""Generated speech-like data dirs for the evaluation tests and benches: each speaker has its own
pitch and spectral envelope (so an ASV model can learn them), utterances vary in length, jitter
and noise."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf

from voxanon.data.kaldi import DataDir, Trial, load_data_dir, write_data_dir

RATE = 16000
VPC_EMOTIONS = ("ang", "hap", "neu", "sad")  # the four IEMOCAP classes of VPC 2024


def speaker_wave(spk: int, utt: int, seconds: float, emotion: int = 0) -> np.ndarray:
    rng = np.random.default_rng([spk, utt, emotion, 7])
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = (95 + 23 * spk) * (1 + 0.3 * emotion) + rng.normal(0, 2)
    env = np.random.default_rng([spk, 99]).uniform(0.1, 1.0, 12)  # speaker's harmonic envelope
    vib = 1 + 0.01 * np.sin(2 * np.pi * rng.uniform(3, 6) * t)
    phase = 2 * np.pi * np.cumsum(f0 * vib) / RATE
    tilt = np.arange(1, 13) ** (0.8 * emotion)  # emotions brighten the spectrum
    sig = sum(tilt[h - 1] * env[h - 1] * np.sin(h * phase) / h for h in range(1, 13))
    am = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6)) ** 2
    x = 0.1 * sig * am / tilt.max() + 0.005 * rng.standard_normal(len(t))
    return x.astype(np.float32)


def make_dir(path: Path, n_spk: int = 4, n_utt: int = 6, n_enroll: int = 2, spk_offset: int = 0,
             emotions: int = 0, text: bool = False, seconds: tuple[float, float] = (1.0, 2.0)) -> Path:
    """A data dir with enrolls (first ``n_enroll`` utts of each speaker) and VPC trials (every other
    utterance against every speaker); ``emotions`` > 0 adds utt2emo with that many classes."""
    path = Path(path)
    wav_scp, utt2spk, texts, utt2emo, gender = {}, {}, {}, {}, {}
    rng = np.random.default_rng(sum(path.name.encode()))  # not the tmp path: same data in every run
    for s in range(n_spk):
        spk = f"spk{s + spk_offset:02d}"
        gender[spk] = "fm"[s % 2]
        for u in range(n_utt):
            utt = f"{spk}-u{u:02d}"
            emo = u % emotions if emotions else 0
            wav = path / "wav" / f"{utt}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            sf.write(wav, speaker_wave(s + spk_offset, u, rng.uniform(*seconds), emo), RATE)
            wav_scp[utt], utt2spk[utt] = f"wav/{utt}.wav", spk
            texts[utt] = f"HELLO WORLD NUMBER {u}"
            if emotions:
                utt2emo[utt] = f"e{emo}"
    spks = sorted(gender)
    enrolls = tuple(u for u in sorted(utt2spk) if int(u[-2:]) < n_enroll)
    trials = tuple(Trial(s, u, utt2spk[u] == s) for u in sorted(utt2spk) if u not in enrolls for s in spks)
    tables = {"spk2gender": gender}
    if text:
        tables["text"] = texts
    if emotions:
        tables["utt2emo"] = utt2emo
    write_data_dir(DataDir(wav_scp, utt2spk, tables, enrolls if n_enroll else None, trials if n_enroll else None),
                   path)
    return path


def iemocap_dir(path, n_spk=4, n_utt=4):
    """An IEMOCAP-like set: 4 emotions, spk2fold (speaker pairs share a fold, as sessions do)."""
    make_dir(path, n_spk=n_spk, n_utt=n_utt, emotions=4, seconds=(0.5, 1.2))
    data = load_data_dir(path)
    tables = dict(data.tables)
    tables["utt2emo"] = {u: VPC_EMOTIONS[int(e[1:])] for u, e in data.table("utt2emo").items()}
    tables["spk2fold"] = {s: str(i // 2 + 1) for i, s in enumerate(sorted(set(data.utt2spk.values())))}
    write_data_dir(replace(data, tables=tables), path)
    return load_data_dir(path)

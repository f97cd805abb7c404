"""A Kaldi dir with a segments file through anonymization: each utterance is its stretch of the
recording, and the output is one wav per utterance (a plain, unsegmented data dir)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from voxanon.data.kaldi import load_data_dir

ROOT = Path(__file__).resolve().parents[1]


def test_anonymize_reads_segments(tmp_path):
    rate = 16000
    t = np.arange(4 * rate) / rate
    rec = (0.1 * np.sin(2 * np.pi * 140 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    data = tmp_path / "seg"
    data.mkdir()
    sf.write(data / "rec1.wav", rec, rate)
    files = {"wav.scp": f"rec1\t{data}/rec1.wav\n", "segments": "s1-a rec1 0.5 1.5\ns1-b rec1 2.0 3.25\n",
             "utt2spk": "s1-a s1\ns1-b s1\n", "spk2utt": "s1 s1-a s1-b\n"}
    for name, text in files.items():
        (data / name).write_text(text)
    conf = tmp_path / "mc.yaml"
    conf.write_text("exp: seg\nanonymizer:\n  system: mcadams\n  suffix: _mc\n  seed: 7\n  device: cpu\n")
    out = tmp_path / "seg_mc"
    res = subprocess.run(["bash", "-c", f". ./path.sh && steps/anonymize.sh --nj 1 {conf} {data} {out}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "VOXANON_EXP": str(tmp_path / "exp")})
    assert res.returncode == 0, res.stdout + res.stderr
    anon = load_data_dir(out)
    assert anon.utts == ["s1-a", "s1-b"] and not (out / "segments").exists()
    for utt, seconds in (("s1-a", 1.0), ("s1-b", 1.25)):
        audio, sr = sf.read(anon.wav_scp[utt] if os.path.isabs(anon.wav_scp[utt]) else out / anon.wav_scp[utt])
        assert sr == rate and abs(len(audio) - seconds * rate) < 0.02 * rate, utt

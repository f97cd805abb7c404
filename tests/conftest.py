"""Shared test fixtures: the repo root, the optional real-speech sets, small generated data dirs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def pytest_configure(config):
    # One intra-op thread: on a loaded 2-core machine, OpenMP spinning across threads makes tiny
    # convolutions 100x slower.
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def root() -> Path:
    return ROOT


RECIPE_LINKS = ("run.sh", "path.sh", "cmd.sh", "db.sh", "requirements.txt", "requirements-dev.txt", "pyproject.toml",
                "utils", "steps", "local", "pyscripts", "conf", "egs", ".venv")


def link_recipe(top: Path) -> Path:
    """A throw-away recipe dir linking to this checkout: run.sh there writes its data/ and exp/ there."""
    if not (ROOT / ".venv" / ".voxanon-stamp").is_file():
        pytest.skip("needs the set-up .venv (utils/setup_env.sh)")
    top.mkdir(parents=True, exist_ok=True)
    for name in RECIPE_LINKS:
        (top / name).symlink_to(ROOT / name)
    return top


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "timit" / "wav.scp").is_file():
        pytest.skip(f"real-speech sets not present at {SHARED_DATA}")
    return SHARED_DATA


def tone_audio(seconds: float = 1.0, freq: float = 220.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A voiced-like test signal: harmonic tone with a little noise, float32."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    sig = sum(np.sin(2 * np.pi * freq * h * t) / h for h in range(1, 6))
    return (0.2 * sig + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture
def tiny_data_dir(tmp_path: Path) -> Path:
    """A valid 2-speaker data dir (6 utts) with text, spk2gender, enrolls and trials."""
    import soundfile as sf

    from voxanon.data.kaldi import DataDir, Trial, write_data_dir

    wav_dir = tmp_path / "wavs"
    wav_dir.mkdir()
    wav_scp, utt2spk, text = {}, {}, {}
    for s, (spk, freq) in enumerate((("spkA", 140.0), ("spkB", 230.0))):
        for i in range(3):
            utt = f"{spk}-u{i}"
            path = wav_dir / f"{utt}.wav"
            sf.write(path, tone_audio(0.6 + 0.1 * i, freq, seed=3 * s + i), 16000)
            wav_scp[utt], utt2spk[utt], text[utt] = str(path), spk, f"HELLO WORLD {i}"
    trials = [Trial(spk, utt, utt2spk[utt] == spk) for spk in ("spkA", "spkB") for utt in ("spkA-u2", "spkB-u2")]
    data = DataDir(wav_scp, utt2spk, {"text": text, "spk2gender": {"spkA": "m", "spkB": "f"}},
                   enrolls=("spkA-u0", "spkB-u0"), trials=tuple(trials))
    out = tmp_path / "data"
    write_data_dir(data, out)
    return out

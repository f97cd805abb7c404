"""Helpers for the kNN-VC tests: tiny random models saved in the published layouts, a small pool.

The tiny WavLM keeps the real conv stack (320-sample hop, 400-sample receptive field) and the
real layer types, with narrow widths so tests run in seconds; the loaders read sizes from the
checkpoint, so the code paths are those of WavLM-Large.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from voxanon.data.kaldi import DataDir, write_data_dir
from voxanon.features.wavlm import WavLM, WavLMConfig, save_wavlm
from voxanon.vocoder.hifigan import Generator, HiFiGANConfig, save_generator

TINY_CONV = "[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2"
TINY = WavLMConfig(conv_feature_layers=TINY_CONV, encoder_layers=3, encoder_embed_dim=64, encoder_ffn_embed_dim=128,
                   encoder_attention_heads=4, conv_pos=16, conv_pos_groups=4, num_buckets=32, max_distance=800)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread while a kNN-VC test runs: on a shared 2-core machine, two threads of
    many small convolutions spin against other processes and run 10-50x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def randomize(model: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> torch.nn.Module:
    """Perturb every parameter (norm gains, gates, biases too) so comparisons are not trivial."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
    return model


def tiny_wavlm(seed: int = 0) -> WavLM:
    torch.manual_seed(seed)
    return randomize(WavLM(TINY), seed).eval()


def tiny_generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(HiFiGANConfig(in_dim=TINY.encoder_embed_dim, initial_channels=32)).eval()


def save_tiny_models(dest: Path, layout: str = "original") -> tuple[Path, Path]:
    """A tiny WavLM (``original`` = WavLM-Large.pt layout, or ``torchaudio``) and a tiny vocoder
    in the prematch_g_02500000.pt layout."""
    dest.mkdir(parents=True, exist_ok=True)
    wavlm, vocoder = dest / f"wavlm_{layout}.pt", dest / "prematch_g.pt"
    save_wavlm(tiny_wavlm(), wavlm, layout)
    save_generator(tiny_generator(), vocoder)
    return wavlm, vocoder


def voiced(seconds: float, freq: float, seed: int, lead: float = 0.0, trail: float = 0.0) -> np.ndarray:
    """Harmonic tone with noise, optionally with digital silence before and after."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    sig = 0.2 * sum(np.sin(2 * np.pi * freq * h * t) / h for h in range(1, 6)) + 0.01 * rng.standard_normal(len(t))
    return np.concatenate([np.zeros(int(lead * 16000)), sig, np.zeros(int(trail * 16000))]).astype(np.float32)


def make_pool(root: Path, speakers: dict[str, list[np.ndarray]]) -> Path:
    """A data dir with one wav per array, speaker by speaker."""
    wav_dir = root / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    wav_scp, utt2spk = {}, {}
    for spk, arrays in speakers.items():
        for i, x in enumerate(arrays):
            utt = f"{spk}-{i:02d}"
            sf.write(wav_dir / f"{utt}.wav", x, 16000)
            wav_scp[utt], utt2spk[utt] = str(wav_dir / f"{utt}.wav"), spk
    genders = {spk: "f" if n % 2 else "m" for n, spk in enumerate(speakers)}
    out = root / "pool"
    write_data_dir(DataDir(wav_scp, utt2spk, {"spk2gender": genders}), out)
    return out

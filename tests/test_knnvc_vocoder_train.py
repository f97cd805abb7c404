"""Vocoder training as the kNN-VC reference: prematching against the same chapter's (LibriSpeech)
or speaker's other utterances, 7040-sample crops drawn per worker and per epoch, the reference's
log-mel for the loss, and a resumable HiFi-GAN run (a few steps, narrow generator) whose
checkpoints load as published ones."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from knnvc_helpers import make_pool, voiced, one_torch_thread  # noqa: F401 (autouse fixture)
from voxanon.bin import train_vocoder
from voxanon.data.features import read_scp, write_shard
from voxanon.data.kaldi import DataDir, load_data_dir, write_data_dir
from voxanon.vocoder.hifigan import load_generator
from voxanon.vocoder.train import LogMel, SegmentDataset, TrainOptions, epoch_loader, prematch_group


def brute_knn_mean(q, pool, k=4):
    sims = torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(pool, dim=1).T
    return pool[sims.topk(k, dim=1).indices].mean(1)


def test_prematch_uses_other_utterances_only(tmp_path, capsys):
    data = load_data_dir(make_pool(tmp_path, {"a": [voiced(0.3, 100, i) for i in range(3)], "b": [voiced(0.3, 200, 9)]}))
    gen = torch.Generator().manual_seed(0)
    feats = {u: torch.randn(10 + i, 16, generator=gen) for i, u in enumerate(data.utts)}
    scp = write_shard(tmp_path / "feats", "f", 1, ((u, m.numpy()) for u, m in feats.items()))
    assert train_vocoder.main(["prematch", "--device", "cpu", str(tmp_path / "pool"), str(scp), str(tmp_path / "pm")]) == 0
    out = dict(read_scp(tmp_path / "pm" / "prematch.1.scp"))
    assert sorted(out) == ["a-00", "a-01", "a-02"]  # b has a single utterance: skipped
    assert "speaker b has one utterance" in capsys.readouterr().err
    pool = torch.cat([feats["a-00"], feats["a-02"]])
    np.testing.assert_allclose(out["a-01"], brute_knn_mean(feats["a-01"], pool).numpy(), rtol=1e-5, atol=1e-5)


def test_prematch_group_is_the_chapter_for_librispeech_ids():
    assert prematch_group("103-1240-0000", "103") == "chapter 103-1240"
    assert prematch_group("a-00", "a") == "speaker a"
    assert prematch_group("103-1240-0000", "p225") == "speaker p225"  # id not of the speaker: no chapter


def librispeech_dir(root, utts: dict[str, str]):
    """A data dir of 0.3 s tones with the given utt -> speaker ids."""
    (root / "wavs").mkdir(parents=True)
    for i, utt in enumerate(utts):
        sf.write(root / "wavs" / f"{utt}.wav", voiced(0.3, 100 + 10 * i, i), 16000)
    wav_scp = {u: str(root / "wavs" / f"{u}.wav") for u in utts}
    write_data_dir(DataDir(wav_scp, dict(utts), {"spk2gender": {s: "f" for s in utts.values()}}), root / "data")
    return load_data_dir(root / "data")


def test_prematch_uses_the_same_chapter_for_librispeech(tmp_path, capsys):
    ids = ["103-1240-0000", "103-1240-0001", "103-1240-0002", "103-5555-0000", "103-5555-0001", "19-198-0001"]
    data = librispeech_dir(tmp_path, {u: u.split("-")[0] for u in ids})
    gen = torch.Generator().manual_seed(0)
    feats = {u: torch.randn(10 + i, 16, generator=gen) for i, u in enumerate(data.utts)}
    scp = write_shard(tmp_path / "feats", "f", 1, ((u, m.numpy()) for u, m in feats.items()))
    assert train_vocoder.main(["prematch", "--device", "cpu", str(tmp_path / "data"), str(scp), str(tmp_path / "pm")]) == 0
    out = dict(read_scp(tmp_path / "pm" / "prematch.1.scp"))
    assert sorted(out) == ids[:5]
    assert "chapter 19-198 has one utterance" in capsys.readouterr().err
    pool = torch.cat([feats["103-1240-0000"], feats["103-1240-0002"]])  # not chapter 5555
    np.testing.assert_allclose(out["103-1240-0001"], brute_knn_mean(feats["103-1240-0001"], pool).numpy(),
                               rtol=1e-5, atol=1e-5)


def test_crops_differ_across_workers_and_epochs(tmp_path):
    """Four 2 s utterances whose feature frame t holds 1000 * utt + t, so a crop gives its offset;
    two workers, one utterance a batch. Crops are 7040 samples aligned with their 22 frames."""
    data = load_data_dir(make_pool(tmp_path, {"a": [voiced(2.0, 100 + 10 * i, i) for i in range(4)]}))
    frames = np.arange(100, dtype=np.float32)[:, None].repeat(8, 1)  # 2 s = 100 frames
    scp = write_shard(tmp_path / "feats", "f", 1, ((u, frames + 1000 * i) for i, u in enumerate(data.utts)))
    opts = TrainOptions(batch_size=1, workers=2)
    dataset = SegmentDataset(data, scp, opts.segment_frames)

    def crops(epoch):
        offsets = []  # (utt index, start frame) in loader order: batch i from worker i % 2
        for feats, wav in epoch_loader(dataset, opts, epoch):
            assert feats.shape == (1, 22, 8) and wav.shape == (1, 7040)
            utt, start = divmod(int(feats[0, 0, 0]), 1000)
            assert start + 22 <= 100
            np.testing.assert_array_equal(feats[0, :, 0].numpy(), 1000 * utt + start + np.arange(22))
            full = sf.read(data.wav_scp[data.utts[utt]], dtype="float32")[0]
            np.testing.assert_allclose(wav[0].numpy(), full[start * 320:start * 320 + 7040], atol=1e-6)
            offsets.append((utt, start))
        return offsets

    epoch0, epoch1 = crops(0), crops(1)
    assert [s for _, s in epoch0[0::2]] != [s for _, s in epoch0[1::2]]  # the two workers draw differently
    assert sorted(epoch0) != sorted(epoch1)  # another epoch, other crops
    assert crops(0) == epoch0  # an epoch is reproducible (a resumed run draws the same)


def numpy_log_mel(wav: np.ndarray) -> np.ndarray:
    """The reference's log-mel from its definition, without torch, torchaudio or librosa."""
    n_fft, hop, sr, n_mels = 1024, 320, 16000, 80

    def hz_to_mel(f):  # Slaney (librosa htk=False): linear to 1 kHz, then logarithmic
        return f / (200 / 3) if f < 1000 else 15 + np.log(f / 1000) / (np.log(6.4) / 27)

    def mel_to_hz(m):
        return m * 200 / 3 if m < 15 else 1000 * np.exp((m - 15) * np.log(6.4) / 27)

    edges = [mel_to_hz(m) for m in np.linspace(hz_to_mel(0.0), hz_to_mel(8000.0), n_mels + 2)]
    bins = np.arange(n_fft // 2 + 1) * sr / n_fft
    fb = np.zeros((n_mels, len(bins)))
    for m in range(n_mels):
        lo, mid, hi = edges[m:m + 3]
        for j, f in enumerate(bins):
            rise, fall = (f - lo) / (mid - lo), (hi - f) / (hi - mid)
            fb[m, j] = max(0.0, min(rise, fall)) * 2 / (hi - lo)  # Slaney norm: unit area
    pad = (n_fft - hop) // 2
    x = np.pad(wav.astype(np.float64), (pad, pad), mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    frames = [x[t:t + n_fft] * window for t in range(0, len(x) - n_fft + 1, hop)]  # center=False
    spec = np.abs(np.fft.rfft(np.array(frames), axis=1)).T
    return np.log(np.maximum(fb @ spec, 1e-5))


def test_log_mel_is_the_references():
    wav = 0.3 * torch.randn(2, 7040, generator=torch.Generator().manual_seed(0))
    mel = LogMel()(wav)
    assert mel.shape == (2, 80, 22)  # 7040 samples -> 22 frames, as the features
    for b in range(2):
        np.testing.assert_allclose(mel[b].numpy(), numpy_log_mel(wav[b].numpy()), atol=2e-4)
    fb = LogMel().filters.numpy()
    assert fb.shape == (80, 513) and (fb >= 0).all()
    centers = fb.argmax(1) * 16000 / 1024
    assert (np.diff(centers) >= 0).all() and centers[-1] > 7500
    # Slaney norm: every filter wider than a few bins has unit area in Hz
    wide = (fb > 0).sum(1) > 10
    np.testing.assert_allclose(fb[wide].sum(1) * 16000 / 1024, 1.0, rtol=0.02)


def test_log_mel_equals_torchaudio_as_the_reference_calls_it():
    """hifigan/meldataset.py LogMelSpectrogram, where torchaudio is installed."""
    torchaudio = pytest.importorskip("torchaudio")
    ref = torchaudio.transforms.MelSpectrogram(sample_rate=16000, n_fft=1024, win_length=1024, hop_length=320,
                                               center=False, power=1.0, norm="slaney", onesided=True, n_mels=80,
                                               mel_scale="slaney", f_min=0, f_max=8000)
    wav = 0.3 * torch.randn(2, 7040, generator=torch.Generator().manual_seed(1))
    expected = torch.log(ref(torch.nn.functional.pad(wav, (352, 352), "reflect")).clamp(min=1e-5))
    torch.testing.assert_close(LogMel()(wav), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_train_saves_published_layout_and_resumes(tmp_path, capsys):
    """Two steps with the full MPD/MSD discriminators: minutes on a loaded 2-core CPU."""
    data_dir = make_pool(tmp_path, {"a": [voiced(0.4, 120, 1), voiced(0.5, 130, 2)]})
    gen = torch.Generator().manual_seed(1)
    data = load_data_dir(data_dir)
    scp = write_shard(tmp_path / "pm", "prematch", 1, ((u, torch.randn(20, 16, generator=gen).numpy()) for u in data.utts))
    args = ["train", "--device", "cpu", "--batch-size", "2", "--segment-frames", "4", "--channels", "16",
            "--workers", "0", "--save-every", "1"]
    assert train_vocoder.main([*args, "--steps", "1", str(data_dir), str(scp), str(tmp_path / "out")]) == 0
    assert train_vocoder.main([*args, "--steps", "2", str(data_dir), str(scp), str(tmp_path / "out")]) == 0
    assert "at step 1" in capsys.readouterr().err.split("resumed from")[1]
    state = torch.load(tmp_path / "out" / "state.pt", weights_only=True)
    assert state["step"] == 2
    g1, g2 = load_generator(tmp_path / "out" / "g_00000001.pt"), load_generator(tmp_path / "out" / "g_00000002.pt")
    assert g2.cfg.in_dim == 16 and g2.cfg.initial_channels == 16
    assert any(not torch.equal(a, b) for a, b in zip(g1.state_dict().values(), g2.state_dict().values()))

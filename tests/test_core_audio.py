import numpy as np
import pytest
import soundfile as sf

from voxanon.audio import Audio, AudioError, load_16k, loudness_normalize, read_audio, resample, write_wav


def test_resample_and_mono(tmp_path):
    stereo = np.stack([np.sin(np.arange(44100) / 10.0)] * 2, axis=1).astype(np.float32) * 0.3
    sf.write(tmp_path / "a.flac", stereo, 44100)
    audio = load_16k(str(tmp_path / "a.flac"))
    assert audio.sample_rate == 16000 and audio.samples.ndim == 1
    assert abs(len(audio.samples) - 16000) <= 1


def test_pipes_need_opt_in(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(1600, dtype=np.float32), 16000)
    entry = f"cat {tmp_path / 'a.wav'} |"
    with pytest.raises(AudioError, match="allow-pipes"):
        read_audio(entry)
    assert len(read_audio(entry, allow_pipes=True).samples) == 1600


def test_bad_files_named(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match="empty.wav: audio file is empty"):
        read_audio(str(tmp_path / "empty.wav"))
    with pytest.raises(AudioError, match="junk.wav: cannot decode"):
        read_audio(str(tmp_path / "junk.wav"))
    with pytest.raises(AudioError, match="missing.wav: audio file not found"):
        read_audio(str(tmp_path / "missing.wav"))


def test_nan_rejected(tmp_path):
    sig = np.zeros(1600, dtype=np.float32)
    sig[5] = np.nan
    sf.write(tmp_path / "nan.wav", sig, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_16k(str(tmp_path / "nan.wav"))


def test_write_is_atomic_and_round_trips(tmp_path):
    audio = Audio((0.5 * np.sin(np.arange(8000) / 7.0)).astype(np.float32), 16000)
    write_wav(tmp_path / "o.wav", audio)
    assert [p.name for p in tmp_path.iterdir()] == ["o.wav"]
    back = read_audio(str(tmp_path / "o.wav"))
    assert np.max(np.abs(back.samples - audio.samples)) < 1e-4


def test_loudness_normalize_hits_target():
    import pyloudnorm

    audio = Audio((0.05 * np.sin(np.arange(32000) * 0.07)).astype(np.float32), 16000)
    out = loudness_normalize(audio, -30.0)
    assert abs(pyloudnorm.Meter(16000).integrated_loudness(out.samples.astype(np.float64)) + 30.0) < 0.1
    assert resample(out, 16000) is out

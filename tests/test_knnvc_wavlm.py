"""WavLM to layer L: a checkpoint in the original layout gives what torchaudio's own
``extract_features`` gives, both published layouts, chunked extraction, batching with padding
masks, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from knnvc_helpers import TINY, randomize, tiny_wavlm, one_torch_thread  # noqa: F401 (autouse fixture)
from voxanon.audio import Audio, AudioError
from voxanon.features.wavlm import (FEATURE_CHUNK, HOP, LARGE_CONV, WavLM, WavLMConfig, _parse_conv_layers,
                                    conv_features, extract_batch, extract_layer, load_wavlm, num_frames, save_wavlm)


def torchaudio_tiny():
    from torchaudio.models import wavlm_model

    conv = _parse_conv_layers(TINY.conv_feature_layers)
    model = wavlm_model("layer_norm", conv, False, TINY.encoder_embed_dim, 0.0, TINY.conv_pos, TINY.conv_pos_groups,
                        TINY.encoder_layers, TINY.encoder_attention_heads, TINY.num_buckets, TINY.max_distance, 0.0,
                        TINY.encoder_ffn_embed_dim, 0.0, 0.0, True, 0.0, None)
    return randomize(model, seed=3).eval()


def wav(seconds: float, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, int(seconds * 16000), generator=torch.Generator().manual_seed(seed)) * 0.1


@pytest.mark.parametrize("layout", ["original", "torchaudio"])
def test_layer_outputs_equal_torchaudio_wavlm(tmp_path, layout):
    """torchaudio's WavLM with random weights, written in a published layout and loaded: every
    layer output equals torchaudio's own ``extract_features``, with no final LayerNorm applied."""
    ta = torchaudio_tiny()
    torch.save(ta.state_dict(), tmp_path / "w.pt")
    if layout == "original":  # the same weights translated to WavLM-Large.pt's names
        save_wavlm(load_wavlm(tmp_path / "w.pt"), tmp_path / "w.pt", "original")
        assert set(torch.load(tmp_path / "w.pt", weights_only=True)) == {"cfg", "model"}
    ours = load_wavlm(tmp_path / "w.pt")
    x = torch.cat([wav(1.3, 1), wav(1.3, 2)])
    with torch.no_grad():
        ref = ta.extract_features(x, num_layers=TINY.encoder_layers)[0]
        for layer in range(1, TINY.encoder_layers + 1):
            out, frames = ours(x, None, layer)
            assert out.shape == ref[layer - 1].shape
            torch.testing.assert_close(out, ref[layer - 1], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(ours.all_layers(x), torch.stack(ref), rtol=1e-4, atol=1e-4)
    assert int(frames[0]) == ref[0].shape[1] == num_frames(x.shape[1], ours)


def test_conv_features_equal_torchaudio_feature_extractor():
    """The time-major GEMM conv stack against torchaudio's own ``FeatureExtractor`` of WavLM-Large
    (kernels 10/3/2, strides 5/2), random weights, a padded batch longer than several chunks: the
    same frames and lengths, under float32 and bfloat16 autocast."""
    from torchaudio.models.wav2vec2.components import _get_feature_extractor

    extractor = randomize(_get_feature_extractor("layer_norm", _parse_conv_layers(LARGE_CONV), False), seed=5).eval()
    samples = HOP * FEATURE_CHUNK * 2 + 1234  # 2 full chunks and a part
    x = torch.cat([wav(samples / 16000, 1), wav(samples / 16000, 2)]) * 10
    lengths = torch.tensor([samples, samples // 3])
    with torch.no_grad():
        ref, ref_lengths = extractor(x, lengths)
        out, out_lengths = conv_features(extractor.conv_layers, x, lengths)
        assert out.shape == ref.shape and out.shape[1] > 2 * FEATURE_CHUNK
        assert torch.equal(out_lengths, ref_lengths)
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low, _ = conv_features(extractor.conv_layers, x, lengths)
            ref_low, _ = extractor(x, lengths)
    assert (low.float() - ref_low.float()).norm() / ref_low.float().norm() < 0.03  # bfloat16 rounding
    assert (low.float() - ref.float()).norm() / ref.norm() < 0.03


@pytest.mark.parametrize("layout", ["original", "torchaudio"])
def test_checkpoint_round_trip(tmp_path, layout):
    model = tiny_wavlm(seed=5)
    save_wavlm(model, tmp_path / "w.pt", layout)
    loaded = load_wavlm(tmp_path / "w.pt")
    x = wav(0.8, 7)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, None, 2)[0], model(x, None, 2)[0], rtol=0, atol=0)
    ckpt = torch.load(tmp_path / "w.pt", weights_only=True)
    if layout == "original":
        assert set(ckpt) == {"cfg", "model"}
        assert "encoder.layers.0.self_attn.relative_attention_bias.weight" in ckpt["model"]
        assert "encoder.pos_conv.0.weight_g" in ckpt["model"]
    else:
        assert "encoder.transformer.layers.0.attention.attention.in_proj_weight" in ckpt


def test_wrong_layout_names_missing_keys(tmp_path):
    model = tiny_wavlm()
    save_wavlm(model, tmp_path / "w.pt")
    ckpt = torch.load(tmp_path / "w.pt", weights_only=True)
    del ckpt["model"]["encoder.layers.1.fc1.weight"]
    torch.save(ckpt, tmp_path / "broken.pt")
    with pytest.raises(ValueError, match=r"missing keys: encoder\.layers\.1\.fc1\.weight"):
        load_wavlm(tmp_path / "broken.pt")
    torch.save({"generator": {}}, tmp_path / "vocoder.pt")
    with pytest.raises(ValueError, match="expected keys 'cfg' and 'model'"):
        load_wavlm(tmp_path / "vocoder.pt")
    with pytest.raises(ValueError, match="layer 9 requested"):
        load_wavlm(tmp_path / "w.pt", max_layer=9)


def test_cfg_conv_spec_parsed_without_eval():
    assert _parse_conv_layers(WavLMConfig().conv_feature_layers) == [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2
    with pytest.raises(ValueError):
        _parse_conv_layers("__import__('os').system('true')")
    with pytest.raises(ValueError, match="extractor_mode"):
        WavLMConfig.from_cfg({"extractor_mode": "default"})


def test_batched_with_padding_equals_one_by_one():
    model = tiny_wavlm()
    audios = [Audio(wav(s, i)[0].numpy(), 16000) for i, s in enumerate((0.3, 1.1, 0.7))]
    batched = extract_batch(model, audios, layer=3)
    for audio, feats in zip(audios, batched):
        single = extract_batch(model, [audio], layer=3)[0]
        assert feats.shape == (num_frames(len(audio.samples), model), TINY.encoder_embed_dim)
        np.testing.assert_allclose(feats, single, rtol=1e-4, atol=1e-4)


def local_attention(model: WavLM) -> WavLM:
    """Make the relative position bias strongly favour nearby frames, as trained WavLM layers
    do; random weights alone attend everywhere, which no chunking can reproduce."""
    bias = model.encoder.transformer.layers[0].attention.rel_attn_embed.weight
    with torch.no_grad():
        half = TINY.num_buckets // 2
        far = torch.arange(half) >= 8  # bucket 8 and up: more than 8 frames away
        penalty = torch.where(far, -60.0, 0.0)
        bias.copy_(torch.cat([penalty, penalty])[:, None].expand_as(bias))
        for layer in model.encoder.transformer.layers:
            layer.attention.gru_rel_pos_const.fill_(1.0)
    return model


def test_chunked_equals_unchunked():
    model = local_attention(tiny_wavlm(seed=2))
    audio = Audio(wav(7.3, 4)[0].numpy(), 16000)
    whole = extract_layer(model, audio, layer=3, chunk_seconds=60)
    chunked = extract_layer(model, audio, layer=3, chunk_seconds=2.0, context_seconds=0.6)
    assert chunked.shape == whole.shape == (num_frames(len(audio.samples), model), TINY.encoder_embed_dim)
    np.testing.assert_allclose(chunked, whole, rtol=1e-3, atol=1e-3)
    # Frame alignment at seams: each core frame is exactly the frame of the whole signal.
    assert np.abs(chunked - whole).max() < 1e-3


def test_too_short_and_wrong_rate():
    model = tiny_wavlm()
    with pytest.raises(AudioError, match="utt7: 399 samples is shorter than one WavLM frame"):
        extract_batch(model, [Audio(np.zeros(399, np.float32), 16000)], layer=1, names=["utt7"])
    assert extract_layer(model, Audio(np.zeros(400, np.float32), 16000), layer=1).shape == (1, 64)
    with pytest.raises(AudioError, match="16000 Hz"):
        extract_layer(model, Audio(np.zeros(8000, np.float32), 8000), layer=1)


def test_frame_hop_is_320():
    model = tiny_wavlm()
    assert [num_frames(n, model) for n in (400, 719, 720, 16000)] == [1, 1, 2, 49]
    assert HOP == 320


@pytest.mark.slow
def test_wavlm_large_random_round_trip(tmp_path):
    """The real WavLM-Large size (315 M parameters) in both layouts."""
    torch.manual_seed(0)
    model = WavLM().eval()
    x = wav(1.0)
    with torch.no_grad():
        ref = model(x, None, 6)[0]
    assert ref.shape == (1, 49, 1024)
    for layout in ("original", "torchaudio"):
        save_wavlm(model, tmp_path / f"{layout}.pt", layout)
        with torch.no_grad():
            out = load_wavlm(tmp_path / f"{layout}.pt", max_layer=6)(x, None, 6)[0]
        torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_out_of_memory_splits_batches_then_shortens_chunks(monkeypatch, caplog):
    """Simulated CUDA OOM: batches of several segments and segments over 2.5 s 'do not fit'."""
    import voxanon.features.wavlm as wavlm_mod

    model = local_attention(tiny_wavlm(seed=2))
    audios = [Audio(wav(s, i)[0].numpy(), 16000) for i, s in enumerate((1.0, 3.2))]
    reference = extract_batch(model, audios, layer=3, chunk_seconds=60)
    real_run = wavlm_mod._run

    limit = {"samples": 2.5 * 16000}

    def tight_run(model_, samples, segs, layer, device):
        if len(segs) > 1 or segs[0].stop - segs[0].start > limit["samples"]:
            raise torch.cuda.OutOfMemoryError("simulated")
        return real_run(model_, samples, segs, layer, device)

    monkeypatch.setattr(wavlm_mod, "_run", tight_run)
    with caplog.at_level("WARNING"):
        out = extract_batch(model, audios, layer=3, chunk_seconds=4.0, context_seconds=0.5, names=["a", "b"])
    assert "splitting it" in caplog.text and "GPU out of memory on b; retrying with 2.0 s chunks" in caplog.text
    for got, ref in zip(out, reference):
        np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-3)
    limit["samples"] = 0.5 * 16000  # nothing fits, even chunks of 2 x context: the error surfaces
    with pytest.raises(torch.cuda.OutOfMemoryError):
        extract_batch(model, audios[1:], layer=3, chunk_seconds=4.0, context_seconds=0.5)

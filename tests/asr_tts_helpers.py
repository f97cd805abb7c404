"""Helpers for the ASR -> TTS tests: packaged-model checks, and tiny random-weight models with the
real architectures and file layouts (a multi-speaker Piper VITS .onnx + .onnx.json, an
openai-whisper checkpoint)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

SENTENCE = "She had your dark suit in greasy wash water all year."


def packaged_or_skip(name: str) -> Path:
    """The packaged model's path, or skip (the package is not installed here)."""
    from voxanon.packaged import packaged_model_path

    try:
        return packaged_model_path(name)
    except FileNotFoundError as err:
        pytest.skip(f"packaged model {name} not available: {err}")


def make_piper_voice(out_dir: Path, speakers: tuple[str, ...] = ("spk_a", "spk_b", "spk_c", "spk_d")) -> Path:
    """A randomly initialized multi-speaker Piper VITS voice (SynthesizerTrn from piper-tts's own
    training code, tiny widths), exported to ONNX like piper's export_onnx, with an
    ``.onnx.json`` whose phoneme map is the packaged joe voice's. Returns the .onnx path."""
    import torch
    from piper.train.vits.models import SynthesizerTrn

    joe = packaged_or_skip("piper-joe-medium")
    config = json.loads(joe.with_name(joe.name + ".json").read_text())
    torch.manual_seed(0)
    model = SynthesizerTrn(
        n_vocab=config["num_symbols"], spec_channels=513, segment_size=32, inter_channels=16, hidden_channels=16,
        filter_channels=32, n_heads=2, n_layers=1, kernel_size=3, p_dropout=0.0, resblock="2",
        resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),), upsample_rates=(8, 8, 4),
        upsample_initial_channel=32, upsample_kernel_sizes=(16, 16, 8), n_speakers=len(speakers),
        gin_channels=8, use_sdp=True).eval()
    with torch.no_grad():
        model.dec.remove_weight_norm()

    def infer(text, text_lengths, scales, sid):
        return model.infer(text, text_lengths, sid=sid, noise_scale=scales[0], length_scale=scales[1],
                           noise_scale_w=scales[2])[0].unsqueeze(1)

    model.forward = infer
    onnx = out_dir / "xx_XX-random-tiny.onnx"
    args = (torch.randint(0, config["num_symbols"], (1, 20)), torch.LongTensor([20]),
            torch.FloatTensor([0.667, 1.0, 0.8]), torch.LongTensor([0]))
    torch.onnx.export(model, args, str(onnx), opset_version=15, dynamo=False,
                      input_names=["input", "input_lengths", "scales", "sid"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch", 1: "phonemes"}, "input_lengths": {0: "batch"},
                                    "output": {0: "batch", 2: "time"}})
    config.update(num_speakers=len(speakers), speaker_id_map={s: i for i, s in enumerate(speakers)},
                  dataset="random-tiny")
    onnx.with_name(onnx.name + ".json").write_text(json.dumps(config))
    return onnx


def make_whisper_checkpoint(path: Path) -> Path:
    """A randomly initialized English-only openai-whisper model (tiny widths, a 64-token text
    context so random decoding stops after 32 tokens; real layout:
    ``{"dims": ..., "model_state_dict": ...}``) saved with torch.save."""
    from dataclasses import asdict

    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=32, n_audio_head=2, n_audio_layer=1,
                           n_vocab=51864, n_text_ctx=64, n_text_state=32, n_text_head=2, n_text_layer=1)
    model = Whisper(dims)
    with torch.no_grad():  # Whisper leaves this parameter uninitialized (torch.empty)
        model.decoder.positional_embedding.normal_(0.0, 0.02)
    torch.save({"dims": asdict(dims), "model_state_dict": model.state_dict()}, path)
    return path

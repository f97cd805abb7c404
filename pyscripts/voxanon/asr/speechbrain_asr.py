"""speechbrain ``EncoderASR`` backend: the VPC 2024 ASR_eval (wav2vec2 + CTC, LibriSpeech 960 h).

The model dir (registry ``vpc-asr``: the release's ``asr.zip``, or any speechbrain EncoderASR dir)
is loaded by speechbrain itself from its own hyperparams and files (``voxanon.asr.sb_pretrained``).
``transcribe_batch`` decodes the given utterances as one zero-padded batch with relative lengths,
as the VPC's collate function builds them; the VPC's order (whole set sorted by length, longest
first, batches of 8) is made by the caller (``voxanon.eval.wer``). Greedy CTC, no LM.

The release ran speechbrain 0.5.16, whose ``LengthsCapableSequential`` passes the lengths only to
layers with a ``forward`` argument literally named ``lengths``; the HF wav2vec2 lobe's is
``wav_lens``, so the VPC's wav2vec2 saw the zero-padded batch without a padding mask (a padded
utterance decodes differently from alone). The installed speechbrain (1.1.2) passes them as
``wav_lens``. By default the encoder runs with the 0.5.16 rule (``ReleaseLengthsSequential``), for
the release's figures; ``wav2vec2_padding_mask: true`` keeps the installed, masked behaviour.
"""
from __future__ import annotations

import inspect
from pathlib import Path

import torch

from voxanon.asr import AsrConfig
from voxanon.audio import SAMPLE_RATE, Audio, resample


class ReleaseLengthsSequential(torch.nn.Module):
    """The layers of a ``LengthsCapableSequential`` run as speechbrain 0.5.16 runs them: the
    relative lengths go to a layer only if its ``forward`` has an argument named ``lengths``."""

    def __init__(self, layers: torch.nn.Module):
        super().__init__()
        self.layers = layers
        self.takes_lengths = ["lengths" in inspect.signature(m.forward).parameters for m in layers.values()]

    def forward(self, x, lengths=None):
        for layer, takes_lengths in zip(self.layers.values(), self.takes_lengths):
            x = layer(x, lengths=lengths) if takes_lengths else layer(x)
            if isinstance(x, tuple):
                x = x[0]
        return x


def release_encoder(encoder: torch.nn.Module) -> torch.nn.Module:
    """``encoder`` with the 0.5.16 lengths rule if it is a ``LengthsCapableSequential``."""
    from speechbrain.nnet.containers import LengthsCapableSequential

    return ReleaseLengthsSequential(encoder) if isinstance(encoder, LengthsCapableSequential) else encoder


class SpeechBrainAsr:
    def __init__(self, model_dir: Path, config: AsrConfig, device: str = "cpu"):
        from speechbrain.inference.ASR import EncoderASR

        from voxanon.asr.sb_pretrained import load_pretrained

        self.config, self.device = config, device
        self.model = load_pretrained(EncoderASR, model_dir, device)
        if not config.wav2vec2_padding_mask:
            self.model.mods.encoder = release_encoder(self.model.mods.encoder)
        self.model.eval()

    def transcribe(self, audio: Audio) -> str:
        return self.transcribe_batch([audio])[0]

    @torch.no_grad()
    def transcribe_batch(self, audios: list[Audio]) -> list[str]:
        wavs = [torch.from_numpy(resample(a, SAMPLE_RATE).samples) for a in audios]
        batch = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True, padding_value=0.0)
        lens = torch.tensor([len(w) for w in wavs], dtype=torch.float32) / batch.shape[1]
        words, _ = self.model.transcribe_batch(batch.to(self.device), lens.to(self.device))
        return [str(w) for w in words]

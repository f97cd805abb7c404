"""speechbrain ``EncoderASR`` backend: the VPC 2024 ASR_eval (wav2vec2 + CTC, LibriSpeech 960 h).

The model dir (registry ``vpc-asr``: the release's ``asr.zip``, or any speechbrain EncoderASR dir)
is loaded by speechbrain itself from its own hyperparams and files (``voxanon.asr.sb_pretrained``).
``transcribe_batch`` decodes the given utterances as one zero-padded batch with relative lengths,
as the VPC's collate function builds them; the VPC's order (whole set sorted by length, longest
first, batches of 8) is made by the caller (``voxanon.eval.wer``). Greedy CTC, no LM.
"""
from __future__ import annotations

from pathlib import Path

import torch

from voxanon.asr import AsrConfig
from voxanon.audio import SAMPLE_RATE, Audio, resample


class SpeechBrainAsr:
    def __init__(self, model_dir: Path, config: AsrConfig, device: str = "cpu"):
        from speechbrain.inference.ASR import EncoderASR

        from voxanon.asr.sb_pretrained import load_pretrained

        self.config, self.device = config, device
        self.model = load_pretrained(EncoderASR, model_dir, device)
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

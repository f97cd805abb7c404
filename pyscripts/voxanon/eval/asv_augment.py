"""Waveform augmentation of the VPC 2026 attacker fine-tuning (``asv.augment``).

As the 2026 recipe's ``train_ecapa_ssl_tdnn_small.yaml``: speechbrain's ``Augmenter`` applies
``DropFreq`` (1-3 notches anywhere in the band, width 0.05) and then ``DropChunk`` (1-5 zeroed
chunks of 1000-2000 samples) to every training chunk, before the fbank branch; the WavLM branch
sees its crop unaugmented, as the recipe feeds WavLM from the file. The draws are seeded per
(seed, epoch, batch), so a resumed epoch augments its batches as an uninterrupted one.
"""
from __future__ import annotations

import torch


def vpc2026_augmenter() -> torch.nn.Module:
    from speechbrain.augment.augmenter import Augmenter
    from speechbrain.augment.time_domain import DropChunk, DropFreq

    # min/max_augmentations 4 as the recipe (speechbrain clamps them to the 2 given: both, in order)
    return Augmenter(parallel_augment=False, concat_original=False, min_augmentations=4, max_augmentations=4,
                     augment_prob=1.0, augmentations=[
                         DropFreq(drop_freq_low=0, drop_freq_high=1, drop_freq_count_low=1, drop_freq_count_high=3,
                                  drop_freq_width=0.05),
                         DropChunk(drop_length_low=1000, drop_length_high=2000, drop_count_low=1, drop_count_high=5)])


def augment_batch(augmenter: torch.nn.Module, waves: torch.Tensor, seed: int, epoch: int, batch: int) -> torch.Tensor:
    """(B, T) chunks -> augmented (B, T), with the draws of (seed, epoch, batch)."""
    devices = [waves.device] if waves.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed((seed * 1_000_003 + epoch) * 1_000_003 + batch)
        out, _ = augmenter(waves, torch.ones(len(waves), device=waves.device))
    return out

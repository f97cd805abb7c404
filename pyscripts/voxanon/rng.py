"""Seeded randomness per utterance, the same whatever job, order or machine draws it."""
from __future__ import annotations

import hashlib

import numpy as np


def utt_rng(seed: int, utt_id: str, *salt: str) -> np.random.Generator:
    """A generator determined by the seed, the utterance id and ``salt`` only, so the choices for
    an utterance are the same whatever job, order or machine processes it."""
    digest = hashlib.sha256("\x1f".join((str(seed), utt_id, *salt)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))

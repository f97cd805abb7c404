"""Batches that shrink on CUDA out-of-memory (WavLM extraction and vocoding share this)."""
import pytest
import torch

from voxanon.batching import run_halving


def test_a_batch_too_big_is_split_until_it_fits_and_a_single_item_goes_to_too_big():
    def run(group):
        if len(group) > 2 or group == ["huge"]:
            raise torch.cuda.OutOfMemoryError("simulated")
        return [x.upper() for x in group]

    set_aside = []
    done = [tuple(g) for g, _ in run_halving([["a", "b", "c", "d"], ["huge"]], run, lambda x: set_aside.append(x) or True)]
    assert sorted(x for group in done for x in group) == ["a", "b", "c", "d"]
    assert all(len(group) <= 2 for group in done) and set_aside == ["huge"]
    with pytest.raises(torch.cuda.OutOfMemoryError):
        list(run_halving([["huge"]], run))

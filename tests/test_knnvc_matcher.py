"""The blocked cosine kNN matcher against a brute-force full-matrix computation."""
from __future__ import annotations

import pytest
import torch

from knnvc_helpers import one_torch_thread  # noqa: F401 (autouse fixture)

from voxanon.knn.matcher import knn_average, knn_indices, knn_match_batch


def brute_force(query, pool, k):
    sims = torch.nn.functional.normalize(query, dim=1) @ torch.nn.functional.normalize(pool, dim=1).T
    idx = sims.topk(min(k, pool.shape[0]), dim=1).indices
    return pool[idx].mean(dim=1), idx


@pytest.mark.parametrize("query_block,pool_block", [(2048, 16384), (7, 5), (16, 1), (1, 50)])
def test_equals_brute_force(query_block, pool_block):
    gen = torch.Generator().manual_seed(0)
    query, pool = torch.randn(50, 32, generator=gen), torch.randn(237, 32, generator=gen) * 3
    ref, ref_idx = brute_force(query, pool, 4)
    idx = knn_indices(query, pool, 4, query_block, pool_block)
    assert torch.equal(idx.sort(dim=1).values, ref_idx.sort(dim=1).values)
    torch.testing.assert_close(knn_average(query, pool, 4, query_block, pool_block), ref)


def test_cosine_not_euclidean():
    """A far-away vector in the right direction beats a near one at an angle."""
    pool = torch.tensor([[10.0, 0.0], [0.6, 0.8]])
    out = knn_average(torch.tensor([[1.0, 0.1]]), pool, k=1)
    torch.testing.assert_close(out, pool[:1])


def test_k_larger_than_pool_and_zero_vectors():
    pool = torch.randn(3, 8)
    out = knn_average(torch.zeros(5, 8), pool, k=4)  # zero query: similarity 0 to all, no NaN
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, pool.mean(0).expand(5, -1))
    with pytest.raises(ValueError, match="empty"):
        knn_average(torch.randn(2, 8), torch.zeros(0, 8))
    with pytest.raises(ValueError, match="share D"):
        knn_average(torch.randn(2, 8), torch.randn(4, 9))


def test_batch_pooled_is_weighted_average_per_query():
    gen = torch.Generator().manual_seed(1)
    q1, q2 = torch.randn(20, 16, generator=gen), torch.randn(7, 16, generator=gen)
    a, b = torch.randn(40, 16, generator=gen), torch.randn(30, 16, generator=gen)
    m1, m2 = knn_match_batch([q1, q2], {"a": a, "b": b}, [[("a", 3.0), ("b", 1.0)], [("b", 2.0)]], k=4)
    torch.testing.assert_close(m1, 0.75 * brute_force(q1, a, 4)[0] + 0.25 * brute_force(q1, b, 4)[0])
    torch.testing.assert_close(m2, brute_force(q2, b, 4)[0])
    with pytest.raises(ValueError, match="positive sum"):
        knn_match_batch([q1], {"a": a}, [[("a", 0.0)]])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_similarities_mostly_agree(dtype):
    gen = torch.Generator().manual_seed(3)
    query, pool = torch.randn(200, 64, generator=gen), torch.randn(3000, 64, generator=gen)
    exact, half = knn_indices(query, pool, 4), knn_indices(query, pool, 4, dtype=dtype)
    assert (exact[:, 0] == half[:, 0]).float().mean() > 0.9  # the nearest frame; near-ties may swap


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_gpu_query_cpu_pool_equals_cpu():
    gen = torch.Generator().manual_seed(2)
    query, pool = torch.randn(300, 64, generator=gen), torch.randn(5000, 64, generator=gen)
    out = knn_average(query.cuda(), pool, k=4, pool_block=1000)
    torch.testing.assert_close(out.cpu(), brute_force(query, pool, 4)[0], rtol=1e-4, atol=1e-4)

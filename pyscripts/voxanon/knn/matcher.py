"""Exact cosine k-nearest-neighbour averaging, blocked so memory stays bounded.

``knn_average(query (T, D), pool (N, D), k) -> (T, D)``: each query frame is replaced by the
mean of the ``k`` pool frames with the highest cosine similarity (kNN-VC's ``match``). The
similarity matrix is never built whole: queries go in blocks of ``query_block`` rows and the pool
in blocks of ``pool_block`` rows, with a running top-k merged block by block, so peak memory is
about ``query_block x (pool_block + k)`` similarities plus one pool block, whatever N is. The pool
may stay on the CPU while the query is on a GPU: blocks are moved as they are used.

``dtype`` (bfloat16 / float16) computes the similarities in half precision (norms and the
averaged frames stay float32); near-ties may then pick other neighbours (bench/knnvc_bench.py
measures how often). :func:`knn_match_batch` matches a batch of utterances: every query that uses
a matching set goes through it in one pass.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor


def _inv_norms(x: Tensor) -> Tensor:
    # Zero vectors get similarity 0 to everything instead of NaN.
    return 1.0 / x.float().norm(dim=-1).clamp_min(1e-8)


@torch.inference_mode()
def knn_indices(query: Tensor, pool: Tensor, k: int = 4, query_block: int = 2048,
                pool_block: int = 16384, dtype: torch.dtype = torch.float32) -> Tensor:
    """Indices (T, k') of the k' = min(k, N) most cosine-similar pool rows per query row."""
    if query.dim() != 2 or pool.dim() != 2 or query.shape[1] != pool.shape[1]:
        raise ValueError(f"query (T, D) and pool (N, D) must share D; got {tuple(query.shape)}, {tuple(pool.shape)}")
    if pool.shape[0] == 0:
        raise ValueError("the matching set is empty")
    k = min(k, pool.shape[0])
    device = query.device
    out = torch.empty(query.shape[0], k, dtype=torch.long, device=device)
    for q0 in range(0, query.shape[0], query_block):
        q = query[q0:q0 + query_block].float()
        q = (q * _inv_norms(q)[:, None]).to(dtype)
        best_val = torch.full((q.shape[0], 0), float("-inf"), device=device)
        best_idx = torch.empty((q.shape[0], 0), dtype=torch.long, device=device)
        for p0 in range(0, pool.shape[0], pool_block):
            p = pool[p0:p0 + pool_block].to(device, torch.float32, non_blocking=True)
            sims = (q @ p.to(dtype).T).float() * _inv_norms(p)[None, :]
            vals, idx = sims.topk(min(k, p.shape[0]), dim=1)
            best_val = torch.cat([best_val, vals], dim=1)
            best_idx = torch.cat([best_idx, idx + p0], dim=1)
            if best_val.shape[1] > k:
                best_val, keep = best_val.topk(k, dim=1)
                best_idx = best_idx.gather(1, keep)
        out[q0:q0 + q.shape[0]] = best_idx
    return out


@torch.inference_mode()
def knn_average(query: Tensor, pool: Tensor, k: int = 4, query_block: int = 2048, pool_block: int = 16384,
                dtype: torch.dtype = torch.float32) -> Tensor:
    """(T, D): the mean of the k nearest pool frames (cosine) of each query frame."""
    idx = knn_indices(query, pool, k, query_block, pool_block, dtype)
    picked = pool[idx.flatten().to(pool.device)].to(query.device, torch.float32)
    return picked.view(idx.shape[0], idx.shape[1], -1).mean(dim=1)


def knn_match_batch(queries: Sequence[Tensor], pools: Mapping[str, Tensor],
                    targets: Sequence[Sequence[tuple[str, float]]], k: int = 4,
                    dtype: torch.dtype = torch.float32) -> list[Tensor]:
    """Query i (T_i, D) -> the weighted average (weights normalized to sum 1) of the kNN averages
    of its ``targets[i]`` = [(matching-set name, weight), ...] in ``pools``; each set is searched
    once for all the queries that use it."""
    uses: dict[str, list[tuple[int, float]]] = {}
    for i, pairs in enumerate(targets):
        total = float(sum(w for _, w in pairs))
        if not pairs or total <= 0 or any(w < 0 for _, w in pairs):
            raise ValueError(f"weights must be non-negative with a positive sum, got {list(pairs)}")
        for name, w in pairs:
            uses.setdefault(name, []).append((i, w / total))
    out = [torch.zeros(q.shape, dtype=torch.float32, device=q.device) for q in queries]
    for name, users in uses.items():
        matched = knn_average(torch.cat([queries[i] for i, _ in users]), pools[name], k, dtype=dtype)
        for (i, w), part in zip(users, matched.split([len(queries[i]) for i, _ in users])):
            out[i] += w * part
    return out

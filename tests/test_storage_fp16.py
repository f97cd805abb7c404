"""float16 storage of WavLM features against float32: the error in the features and what it does to
the kNN-VC output (k = 4 cosine neighbours in a matching set stored either way; the source
frames are computed at conversion time and stay float32).

Real speech (../shared/data/timit) when it is there, speech-like audio otherwise; the tiny
random-weight WavLM. ``fp16_error`` also gave the figures of docs/throughput.md, with the
WavLM-Large architecture (6 layers, random weights) on TIMIT.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from corpora_fakes import speechlike
from knnvc_helpers import one_torch_thread, tiny_wavlm  # noqa: F401 (autouse fixture)
from voxanon.audio import Audio, load_16k
from voxanon.data.features import load_scp, write_shard
from voxanon.data.kaldi import load_data_dir, resolve_wav
from voxanon.features.wavlm import WavLM, extract_layer

TIMIT = Path(__file__).resolve().parents[2] / "shared" / "data" / "timit"


def speech(n_targets: int = 3, utts_per_target: int = 3, queries: int = 4) -> tuple[list[list[Audio]], list[Audio]]:
    """Audio of ``n_targets`` target speakers and ``queries`` source utterances of other speakers."""
    if (TIMIT / "wav.scp").is_file():
        data = load_data_dir(TIMIT)
        spks = list(data.spk2utt.values())
        read = lambda u: load_16k(resolve_wav(data, u), data.path)  # noqa: E731
        targets = [[read(u) for u in utts[:utts_per_target]] for utts in spks[:n_targets]]
        return targets, [read(utts[0]) for utts in spks[n_targets:n_targets + queries]]
    targets = [[Audio(speechlike(2.0, 10 * t + i), 16000) for i in range(utts_per_target)] for t in range(n_targets)]
    return targets, [Audio(speechlike(1.5, 100 + q), 16000) for q in range(queries)]


def knn(query: torch.Tensor, pool: torch.Tensor, k: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """kNN-VC's match: the mean of the k cosine-nearest pool frames, and their indices."""
    sim = torch.nn.functional.normalize(query, dim=1) @ torch.nn.functional.normalize(pool, dim=1).T
    idx = sim.topk(k, dim=1).indices
    return pool[idx].mean(dim=1), idx.sort(dim=1).values


def fp16_error(model: WavLM, targets: list[list[Audio]], queries: list[Audio], tmp: Path) -> dict[str, float]:
    """Errors of float16-stored features (written and read back as stage 2 does) against float32."""
    layer = min(6, model.num_layers)
    pools = {f"t{t}-{i}": extract_layer(model, a, layer) for t, utts in enumerate(targets) for i, a in enumerate(utts)}
    back = {u: np.asarray(m, np.float32) for u, m in
            load_scp(write_shard(tmp, "feats", 1, pools.items(), dtype="float16")).items()}
    f32 = np.concatenate(list(pools.values()))
    f16 = np.concatenate([back[u] for u in pools])
    big = np.abs(f32) > 1e-3
    frame_rel = np.linalg.norm(f16 - f32, axis=1) / np.linalg.norm(f32, axis=1)
    query_feats = [torch.from_numpy(extract_layer(model, a, layer)) for a in queries]
    out_rel, changed, frames = [], 0, 0
    for t in range(len(targets)):
        p32 = torch.from_numpy(np.concatenate([pools[f"t{t}-{i}"] for i in range(len(targets[t]))]))
        p16 = torch.from_numpy(np.concatenate([back[f"t{t}-{i}"] for i in range(len(targets[t]))]))
        for q in query_feats:
            (y32, i32), (y16, i16) = knn(q, p32), knn(q, p16)
            out_rel.append(((y16 - y32).norm(dim=1) / y32.norm(dim=1)).numpy())
            changed += int((i32 != i16).any(dim=1).sum())
            frames += len(q)
    out = np.concatenate(out_rel)
    return {"feature_max_rel": float(np.max(np.abs(f16 - f32)[big] / np.abs(f32)[big])),
            "feature_frame_rel_mean": float(frame_rel.mean()),
            "knn_out_rel_mean": float(out.mean()), "knn_out_rel_max": float(out.max()),
            "knn_changed_share": changed / frames}


def test_float16_storage_error_against_float32(tmp_path):
    targets, queries = speech()
    err = fp16_error(tiny_wavlm(), targets, queries, tmp_path)
    assert err["feature_max_rel"] <= 2.0 ** -11  # round to nearest: half an ulp of an 11-bit significand
    assert err["feature_frame_rel_mean"] < 3e-4
    assert err["knn_out_rel_mean"] < 1e-3 and err["knn_changed_share"] < 0.05

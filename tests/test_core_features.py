import numpy as np

from voxanon.data.features import combine_scps, load_scp, read_scp, write_shard


def test_shards_atomic_and_readable(tmp_path):
    rng = np.random.default_rng(0)
    mats = {f"u{i}": rng.standard_normal((5 + i, 8)).astype(np.float32) for i in range(4)}
    scp1 = write_shard(tmp_path, "feats", 1, [(k, mats[k]) for k in ("u2", "u3")])
    scp2 = write_shard(tmp_path, "feats", 2, [(k, mats[k]) for k in ("u0", "u1")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feats.1.ark", "feats.1.scp", "feats.2.ark", "feats.2.scp"]
    combine_scps([scp1, scp2], tmp_path / "feats.scp")
    assert [u for u, _ in read_scp(tmp_path / "feats.scp")] == ["u0", "u1", "u2", "u3"]
    loader = load_scp(tmp_path / "feats.scp")
    for k, m in mats.items():
        np.testing.assert_array_equal(loader[k], m)

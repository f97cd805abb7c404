import numpy as np
import pytest

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


def test_float16_shards_half_the_size_within_half_an_ulp(tmp_path):
    rng = np.random.default_rng(1)
    mat = (rng.standard_normal((50, 64)) * 10).astype(np.float32)
    write_shard(tmp_path / "f32", "feats", 1, [("u", mat)])
    scp = write_shard(tmp_path / "f16", "feats", 1, [("u", mat)], dtype="float16")
    back = load_scp(scp)["u"]
    assert back.dtype == np.float16 and back.shape == mat.shape
    assert np.max(np.abs(back.astype(np.float32) - mat) / np.abs(mat)) <= 2.0 ** -11
    size = lambda d: (tmp_path / d / "feats.1.ark").stat().st_size  # noqa: E731
    assert size("f16") < 0.55 * size("f32")
    with pytest.raises(ValueError, match="beyond float16's range"):
        write_shard(tmp_path / "big", "feats", 1, [("u", np.full((2, 2), 1e5, np.float32))], dtype="float16")
    with pytest.raises(ValueError, match="dtype must be one of float32, float16"):
        write_shard(tmp_path / "bad", "feats", 1, [], dtype="int8")

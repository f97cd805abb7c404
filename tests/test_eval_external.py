"""Evaluating audio another tool anonymized: VPC-layout dirs ``data/<set><suffix>`` next to the
originals, a conf that only names the suffix, ``./run.sh --stage 6 --stop-stage 8`` (no seed, no
stage 5)."""
import os
import re
import shutil
import subprocess


from conftest import link_recipe
from voxanon.testing.datadirs import make_dir


def test_stages_6_to_8_score_dirs_made_elsewhere(tmp_path):
    top = link_recipe(tmp_path / "recipe")
    data = top / "data"
    make_dir(data / "ext_train", n_spk=4, n_utt=4, n_enroll=0)
    make_dir(data / "ext_trials", n_spk=4, n_utt=5, n_enroll=2, spk_offset=10)
    for name in ("ext_train", "ext_trials"):  # the other tool's output: same ids, its own audio files
        shutil.copytree(data / name, data / f"{name}_b1")
    (top / "b1.yaml").write_text(
        "conf: conf/base/mini.yaml\n"
        "exp: ext_b1\n"
        "data: {eval_sets: [ext_trials], asv_train_set: ext_train}\n"
        "anonymizer: {suffix: _b1}\n"
        "asv: {channels: 32, attention_channels: 16, emb_dim: 24, epochs: 1, batch_size: 8, chunk_s: 1.0,\n"
        "      features: precomputed}\n"
        "eval: {metrics: [asv]}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXANON_")}
    proc = subprocess.run(["./run.sh", "--nj", "1", "--conf", "b1.yaml", "--stage", "6", "--stop-stage", "8"],
                          cwd=top, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "no anonymizer.seed" not in proc.stderr
    results = top / "exp" / "ext_b1" / "results"
    rank = (results / "result_for_rank_b1").read_text()
    # the VPC layout: ASV_eval (original) and ASV_eval^anon blocks, the set split into dataset / split
    assert re.search(r"ext\s+trials\s+_\s+original\s+original\s+\d+\.\d+", rank), rank
    assert re.search(r"ext\s+trials\s+_\s+anon\s+anon\s+\d+\.\d+", rank), rank
    assert (top / "exp" / "ext_b1" / "asv_anon" / "embedding_model.ckpt").is_file()

"""bench/gpu_check.sh runs end to end without CUDA (tiny models on the CPU), so the one-shot GPU
check cannot rot before a GPU is at hand; it writes to a temporary dir, not bench/results."""
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_on_cpu_into_a_temp_dir():
    before = set((ROOT / "bench" / "results").iterdir())
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(ROOT / "bench" / "gpu_check.sh")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = Path(re.search(r"wrote (\S+)\.md", proc.stdout).group(1))
    assert out.parent.parent == Path(tempfile.gettempdir()) and out.name == "gpu_cpu"
    assert set((ROOT / "bench" / "results").iterdir()) == before
    res, md = json.loads(out.with_suffix(".json").read_text()), out.with_suffix(".md").read_text()
    shutil.rmtree(out.parent)
    assert res["errors"] == {} and res["sizes"] == "tiny"
    assert [r["batch_size"] for r in res["knnvc"]["rows"]] == [1, 2]
    assert all(r["rtf"] > 0 for r in res["knnvc"]["rows"]) and res["knnvc"]["features_audio_s_per_s"] > 0
    cap = res["capped"]
    assert cap["all_converted"] and cap["cap_gib"] is None and cap["max_abs_diff_vs_uncapped"] <= 1e-4
    assert [r["batch_size"] for r in res["whisper"]["rows"]] == [1, 2]
    assert all(r["decode_tokens_s"] > 0 for r in res["whisper"]["rows"])
    assert res["converter"]["rows"][0]["steps_s"] > 0 and res["asv"]["train"]["rows_s"] > 0
    assert res["asv"]["trials_scored"] == 4 and res["utility"]["asr_audio_s_per_s"] > 0
    hours = {int(n): h for n, h in res["projection"]["hours"].items()}
    # more devices shorten the sharded stages; ASV training is one job whatever the count
    assert hours[16]["5 anonymize"] < hours[1]["5 anonymize"] and hours[16]["total"] < hours[1]["total"]
    assert hours[16]["6 ASV training"] == hours[1]["6 ASV training"]
    for heading in ("## kNN-VC", "## Memory cap", "## Whisper batched", "## Converter", "## ASV", "## A VPC 2024"):
        assert heading in md

"""Time the embedded default end to end as a new user meets it: ``./run.sh`` in a fresh clone.

  python bench/mini_e2e.py [--data DIR] [--conf conf/mini.yaml] [--keep] [--out bench/results/mini_e2e.md]

The committed HEAD is cloned into a temp dir with nothing cached (no data, exp, models/); only
this checkout's ``.venv`` is linked in ("after setup"). ``--keep`` keeps the clone to look at.
Target: at most 5 minutes on 2 quiet CPU cores after setup. Gives the wall time of each
stage (from run.sh's stage lines), the whole run's wall time, and the CPU time of all its
processes: on a shared machine the wall clock also measures the neighbours, so CPU time / cores
is the better estimate of the time on a dedicated machine (lower bound: it assumes both cores
are kept busy). Also writes the same figures as JSON next to the .md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \(run\.sh\) Stage (\d) \((\w+)\)")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="pass --data DIR to run.sh")
    p.add_argument("--conf", default="conf/mini.yaml")
    p.add_argument("--keep", action="store_true", help="keep the clone")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="voxanon-mini-"))
    clone = work / "voxanon"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    (clone / ".venv").symlink_to(ROOT / ".venv")
    name = "mini_e2e" + (f"_{Path(args.data).resolve().name}" if args.data else "")
    out = args.out or ROOT / "bench" / "results" / f"{name}.md"
    cmd = ["./run.sh", "--conf", args.conf, *(["--data", str(Path(args.data).resolve())] if args.data else [])]
    load_before = os.getloadavg()
    start = time.time()
    stages: list[tuple[int, str, float]] = []
    proc = subprocess.Popen(cmd, cwd=clone, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        sys.stdout.write(line)
        m = STAGE_LINE.match(line)
        if m:
            stages.append((int(m[2]), m[3], datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S").timestamp()))
    rc = proc.wait()
    end = time.time()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    bounds = [s[2] for s in stages] + [end]
    per_stage = {f"{n} {stage}": round(bounds[i + 1] - t, 1) for i, (n, stage, t) in enumerate(stages)}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip()
    result = {"command": " ".join(cmd) + " (fresh clone)", "commit": commit, "exit_status": rc, "wall_s": round(end - start, 1),
              "cpu_s": round(cpu, 1), "cpu_s_per_core": round(cpu / (os.cpu_count() or 1), 1),
              "stages_wall_s": per_stage, "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "machine": machine(), "date": datetime.now().isoformat(timespec="seconds")}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# {name}: `{result['command']}`", "",
             f"Commit {commit}. Machine: {result['machine']}; load average before {load_before[0]:.1f}, after "
             f"{result['load_average_after'][0]:.1f} ({result['date']}). Exit status {rc}.", "",
             f"Wall: **{result['wall_s']:.0f} s**; CPU time of all processes: {result['cpu_s']:.0f} s "
             f"= {result['cpu_s_per_core']:.0f} s per core (the dedicated-machine estimate).", "",
             "| stage | wall s |", "|---|---|", *[f"| {k} | {v} |" for k, v in per_stage.items()], ""]
    for rank in sorted(clone.glob("exp/*/results/result_for_rank*")):
        lines += [f"Results ({rank.relative_to(clone)}):", "", "```", rank.read_text().rstrip(), "```", ""]
    out.write_text("\n".join(lines))
    print(f"wrote {out}")
    if args.keep:
        print(f"the clone is kept in {clone}")
    else:
        shutil.rmtree(work)
    return rc


if __name__ == "__main__":
    sys.exit(main())

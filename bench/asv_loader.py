"""Stage 6's data loader: training rows per second when each row decodes its whole file (before)
and when it decodes only its crops (now), against the ECAPA-TDNN's own step rate.

  OMP_NUM_THREADS=1 python bench/asv_loader.py [--utts 200] [--seconds 12] [--rows 600]

Files like train-clean-360's: ../shared/data/libri100 segments of one speaker joined to about
``--seconds`` s (12 s: the mean train-clean-360 utterance), 16-bit FLAC; rows of 3 s in the
epoch plan's order (voxanon.eval.asv_train), one process, no model (the loader alone). Every row
of both paths is compared: the same samples. The model step (ECAPA-TDNN 512, batch 16) is
bench/eval_bench.py's. Writes bench/results/asv_loader.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

import eval_bench
from voxanon.data.kaldi import load_data_dir

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
VPC_ROWS = 10 * 3.7 * 104_014  # stage 6 of a VPC 2024 row: 10 epochs of 3.7 rows per train-clean-360 utterance


def long_files(out: Path, n_utts: int, seconds: float) -> Path:
    """A data dir of ``n_utts`` FLAC files, each libri100 segments of one speaker joined to ``seconds``."""
    src = load_data_dir(SHARED / "libri100")
    segs = [src.audio(u).samples for u in src.utts]
    (out / "wav").mkdir(parents=True, exist_ok=True)
    scp, spk = [], []
    for i in range(n_utts):
        parts, total, j = [], 0, i
        while total < seconds * 16000:
            parts.append(segs[j % len(segs)])
            total, j = total + len(parts[-1]), j + n_utts
        path = out / "wav" / f"u{i:04d}.flac"
        sf.write(path, np.concatenate(parts)[:int(seconds * 16000)], 16000, format="FLAC", subtype="PCM_16")
        scp.append(f"u{i:04d} {path}\n")
        spk.append(f"u{i:04d} s{i % 20:02d}\n")
    (out / "wav.scp").write_text("".join(scp))
    (out / "utt2spk").write_text("".join(spk))
    return out


def loader_rates(data_dir: Path, rows: int) -> dict:
    from voxanon.eval.asv_train import ChunkSet, count_rows, epoch_plan

    data = load_data_dir(data_dir)
    counted = count_rows(data, data.utts, 3 * 16000, 5e-4, False)
    row_utts = [i for i, u in enumerate(data.utts) for _ in range(counted[u][0])]
    spk = {s: i for i, s in enumerate(sorted(set(data.utt2spk.values())))}
    samples = {u: n for u, (_, n) in counted.items()}
    sets = {"whole file per row (before)": ChunkSet(data, data.utts, spk, 3 * 16000, None, False),
            "crops only (now)": ChunkSet(data, data.utts, spk, 3 * 16000, None, False, samples=samples)}
    plan = epoch_plan(row_utts, 1986, 0)[:rows]
    out, items = {}, {}
    for name, chunks in sets.items():
        chunks.plan = plan
        start = time.perf_counter(), time.process_time()
        items[name] = [chunks[i][0].numpy() for i in range(len(plan))]
        wall, cpu = time.perf_counter() - start[0], time.process_time() - start[1]
        out[name] = {"rows_per_s": len(plan) / wall, "rows_per_cpu_s": len(plan) / cpu}
    before, now = items.values()
    same = all(np.array_equal(a, b) for a, b in zip(before, now))
    return {"rates": out, "rows": len(plan), "rows_per_utt": len(row_utts) / len(data.utts), "same_samples": same}


def markdown(res: dict) -> str:
    rates, step = res["loader"]["rates"], res["model_rows_per_s"]
    lines = ["# Stage 6 data loader: rows per second (cpu)", "",
             f"`OMP_NUM_THREADS=1 python bench/asv_loader.py --utts {res['utts']} --seconds {res['seconds']:g} "
             f"--rows {res['loader']['rows']}`, {platform.machine()}, {os.cpu_count()} cores shared with other work, "
             f"Python {platform.python_version()}.", "",
             f"{res['utts']} FLAC files of {res['seconds']:g} s (libri100 segments joined: the mean train-clean-360 "
             f"length), {res['loader']['rows_per_utt']:.1f} rows of 3 s per file, {res['loader']['rows']} rows in the "
             "epoch plan's order, one process, the loader alone. Same samples in every row: "
             f"{'yes' if res['loader']['same_samples'] else 'NO'} (so the batches and losses are those of before).", "",
             "| loader | rows/s (wall) | rows per CPU-second | VPC 2024 stage 6 on one loader process (h) |",
             "|---|---|---|---|"]
    for name, r in rates.items():
        lines.append(f"| {name} | {r['rows_per_s']:.0f} | {r['rows_per_cpu_s']:.0f} | "
                     f"{VPC_ROWS / r['rows_per_cpu_s'] / 3600:.1f} |")
    gain = rates["crops only (now)"]["rows_per_cpu_s"] / rates["whole file per row (before)"]["rows_per_cpu_s"]
    lines += ["", f"The ECAPA-TDNN 512 training step on this CPU (bench/eval_bench.py, batch 16): {step:.1f} rows/s, "
              f"so {VPC_ROWS / step / 3600:,.0f} h for the {VPC_ROWS / 1e6:.2f} M rows of a VPC 2024 stage 6 "
              "(10 epochs): here the model, not the loader, sets the pace. On a GPU that trains thousands of rows "
              f"per second the loader does: decoding only the crops gives {gain:.1f}x the rows per CPU-second, "
              f"so the {VPC_ROWS / 1e6:.2f} M rows need {VPC_ROWS / rates['crops only (now)']['rows_per_cpu_s'] / 3600:.1f} "
              "CPU-hours of loading instead of "
              f"{VPC_ROWS / rates['whole file per row (before)']['rows_per_cpu_s'] / 3600:.1f} "
              "(`asv.num_workers` processes share them).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--utts", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--rows", type=int, default=600)
    args = ap.parse_args(argv)
    if not (SHARED / "libri100").is_dir():
        raise SystemExit(f"{SHARED / 'libri100'}: the real-speech sets are not here")
    with tempfile.TemporaryDirectory() as tmp:
        loader = loader_rates(long_files(Path(tmp) / "d", args.utts, args.seconds), args.rows)
    step, _ = eval_bench.bench_training(512, 16, 2, "cpu")
    res = {"utts": args.utts, "seconds": args.seconds, "loader": loader, "model_rows_per_s": step}
    out = ROOT / "bench" / "results"
    (out / "asv_loader.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "asv_loader.md").write_text(markdown(res))
    print(markdown(res))
    return 0 if loader["same_samples"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

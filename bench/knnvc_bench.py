"""kNN-VC speed and memory: the blocked matcher against a plain full-matrix cosine + top-k, and the
real-time factor of WavLM-Large to layer 6, the matcher and the HiFi-GAN vocoder (random weights;
speed does not depend on them).

  python bench/knnvc_bench.py [--device cpu|cuda] [--pools 15000,100000,1000000] [--full-max-pool N] [--threads N]

Writes bench/results/knnvc_<device>[_t<threads>].md and .json with the machine described. Each matcher
measurement runs in a fresh process so its peak memory is its own: CPU peak = max RSS growth over
the process after the pool exists; GPU peak = torch.cuda.max_memory_allocated beyond the pool.
Queries: 10 s of speech = 500 frames of 1024-d. The full-matrix baseline needs the (500, N)
similarity matrix plus a normalized copy of the pool (4 GB per million frames), so it is only
run up to --full-max-pool frames; above that the estimate is reported instead.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "pyscripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

DIM, QUERY_FRAMES = 1024, 500


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def full_matrix(query: torch.Tensor, pool: torch.Tensor, k: int) -> torch.Tensor:
    """The plain way: normalize everything, one (T, N) similarity matrix, top-k, mean."""
    q = torch.nn.functional.normalize(query, dim=1)
    p = torch.nn.functional.normalize(pool, dim=1)
    idx = (q @ p.T).topk(k, dim=1).indices
    return pool[idx].mean(dim=1)


def _matcher_child(method: str, n: int, device: str, threads: int, out: mp.Queue) -> None:
    from voxanon.knn.matcher import knn_average

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    pool = torch.randn(n, DIM, device=device)
    query = torch.randn(QUERY_FRAMES, DIM, device=device)
    fn = (lambda: knn_average(query, pool, 4)) if method == "blocked" else (lambda: full_matrix(query, pool, 4))
    if device.startswith("cuda"):
        fn()  # warm-up (kernels, cuBLAS workspace)
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = current_rss_mb()
    times = []
    for _ in range(3):
        t = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    if device.startswith("cuda"):
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = rss_mb() - base
    out.put({"method": method, "pool": n, "seconds": min(times), "peak_extra_mb": round(peak, 1),
             "pool_mb": round(n * DIM * 4 / 2**20, 1)})


def run_matcher(method: str, n: int, device: str, threads: int) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_matcher_child, args=(method, n, device, threads, q))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        return {"method": method, "pool": n, "error": f"process exited with {proc.exitcode} (out of memory?)"}
    return q.get()


def rtf(device: str, seconds: float = 10.0) -> list[dict]:
    from voxanon.audio import Audio
    from voxanon.features.wavlm import extract_layer, load_wavlm
    from voxanon.knn.matcher import knn_average
    from voxanon.vocoder.hifigan import load_generator, vocode

    torch.manual_seed(0)
    audio = Audio((0.1 * np.random.default_rng(0).standard_normal(int(seconds * 16000))).astype(np.float32), 16000)
    wavlm = load_wavlm(None, device, max_layer=6)
    vocoder = load_generator(None, device)
    pool = torch.randn(15000, DIM, device=device)  # 5 min of target speech
    feats = torch.from_numpy(extract_layer(wavlm, audio, 6)).to(device)  # warm-up
    steps = {
        "WavLM-Large to layer 6": lambda: extract_layer(wavlm, audio, 6),
        "matcher (k=4, 5 min pool)": lambda: knn_average(feats, pool, 4),
        "HiFi-GAN vocoder (+ loudness)": lambda: vocode(vocoder, feats),
    }
    rows = []
    for name, fn in steps.items():
        fn()
        times = []
        for _ in range(2):
            t = time.perf_counter()
            fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        rows.append({"step": name, "seconds": round(min(times), 3), "rtf": round(min(times) / seconds, 4)})
    return rows


def machine(device: str) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    desc = (f"{platform.node()}: {cpu}, {os.cpu_count()} cores visible, torch threads {torch.get_num_threads()}, "
            f"{mem:.0f} GiB RAM; Python {platform.python_version()}, torch {torch.__version__}")
    if device.startswith("cuda"):
        desc += f"; GPU {torch.cuda.get_device_name(device)}"
    return desc


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--pools", default="15000,100000,1000000")
    p.add_argument("--full-max-pool", type=int, default=100000,
                   help="largest pool for the full-matrix baseline (it needs ~2 x pool + T x N floats)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default); results get a _t<N> suffix")
    p.add_argument("--skip-rtf", action="store_true")
    p.add_argument("--note", default="", help="a line about the conditions (shared machine, load...)")
    args = p.parse_args()
    pools = [int(x) for x in args.pools.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for n in pools:
        for method in ("blocked", "full"):
            if method == "full" and n > args.full_max_pool:
                est = (n * DIM * 4 + QUERY_FRAMES * n * 4 * 2) / 2**20
                rows.append({"method": method, "pool": n, "skipped": f"not run: needs ~{est:,.0f} MB beyond the pool"})
                continue
            print(f"matcher {method} pool {n} on {args.device}", flush=True)
            rows.append(run_matcher(method, n, args.device, args.threads))
            print(rows[-1], flush=True)
    steps = [] if args.skip_rtf else rtf(args.device)
    result = {"device": args.device, "machine": machine(args.device), "note": args.note, "matcher": rows, "rtf": steps}
    suffix = f"_t{args.threads}" if args.threads else ""
    out = ROOT / "bench" / "results" / f"knnvc_{args.device.split(':')[0]}{suffix}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# kNN-VC bench ({args.device})", "", f"Machine: {result['machine']}", ""]
    if args.note:
        lines += [f"Conditions: {args.note}", ""]
    lines += ["## Matcher: 500 query frames (10 s), 1024-d, k = 4", "",
              "| pool frames | pool MB | method | seconds | peak extra MB |", "|---|---|---|---|---|"]
    for r in rows:
        if "seconds" in r:
            lines.append(f"| {r['pool']:,} | {r['pool_mb']:,} | {r['method']} | {r['seconds']:.3f} | {r['peak_extra_mb']:,} |")
        else:
            lines.append(f"| {r['pool']:,} | {r['pool'] * DIM * 4 / 2**20:,.1f} | {r['method']} | - | {r.get('skipped') or r.get('error')} |")
    if steps:
        lines += ["", "## Real-time factor on 10 s of audio (random weights)", "", "| step | seconds | RTF |", "|---|---|---|"]
        lines += [f"| {s['step']} | {s['seconds']} | {s['rtf']} |" for s in steps]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

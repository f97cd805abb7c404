"""kNN-VC speed and memory: the blocked matcher against a plain full-matrix cosine + top-k, and the
real-time factor of WavLM-Large to layer 6, the matcher and the HiFi-GAN vocoder (random weights;
speed does not depend on them).

  python bench/knnvc_bench.py [--device cpu|cuda] [--pools 15000,100000,1000000] [--full-max-pool N] [--threads N]
                              [--precisions float32,bfloat16,float16] [--runner N --baseline TREE]

``--precisions``: each stage in half precision against float32 on 10 s of real speech
(``../shared/data/libri100`` when present): the layer-6 feature error, the kNN index agreement
with a matching set of 1 min of other speakers' speech, the vocoder output's SNR against the
float32 output (same matched features, and end to end), and each stage's time.
``--runner N``: the anonymize runner on N utterances of 10 s with a 15k-frame matching set,
batched (default batch_size) and one at a time, against the runner of an older checkout
(``--baseline``: its root, e.g. ``git archive 13a8f6b pyscripts | tar -x -C /tmp/old``): wall and
CPU seconds, and the largest difference of their output wavs.

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

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
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


def speech(seconds: float, skip: int = 0) -> np.ndarray:
    """``seconds`` of real speech from ../shared/data/libri100 (segments joined, from the
    ``skip``-th on), else generated noise."""
    from voxanon.audio import load_16k
    from voxanon.data.kaldi import load_data_dir

    root = ROOT.parent / "shared" / "data" / "libri100"
    need = int(seconds * 16000)
    if not (root / "wav.scp").is_file():
        return (0.1 * np.random.default_rng(skip).standard_normal(need)).astype(np.float32)
    data, parts, have = load_data_dir(root), [], 0
    for utt in data.utts[skip:]:
        parts.append(load_16k(data.wav_scp[utt], data.path).samples)
        have += len(parts[-1])
        if have >= need:
            break
    return np.concatenate(parts)[:need].astype(np.float32)


def snr_db(ref: np.ndarray, out: np.ndarray) -> float:
    return round(float(10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - out) ** 2), 1e-30))), 1)


def precision_errors(device: str, precisions: list[str], seconds: float = 10.0) -> list[dict]:
    from voxanon.anonymize.base import autocast
    from voxanon.audio import Audio
    from voxanon.features.wavlm import extract_tensors, load_wavlm
    from voxanon.knn.matcher import knn_average, knn_indices
    from voxanon.vocoder.hifigan import load_generator, vocode

    torch.manual_seed(0)
    wavlm, vocoder = load_wavlm(None, device, max_layer=6), load_generator(None, device)
    audio, pool_audio = Audio(speech(seconds), 16000), Audio(speech(60.0, skip=40), 16000)
    pool = extract_tensors(wavlm, [pool_audio], 6)[0]

    def timed(fn):
        fn()  # warm-up
        t = time.perf_counter()
        out = fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return out, round(time.perf_counter() - t, 3)

    rows, ref = [], {}
    for prec in precisions:
        dtype = getattr(torch, prec)
        with autocast(device, prec):
            feats, t_wavlm = timed(lambda: extract_tensors(wavlm, [audio], 6)[0])
        idx, t_match = timed(lambda: knn_indices(feats, pool, 4, dtype=dtype))
        row = {"precision": prec, "wavlm_s": t_wavlm, "matcher_s": t_match}
        if prec == "float32":
            ref = {"feats": feats, "idx": idx, "matched": knn_average(feats, pool, 4)}
        exact_idx = knn_indices(ref["feats"], pool, 4)
        half_idx = knn_indices(ref["feats"], pool, 4, dtype=dtype)
        row["feature_rel_error"] = float((feats - ref["feats"]).norm() / ref["feats"].norm())
        row["knn_top1_agree"] = float((half_idx[:, 0] == exact_idx[:, 0]).float().mean())
        row["knn_top1_agree_end_to_end"] = float((idx[:, 0] == ref["idx"][:, 0]).float().mean())
        row["knn_set_overlap"] = float(np.mean([len(set(a.tolist()) & set(b.tolist())) / 4
                                                for a, b in zip(half_idx, exact_idx)]))
        if prec == "float16" and device == "cpu":
            row["vocoder"] = "not run: float16 convolutions on the CPU take minutes per second of audio"
        else:
            with autocast(device, prec):
                wav, t_voc = timed(lambda: vocode(vocoder, ref["matched"], None).samples)
                e2e = vocode(vocoder, knn_average(feats, pool, 4, dtype=dtype), None).samples
            row["vocoder_s"] = t_voc
            if prec == "float32":
                ref["wav"] = wav
            row["vocoder_snr_db"], row["end_to_end_snr_db"] = snr_db(ref["wav"], wav), snr_db(ref["wav"], e2e)
        rows.append(row)
        print(row, flush=True)
    return rows


def fake_matching_sets(dest: Path, wavlm_path: Path, frames: int = 15000, speakers: int = 1, dim: int = DIM) -> Path:
    """A matching-set dir (stage 3's layout: an index of stage-2 features in ``dest/feats``) of
    ``speakers`` random sets of ``frames`` frames of ``dim`` values each (5 min: 15k)."""
    from voxanon.config import fingerprint
    from voxanon.data.features import combine_scps, write_shard

    feats, sets = dest / "feats", dest / "sets"
    sets.mkdir(parents=True)
    rng = np.random.default_rng(0)
    scp = write_shard(feats, "wavlm", 1, ((f"t{i}-u", rng.standard_normal((frames, dim)).astype(np.float32))
                                          for i in range(speakers)))
    combine_scps([scp], feats / "feats.scp")
    wavlm = {"checkpoint": str(wavlm_path), "layer": 6}
    (feats / ".wavlm.json").write_text(json.dumps(wavlm))
    (sets / "spk2utt").write_text("".join(f"t{i} t{i}-u\n" for i in range(speakers)))
    (sets / "speakers.tsv").write_text("".join(f"t{i}\tf\t{frames / 3000:.3f}\t1\t{frames}\n" for i in range(speakers)))
    (sets / ".targets.json").write_text(json.dumps({"features": str(feats), "wavlm": wavlm,
                                                    "feats_key": fingerprint((feats / "feats.scp").read_text())}))
    return sets


def runner_compare(n: int, baseline: str, threads: int) -> dict:
    """The CPU target for batching (1.5x): today's batched runner vs one at a time vs an older
    checkout."""
    import subprocess
    import tempfile

    import soundfile as sf

    from voxanon.data.kaldi import DataDir, write_data_dir
    from voxanon.features.wavlm import WavLM, WavLMConfig, save_wavlm
    from voxanon.vocoder.hifigan import Generator, save_generator

    work = Path(tempfile.mkdtemp(prefix="knnvc_runner_"))
    torch.manual_seed(0)
    save_wavlm(WavLM(WavLMConfig(encoder_layers=6)).eval(), work / "wavlm.pt")
    save_generator(Generator().eval(), work / "vocoder.pt")
    sets = fake_matching_sets(work / "sets", work / "wavlm.pt")
    (work / "wavs").mkdir()
    wav_scp = {}
    for i in range(n):
        sf.write(work / "wavs" / f"u{i}.wav", speech(10.0, skip=3 * i), 16000)
        wav_scp[f"u{i}"] = str(work / "wavs" / f"u{i}.wav")
    write_data_dir(DataDir(wav_scp, {u: "src" for u in wav_scp}), work / "src")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads or os.cpu_count())}
    runs = {"older checkout (one at a time)": (baseline, {}), "batched (default batch_size 16)": (str(ROOT), {}),
            "this checkout, batch_size 1": (str(ROOT), {"batch_size": 1}),
            "batched, vocoder_precision bfloat16": (str(ROOT), {"vocoder_precision": "bfloat16"})}
    rows, wavs = [], {}
    for name, (tree, extra) in runs.items():
        conf = work / f"{len(rows)}.yaml"
        params = {"matching_sets": str(sets), "vocoder": str(work / "vocoder.pt"), **extra}
        conf.write_text(json.dumps({"exp": "b", "anonymizer": {"system": "knnvc", "seed": 3, "device": "cpu",
                                                                "params": params}}))
        out = work / f"out{len(rows)}"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        cli = (Path(tree) / "pyscripts" / "voxanon" / "bin" / "anonymize.py").read_text()
        step = ["job"] if "add_subparsers" in cli else []  # checkouts before the runner's steps took flags
        proc = subprocess.run([sys.executable, "-m", "voxanon.bin.anonymize", *step, "--conf", str(conf), "--record-dir",
                               str(work / f"rec{len(rows)}"), str(work / "src"), str(out)],
                              env={**env, "PYTHONPATH": str(Path(tree) / "pyscripts")}, capture_output=True, text=True)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise RuntimeError(f"{name}: {proc.stderr[-2000:]}")
        wavs[name] = [sf.read(out / "wav" / f"u{i}.wav")[0] for i in range(n)]
        rows.append({"run": name, "wall_s": round(wall, 1), "cpu_s": round(after.ru_utime + after.ru_stime
                                                                           - before.ru_utime - before.ru_stime, 1),
                     "load_avg": os.getloadavg()[0]})
        print(rows[-1], flush=True)
    first = wavs[rows[0]["run"]]
    for r in rows:
        r["max_diff_vs_older"] = float(max(np.abs(a - b).max() for a, b in zip(first, wavs[r["run"]])))
    return {"utterances": n, "seconds_each": 10.0, "pool_frames": 15000, "rows": rows}


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
    p.add_argument("--skip-matcher", action="store_true")
    p.add_argument("--precisions", default="", help="e.g. float32,bfloat16,float16 (float32 first: the reference)")
    p.add_argument("--runner", type=int, default=0, help="utterances of 10 s for the runner comparison (0: none)")
    p.add_argument("--baseline", default="", help="root of an older checkout for --runner")
    p.add_argument("--note", default="", help="a line about the conditions (shared machine, load...)")
    args = p.parse_args()
    pools = [int(x) for x in args.pools.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for n in [] if args.skip_matcher else pools:
        for method in ("blocked", "full"):
            if method == "full" and n > args.full_max_pool:
                est = (n * DIM * 4 + QUERY_FRAMES * n * 4 * 2) / 2**20
                rows.append({"method": method, "pool": n, "skipped": f"not run: needs ~{est:,.0f} MB beyond the pool"})
                continue
            print(f"matcher {method} pool {n} on {args.device}", flush=True)
            rows.append(run_matcher(method, n, args.device, args.threads))
            print(rows[-1], flush=True)
    steps = [] if args.skip_rtf else rtf(args.device)
    precisions = precision_errors(args.device, args.precisions.split(",")) if args.precisions else []
    runner = runner_compare(args.runner, args.baseline, args.threads) if args.runner else {}
    result = {"device": args.device, "machine": machine(args.device), "note": args.note, "matcher": rows, "rtf": steps,
              "precision": precisions, "runner": runner}
    suffix = f"_t{args.threads}" if args.threads else ""
    suffix += "_precision" if precisions and not rows and not steps else ""
    suffix += "_runner" if runner and not rows and not steps and not precisions else ""
    out = ROOT / "bench" / "results" / f"knnvc_{args.device.split(':')[0]}{suffix}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# kNN-VC bench ({args.device})", "", f"Machine: {result['machine']}", ""]
    if args.note:
        lines += [f"Conditions: {args.note}", ""]
    if rows:
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
    if precisions:
        lines += ["", "## Half precision against float32 (10 s of speech, random weights)", "",
                  "| precision | WavLM s | feature rel. error | kNN top-1 agree (same feats / end to end) | "
                  "k-set overlap | matcher s | vocoder s | vocoder SNR dB | end-to-end SNR dB |", "|---|---|---|---|---|---|---|---|---|"]
        for r in precisions:
            voc = (f"{r['vocoder_s']} | {r['vocoder_snr_db']} | {r['end_to_end_snr_db']}" if "vocoder_s" in r
                   else f"{r['vocoder']} | - | -")
            lines.append(f"| {r['precision']} | {r['wavlm_s']} | {r['feature_rel_error']:.4f} | {r['knn_top1_agree']:.3f} / "
                         f"{r['knn_top1_agree_end_to_end']:.3f} | {r['knn_set_overlap']:.3f} | {r['matcher_s']} | {voc} |")
        lines += ["", "A random-weight vocoder hardly depends on its input (its init gives an output dominated by biases), so the end-to-end SNR shows the vocoder's rounding only; the kNN agreement is what half precision changes in the matched features. Reference row: SNR of float32 against itself."]
    if runner:
        lines += ["", f"## Anonymize runner: {runner['utterances']} utterances of 10 s, 15k-frame matching set", "",
                  "| run | wall s | CPU s | load average after | max |diff| vs older (16-bit wav) |", "|---|---|---|---|---|"]
        lines += [f"| {r['run']} | {r['wall_s']} | {r['cpu_s']} | {r['load_avg']:.1f} | {r['max_diff_vs_older']:.5f} |"
                  for r in runner["rows"]]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

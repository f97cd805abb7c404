"""Converter training speed and memory at the paper's size (ming024 FFT blocks, 4 + 6 layers,
hidden 512, 1024-d WavLM features; ECAPA-TDNN adversary with 512 channels; CTC over 100 units),
and the base with this project's first block setting (ESPnet-style pre-LN, 4 heads, kernels 3/3).

  python bench/converter_bench.py [--device cpu|cuda] [--batch-size 2] [--frames 200] [--steps 5]
                                  [--threads N] [--out bench/results/converter_<device>.md]

For each objective set (base, +adv, +discrete, +adv+discrete): one full training step as stage 4
runs it (forward, backward, separate converter / adversary clipping, Adam; bf16/fp16 autocast on CUDA like
``optim.amp``) on random features of ``--batch-size`` x ``--frames`` (200 frames = 4 s),
after one warm-up step; steps/s (and frames/s) over ``--steps`` steps, and process CPU seconds
per step (less sensitive to other jobs on a shared machine); peak memory: the
process's peak resident memory on CPU (includes Python and torch), ``max_memory_allocated``
on CUDA. Random weights and features: speed does not depend on them.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import torch

from voxanon.config import from_dict
from voxanon.models.config import TrainConfig
from voxanon.models.objectives import ConverterObjectives
from voxanon.models.training import amp_autocast, clip_gradients

ROOT = Path(__file__).resolve().parents[1]
FIRST_BLOCK = {"block": "transformer", "heads": 4, "ffn_kernels": [3, 3], "dropout": 0.1}
VARIANTS = {"base (ID 5)": (False, False, {}), "+adv (ID 6)": (True, False, {}),
            "+discrete (ID 7)": (False, True, {}), "+adv+discrete (ID 8)": (True, True, {}),
            "base, first block setting": (False, False, FIRST_BLOCK)}


def peak_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_step(adv: bool, disc: bool, model_cfg: dict, device: str, b: int, t: int):
    """(model, step): one stage-4 training step (forward, backward, clipping, Adam) on random
    features of ``b`` x ``t`` frames, as ``step()``."""
    cfg = from_dict(TrainConfig, {"model": model_cfg,
                                  "objectives": {"adversary": {"enabled": adv}, "discrete": {"enabled": disc}}})
    torch.manual_seed(0)
    feat_dim = cfg.model.feat_dim
    model = ConverterObjectives(cfg, n_speakers=921, centroids=torch.randn(cfg.objectives.discrete.units, feat_dim))
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, betas=cfg.optim.betas, eps=cfg.optim.eps)
    autocast, fp16 = amp_autocast(device, cfg.optim.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)
    src = torch.randn(b, t, feat_dim, device=device)
    tgt = src + 0.1 * torch.randn_like(src)
    lengths = torch.full((b,), t, device=device)
    speakers = torch.randint(0, 921, (b,), device=device)

    def step():
        with autocast:
            loss, _ = model(src, tgt, lengths, speakers)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        clip_gradients(model, cfg.optim.grad_clip)
        scaler.step(opt)
        scaler.update()

    return model, step


def bench(adv: bool, disc: bool, model_cfg: dict, args) -> dict:
    b, t = args.batch_size, args.frames
    model, step = make_step(adv, disc, model_cfg, args.device, b, t)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(args.device)
    step()  # warm-up
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    sync()
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        step()
    sync()
    rate = args.steps / (time.perf_counter() - start)
    cpu_per_step = (time.process_time() - cpu_start) / args.steps
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return {"params": params, "steps_s": rate, "frames_s": rate * b * t, "cpu_s": cpu_per_step,
            "peak_mb": peak_mb(args.device)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--out")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    kind = "cuda" if args.device.startswith("cuda") else "cpu"
    out = Path(args.out or ROOT / "bench" / "results" / f"converter_{kind}.md")
    if kind == "cuda":
        machine = f"{torch.cuda.get_device_name(args.device)}, torch {torch.__version__}"
    else:
        machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                   f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, "
                   f"load average {os.getloadavg()[0]:.1f} at start (shared machine)")
    rows = []
    for name, (adv, disc, model_cfg) in VARIANTS.items():
        r = bench(adv, disc, model_cfg, args)
        print(f"{name}: {r['steps_s']:.3f} steps/s, peak {r['peak_mb']:.0f} MiB", flush=True)
        rows.append(f"| {name} | {r['params']:.1f} | {r['steps_s']:.3f} | {r['frames_s']:.0f} | {r['cpu_s']:.2f} "
                    f"| {r['peak_mb']:.0f} |")
    text = "\n".join([
        f"# Converter training step at the paper's size ({kind})", "",
        f"Machine: {machine}.",
        f"Batch {args.batch_size} x {args.frames} frames (20 ms), {args.steps} timed steps after 1 warm-up; "
        "forward + backward + separate clipping + Adam" + ("; bf16/fp16 autocast" if kind == "cuda" else "") + ".",
        "Peak memory: " + ("torch.cuda.max_memory_allocated per variant." if kind == "cuda" else
                           "peak resident memory of the process so far (cumulative over the rows, Python included)."),
        "", f"Command: `python bench/converter_bench.py {' '.join(sys.argv[1:])}`".rstrip(), "",
        "CPU s/step: process CPU time per step (all threads), a figure less bent by other load than steps/s.",
        "", "| objectives | parameters (M) | steps/s | frames/s | CPU s/step | peak memory (MiB) |",
        "|---|---|---|---|---|---|",
        *rows, ""])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

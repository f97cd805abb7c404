"""FLOPs per audio second of each stage, the machine's attainable peak, and each stage's
utilization = FLOP rate / peak (random weights of the real architectures; speed does not depend
on them).

  python bench/flops.py [--seconds 10] [--threads N] [--reps 2] [--out bench/results/flops_cpu]

Stages: WavLM-Large to layer 6 (extract_tensors), the kNN matcher (k = 4, a 15k-frame set), the
prematched HiFi-GAN V1 vocoder (vocode, loudness included; float32 and bfloat16 autocast), the
WavLM-conversion converter (4 + 6 FFT blocks, hidden 512: a forward pass and a base training step),
an ECAPA-TDNN 512 training step (3 s rows, AAM-softmax over 921 speakers, Adam), ASV scoring (one
ECAPA embedding), the VPC ASR_eval (wav2vec2-large + CTC head) and SER (wav2vec2-base + pooling +
linear) forward passes. FLOPs: torch.utils.flop_counter.FlopCounterMode (matmuls, convolutions
and attention; CPU attention registered here, torch counts only the GPU kernels); elementwise
ops are not counted. Peak: the best of square float32 / bfloat16 GEMMs, measured before and after
the stages and before each stage (the highest counts); the load of a shared machine changes during the run, so each
stage is also set against a 2048 GEMM timed just before it. Time: the best of ``--reps`` runs after
a warm-up. Split: one profiled run, op self-time in matmul/conv/attention ops ("GEMM") against
the other ops and the time outside any op (Python, framework).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils import flop_counter as fc

from knnvc_bench import machine

ROOT = Path(__file__).resolve().parents[1]
GEMM_OP = re.compile(r"mm_?$|conv|attention|linear|matmul")


def _sdpa(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return fc.sdpa_flop_count(query, key, value)


def _sdpa_backward(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return fc.sdpa_backward_flop_count(grad_out, query, key, value)


def _baddbmm_(self, batch1, batch2, *args, out_shape=None, **kwargs) -> int:
    return fc.bmm_flop(batch1, batch2)


# torch counts only the GPU attention kernels; the CPU one gets the same formulas (on shapes);
# in-place baddbmm_ (WavLM's conv stack accumulates taps with it) counts as its out-of-place twin
CUSTOM_FLOPS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa,
                torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_backward,
                torch.ops.aten.baddbmm_: _baddbmm_}


LOSSES = {
    "WavLM": "the conv stack runs time-major as GEMMs (features/wavlm.py conv_features); what is left "
             "is memory-bound: the first conv (1 input channel, kernel 10: GEMMs with K = 5), LayerNorm "
             "and GELU over 512 channels x 3.2k frames/s, the gated relative position bias (a fresh "
             "(heads, T, T) tensor per layer), and the positional conv's weight norm recomputed per call.",
    "kNN matcher": "one (500 x 15k) GEMM, then passes over the pool and the similarities (norms, scaling, "
                   "the running top-k, the gather of the neighbours) that are memory-bound.",
    "vocoder (float32)": "the convolutions (transposed and dilated, down to 32 channels in the last "
                         "stages) take most of the time; leaky ReLU and the residual adds are memory-bound "
                         "passes over activations of up to 512 channels x 16k samples/s.",
    "vocoder (bfloat16)": "bfloat16 convolutions (this CPU has AVX-512 BF16) run at a much higher GEMM "
                          "rate; leaky ReLU, the adds and the casts (copy_) stay memory-bound.",
    "converter forward": "one utterance gives GEMMs of 500 rows by 512, already near the GEMM rate; the "
                         "padding masks, residual adds and layout copies are what is left.",
    "converter training": "the optimizer: Adam and gradient clipping are memory-bound passes over all "
                          "~40 M parameters per step (batch 1 here; bigger batches amortize them), plus "
                          "dropout masks (bernoulli_).",
    "ECAPA-TDNN training": "BatchNorm, reflection padding (and its backward) and the Fbank front end are "
                           "not GEMMs, and 4 rows make small ones (the VPC batch is 256); reading and "
                           "cropping audio for every row is not in this figure (stage 6 is data-bound).",
    "ASV scoring": "one utterance at a time: convolutions over ~700 frames, BatchNorm and reflection "
                   "padding, and per-utterance Python (the time outside ops).",
    "ASR_eval / SER": "layout copies (copy_) in the conv feature extractor and attention, LayerNorm and "
                      "GELU are memory-bound; in the recipe, ASR batches of 8 sorted by length also compute "
                      "on padding (the VPC's EncoderASR passes no mask), not counted here (one utterance).",
}


def count_flops(fn) -> int:
    with fc.FlopCounterMode(display=False, custom_mapping=CUSTOM_FLOPS) as counter:
        fn()
    return counter.get_total_flops()


def best_time(fn, reps: int) -> float:
    """The best of ``reps`` runs (warm: the FLOP count ran ``fn`` first)."""
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def gemm_peak(dtype: torch.dtype, sizes=(1024, 2048, 3072), reps: int = 3) -> float:
    """Attainable GFLOP/s: the best square GEMM."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        a @ b  # warm-up
        best = max(best, 2 * n ** 3 / best_time(lambda: a @ b, reps) / 1e9)
    return best


def time_split(fn) -> dict:
    """Shares of one profiled run's wall time: GEMM ops, other ops (top 3 named), outside ops."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        fn()
        wall = time.perf_counter() - t
    own = {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}
    gemm = sum(v for k, v in own.items() if GEMM_OP.search(k))
    other = {k: v for k, v in own.items() if not GEMM_OP.search(k)}
    top = sorted(other.items(), key=lambda kv: -kv[1])[:3]
    return {"gemm_s": gemm, "other_s": sum(other.values()), "wall_s": wall,
            "outside_s": max(wall - gemm - sum(other.values()), 0.0),
            "top_other": [(k.removeprefix("aten::"), round(v / wall, 3)) for k, v in top]}


def stages(seconds: float) -> list[tuple[str, str, float, object]]:
    """(name, precision, audio seconds one call processes, fn) for every stage."""
    from speechbrain.lobes.models.ECAPA_TDNN import Classifier  # noqa: F401 (import cost out of the timings)
    from transformers import Wav2Vec2Model

    from converter_bench import make_step
    from eval_bench import make_training_step
    from voxanon.anonymize.base import autocast
    from voxanon.audio import Audio
    from voxanon.eval.asv_model import AsvModel, EcapaShape
    from voxanon.features.wavlm import extract_tensors, load_wavlm
    from voxanon.knn.matcher import knn_average
    from voxanon.models.config import ModelConfig
    from voxanon.models.converter import Converter
    from voxanon.testing.vpc_models import CHARS, EMOTIONS, wav2vec2_config
    from voxanon.vocoder.hifigan import load_generator, vocode

    torch.manual_seed(0)
    samples = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * 16000))).astype(np.float32)
    audio, wav = Audio(samples, 16000), torch.from_numpy(samples)[None]
    wavlm = load_wavlm(None, "cpu", max_layer=6)
    feats = extract_tensors(wavlm, [audio], 6)[0]
    frames = feats.shape[0]
    pool = torch.randn(15000, 1024)
    vocoder = load_generator(None, "cpu")
    converter = Converter(ModelConfig()).eval()
    lengths = torch.tensor([frames])
    _, conv_step = make_step(False, False, {}, "cpu", 1, frames)
    rows = 4
    asv_step = make_training_step(512, rows, "cpu", speakers=921)
    asv = AsvModel(EcapaShape(80, 512, 128, 192)).eval()
    asr, ser = Wav2Vec2Model(wav2vec2_config("large")).eval(), Wav2Vec2Model(wav2vec2_config("base")).eval()
    # the weight-norm parametrization trips FlopCounterMode's module tracker
    for conv in (asr.encoder.pos_conv_embed.conv, ser.encoder.pos_conv_embed.conv,
                 wavlm.encoder.transformer.pos_conv_embed.conv):
        torch.nn.utils.parametrize.remove_parametrizations(conv, "weight")
    asr_head = torch.nn.Sequential(torch.nn.Linear(1024, 1024), torch.nn.LeakyReLU(),
                                   torch.nn.Linear(1024, len(CHARS) + 1), torch.nn.LogSoftmax(-1))
    ser_head = torch.nn.Linear(768, len(EMOTIONS), bias=False)

    def vocode_bf16():
        with autocast("cpu", "bfloat16"):
            vocode(vocoder, feats)

    def infer(fn):
        def run():
            with torch.inference_mode():
                fn()
        return run

    return [
        ("WavLM-Large to layer 6", "float32", seconds, lambda: extract_tensors(wavlm, [audio], 6)),
        ("kNN matcher (k=4, 15k-frame set)", "float32", seconds, lambda: knn_average(feats, pool, 4)),
        ("HiFi-GAN V1 prematch vocoder", "float32", seconds, lambda: vocode(vocoder, feats)),
        ("HiFi-GAN V1 prematch vocoder", "bfloat16", seconds, vocode_bf16),
        ("converter forward (4+6 FFT, 512)", "float32", seconds, infer(lambda: converter(feats[None], lengths))),
        ("converter training step (base)", "float32", seconds, conv_step),
        ("ECAPA-TDNN 512 training step (4 rows of 3 s)", "float32", 3.0 * rows, asv_step),
        ("ASV scoring (ECAPA-TDNN 512 embedding)", "float32", seconds, lambda: asv.embed(samples)),
        ("ASR_eval forward (wav2vec2-large + CTC)", "float32", seconds,
         infer(lambda: asr_head(asr(wav).last_hidden_state))),
        ("SER forward (wav2vec2-base + pooling)", "float32", seconds,
         infer(lambda: ser_head(ser(wav).last_hidden_state.mean(1)))),
    ]


def commit() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return git("rev-parse", "--short", "HEAD") + (" (uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else "")


def measure(args) -> dict:
    peaks = {"float32": gemm_peak(torch.float32), "bfloat16": gemm_peak(torch.bfloat16)}
    print(f"peak GFLOP/s before: {peaks}", flush=True)
    rows = []
    for name, precision, audio_s, fn in stages(args.seconds):
        flops = count_flops(fn)  # also the warm-up
        local = gemm_peak(getattr(torch, precision), sizes=(2048,))  # the load right now
        seconds = best_time(fn, args.reps)
        split = time_split(fn)
        rows.append({"stage": name, "precision": precision, "audio_s": audio_s, "gflop": flops / 1e9,
                     "gflop_per_audio_s": flops / 1e9 / audio_s, "seconds": seconds, "rtf": seconds / audio_s,
                     "gflop_s": flops / 1e9 / seconds, "local_peak": local, **split})
        print({k: rows[-1][k] for k in ("stage", "precision", "gflop_per_audio_s", "seconds", "gflop_s")}, flush=True)
    after = {"float32": gemm_peak(torch.float32), "bfloat16": gemm_peak(torch.bfloat16)}
    print(f"peak GFLOP/s after: {after}", flush=True)
    peak = {k: max([peaks[k], after[k]] + [r["local_peak"] for r in rows if r["precision"] == k]) for k in peaks}
    for r in rows:
        r["utilization"] = r["gflop_s"] / peak[r["precision"]]
        r["local_utilization"] = r["gflop_s"] / r["local_peak"]
        r["gemm_util"] = r["gflop"] / max(r["gemm_s"], 1e-9) / peak[r["precision"]]
    return {"command": "python bench/flops.py " + " ".join(sys.argv[1:]), "commit": commit(),
            "machine": machine("cpu"), "load_average": {"start": args.load_start, "end": os.getloadavg()},
            "peak_gflop_s": {"before": peaks, "after": after, "used": peak}, "stages": rows}


def markdown(res: dict) -> str:
    peak = res["peak_gflop_s"]
    lines = ["# FLOPs per audio second and utilization of the attainable peak (cpu)", "",
             f"Command: `{res['command'].strip()}` at commit {res['commit']}.", "",
             f"Machine: {res['machine']}; load average {res['load_average']['start'][0]:.1f} at the start, "
             f"{res['load_average']['end'][0]:.1f} at the end (a shared machine: other jobs ran too).", "",
             "Attainable peak (best square GEMM, before / after the stages; the highest of these and of the GEMMs "
             f"before each stage is used): float32 {peak['before']['float32']:.0f} / {peak['after']['float32']:.0f}"
             f" -> {peak['used']['float32']:.0f} GFLOP/s, bfloat16 {peak['before']['bfloat16']:.0f} / "
             f"{peak['after']['bfloat16']:.0f} -> {peak['used']['bfloat16']:.0f} GFLOP/s.", "",
             "| stage | precision | GFLOP per audio s | RTF | GFLOP/s | utilization | vs the GEMM just before | time "
             "in GEMM ops (their rate / peak) | other ops (largest) | outside ops |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["stages"]:
        top = ", ".join(f"{k} {100 * v:.0f} %" for k, v in r["top_other"])
        lines.append(f"| {r['stage']} | {r['precision']} | {r['gflop_per_audio_s']:.2f} | {r['rtf']:.3f} | "
                     f"{r['gflop_s']:.1f} | {100 * r['utilization']:.0f} % | {100 * r['local_utilization']:.0f} % "
                     f"({r['local_peak']:.0f}) | {100 * r['gemm_s'] / r['wall_s']:.0f} % "
                     f"({100 * r['gemm_util']:.0f} %) | {100 * r['other_s'] / r['wall_s']:.0f} % ({top}) | "
                     f"{100 * r['outside_s'] / r['wall_s']:.0f} % |")
    lines += ["", "Where each stage loses (the split above is one profiled run; no stage reads or writes files, "
              "so I/O is not in these figures):", ""]
    lines += [f"- {stage}: {why}" for stage, why in LOSSES.items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0, help="audio per call")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "flops_cpu")
    args = p.parse_args()
    args.load_start = os.getloadavg()
    if args.threads:
        torch.set_num_threads(args.threads)
    res = measure(args)
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    text = markdown(res)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

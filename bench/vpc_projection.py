"""Projected wall time of a full VPC 2024 Table-1 row (kNN-VC; stages 2-8, every set, train-clean-360
included) from each stage's throughput measured on the device given, on one device and on N
devices through Slurm array jobs.

  python bench/vpc_projection.py [--device cpu|cuda] [--threads N] [--utts 8] [--devices 1,4,8,16]
                                 [--pool-hours 352] [--note TEXT]

Measured (audio seconds per wall second, random weights of the real sizes; speed does not depend
on them), on real speech (``../shared/data/libri100`` segments joined to 12 s, the mean length of
a train-clean-360 utterance, when present; else generated noise):
  2  WavLM-Large to layer 6 of the target pool (batched, padding masks);
  5  kNN-VC anonymization through the runner's path (loader threads, length-sorted batches of
     ``batch_size``, matcher, vocoder; a 15k-frame matching set per target, random targets);
  6  ASV training rows (3 s) per second, and 7 ASV embedding, ASR and SER throughput, from
     bench/eval_bench.py's measurements (ECAPA-TDNN 512, wav2vec2-large ASR, wav2vec2-base SER).
Stage 3 (matching sets: one read of the pool's features) and 8 (report) take minutes and are
not projected; stage 4 trains nothing for kNN-VC.

Work of one row (hours of audio): stage 2 the pool (``--pool-hours``: 352 = VoxCeleb1, the paper
confs' pool; 100.6 for LibriSpeech train-clean-100); stage 5 train-clean-360 (363.6 h, 104,014
utts) + the VPC libri dev/test enroll and trial sets (4,255 utts, voxanon.corpora.vpc2024, at
LibriSpeech dev/test-clean's 7.3 s mean = 8.6 h) + IEMOCAP dev/test (12.4 h); stage 6 10 epochs
of 3.7 rows per train-clean-360 utterance (DESIGN.md); stage 7 ASV embeddings of the 4,255
enroll/trial utterances for each of the 3 attack scenarios, ASR of the 3,474 trial utterances,
SER of IEMOCAP. On N devices stages 2 and 5 are split into N array jobs (each pays the model
loading measured here once), stage 7 into up to 6 (trial sets, ASR, SER); stage 6 is one job
(one batch split over a node's GPUs, not an array), projected at one device's speed.
Writes bench/results/vpc_projection_<device>[_t<threads>].md and .json with the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from knnvc_bench import fake_matching_sets, machine, speech

ROOT = Path(__file__).resolve().parents[1]
VPC_UTTS = 343 + 1018 + 960 + 438 + 734 + 762  # libri dev/test enrolls + trials_f + trials_m
TRIAL_UTTS = 1018 + 960 + 734 + 762
WORK_HOURS = {
    "anonymize": 363.6 + VPC_UTTS * 7.3 / 3600 + 12.4,
    "asv_rows": 10 * 3.7 * 104_014,
    "asv_embed": 3 * VPC_UTTS * 7.3 / 3600,
    "asr": TRIAL_UTTS * 7.3 / 3600,
    "ser": 12.4,
}


def source_audio(n: int) -> list:
    from voxanon.audio import Audio

    return [Audio(speech(12.0, skip=3 * i + 100), 16000) for i in range(n)]


def timed(fn, device: str) -> float:
    t = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t


def bench_features(audios: list, device: str) -> float:
    from voxanon.features.wavlm import extract_tensors, load_wavlm

    model = load_wavlm(None, device, max_layer=6)
    extract_tensors(model, audios[:1], 6)  # warm-up
    return sum(a.duration for a in audios) / timed(lambda: extract_tensors(model, audios, 6), device)


def bench_anonymize(audios: list, device: str, work: Path) -> tuple[float, float, float | None]:
    """(audio s per s of kNN-VC with random targets among 8 sets, seconds to build the system,
    peak GPU GiB or None)"""
    from voxanon.anonymize.base import BuildContext, Utterance, build_system, convert_all
    from voxanon.features.wavlm import WavLM, WavLMConfig, save_wavlm
    from voxanon.vocoder.hifigan import Generator, save_generator

    torch.manual_seed(0)
    save_wavlm(WavLM(WavLMConfig(encoder_layers=6)).eval(), work / "wavlm.pt")
    save_generator(Generator().eval(), work / "vocoder.pt")
    sets = fake_matching_sets(work / "sets", work / "wavlm.pt", speakers=8)
    t = time.perf_counter()
    system = build_system("knnvc", {"matching_sets": str(sets), "vocoder": str(work / "vocoder.pt")},
                          BuildContext(1, device, work))
    build_s = time.perf_counter() - t
    utts = [Utterance(f"u{i}", "s", a) for i, a in enumerate(audios)]
    convert_all(system, utts[:2])  # warm-up (and the matching sets onto the device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    seconds = timed(lambda: [convert_all(system, utts[i:i + system.batch_size])
                             for i in range(0, len(utts), system.batch_size)], device)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    return sum(a.duration for a in audios) / seconds, build_s, peak


def bench_evaluation(device: str, work: Path, utts: int) -> dict:
    """Stage 6-7 throughputs from bench/eval_bench.py; an error there is reported, not fatal."""
    try:
        import soundfile as sf

        import eval_bench
        from voxanon.data.kaldi import load_data_dir, resolve_wav

        rows_per_s, _ = eval_bench.bench_training(512, 8, 2, device)
        seconds, cpu, _, n_utts, what = eval_bench.bench_scoring(512, device, work / "scoring")
        data = load_data_dir(eval_bench.SHARED / "timit") if what == "timit" else None
        audio_s = (sum(sf.info(resolve_wav(data, u)).duration for u in data.utts) if data else 3.0 * n_utts)
        _, asr_rate, ser_rate, _ = eval_bench.bench_asr_ser(utts, device, work / "asr")
        return {"asv_rows": rows_per_s, "asv_embed": audio_s / seconds, "asr": asr_rate, "ser": ser_rate}
    except Exception as err:  # another engineer's code mid-change must not lose the other stages
        print(f"stages 6-7 not measured: {type(err).__name__}: {err}", flush=True)
        return {"error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}


def project(rates: dict, build_s: float, pool_hours: float, n: int) -> dict[str, float]:
    """Hours per stage on ``n`` devices."""
    hours = {"2 features": pool_hours / rates["features"] / n + build_s / 3600,
             "5 anonymize": WORK_HOURS["anonymize"] / rates["anonymize"] / n + build_s / 3600}
    if "asv_rows" in rates:
        hours["6 ASV training"] = WORK_HOURS["asv_rows"] / rates["asv_rows"] / 3600
        scoring = (WORK_HOURS["asv_embed"] / rates["asv_embed"] + WORK_HOURS["asr"] / rates["asr"]
                   + WORK_HOURS["ser"] / rates["ser"])
        hours["7 evaluation"] = scoring / min(n, 6)
    hours["total"] = sum(hours.values())
    return hours


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--utts", type=int, default=8, help="utterances of 12 s per measurement")
    p.add_argument("--devices", default="1,4,8,16", help="device counts to project")
    p.add_argument("--pool-hours", type=float, default=352.0)
    p.add_argument("--skip-eval", action="store_true", help="stages 2 and 5 only")
    p.add_argument("--note", default="")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    audios = source_audio(args.utts)
    work = Path(tempfile.mkdtemp(prefix="vpc_projection_"))
    rates = {"features": bench_features(audios, args.device)}
    print(f"features: {rates['features']:.2f} audio s/s", flush=True)
    rates["anonymize"], build_s, peak_gib = bench_anonymize(audios, args.device, work)
    print(f"anonymize: {rates['anonymize']:.2f} audio s/s (build {build_s:.1f} s)", flush=True)
    evaluation = {} if args.skip_eval else bench_evaluation(args.device, work, args.utts)
    rates.update({k: v for k, v in evaluation.items() if k != "error"})
    devices = [int(x) for x in args.devices.split(",")]
    projection = {n: project(rates, build_s, args.pool_hours, n) for n in devices}
    result = {"device": args.device, "machine": machine(args.device), "note": args.note,
              "load_average": os.getloadavg(), "speech": "libri100" if (ROOT.parent / "shared" / "data" /
                                                                         "libri100").is_dir() else "generated",
              "rates_audio_s_per_s": rates, "build_seconds": build_s, "peak_gpu_gib": peak_gib, "work": WORK_HOURS,
              "pool_hours": args.pool_hours, "eval_error": evaluation.get("error"), "projection_hours": projection}
    suffix = f"_t{args.threads}" if args.threads else ""
    out = ROOT / "bench" / "results" / f"vpc_projection_{args.device.split(':')[0]}{suffix}"
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# VPC 2024 Table-1 row (kNN-VC) projected from measured throughput ({args.device})", "",
             f"Machine: {result['machine']}; load average at the end {result['load_average'][0]:.1f}", ""]
    if args.note:
        lines += [f"Conditions: {args.note}", ""]
    lines += [f"Speech: {result['speech']}, {args.utts} utterances of 12 s; random weights of the real sizes.", "",
              "| stage | throughput | work |", "|---|---|---|",
              f"| 2 WavLM features | {rates['features']:.2f} audio s/s | target pool {args.pool_hours} h |",
              f"| 5 kNN-VC anonymization | {rates['anonymize']:.2f} audio s/s (RTF {1 / rates['anonymize']:.4f}); "
              f"system build {build_s:.1f} s" + (f"; peak GPU memory {peak_gib:.1f} GiB at the default batch_size"
                                                  if peak_gib is not None else "") +
              f" | {WORK_HOURS['anonymize']:.1f} h |"]
    if "asv_rows" in rates:
        lines += [f"| 6 ASV training | {rates['asv_rows']:.2f} rows/s (3 s rows) | {WORK_HOURS['asv_rows']:,.0f} rows |",
                  f"| 7 ASV embeddings | {rates['asv_embed']:.2f} audio s/s | {WORK_HOURS['asv_embed']:.1f} h |",
                  f"| 7 ASR (wav2vec2-large) | {rates['asr']:.2f} audio s/s | {WORK_HOURS['asr']:.1f} h |",
                  f"| 7 SER (wav2vec2-base) | {rates['ser']:.2f} audio s/s | {WORK_HOURS['ser']:.1f} h |"]
    else:
        lines += [f"| 6-7 | not measured: {evaluation.get('error') or 'skipped'} | |"]
    stages = list(projection[devices[0]])
    lines += ["", "## Projected wall time (hours)", "", "| devices | " + " | ".join(stages) + " |",
              "|---|" + "---|" * len(stages)]
    lines += [f"| {n} | " + " | ".join(f"{projection[n][s]:,.1f}" for s in stages) + " |" for n in devices]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

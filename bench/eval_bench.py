"""Evaluation speed: ASV training throughput and scoring time per 1,000 trials.

  python bench/eval_bench.py [--device cpu|cuda] [--channels 512] [--batch-size 32] [--batches 4]
                             [--threads N] [--out bench/results/eval_<device>.md]

* training: utterances/s of the stage-6 step (speechbrain Fbank on the fly, mean norm, ECAPA-TDNN,
  AAM-softmax, Adam) on 3 s chunks of ``../shared/data/libri100`` (generated audio when absent),
  after one warm-up batch, for the VPC size (512 channels) and the given ``--channels``;
* scoring: seconds per 1,000 trials on ``../shared/data/timit`` (160 utterances, 896 trials;
  generated when absent): loading + -30 LUFS / peak pre-processing + embedding of every
  utterance, enrollment means, cosine scores, all metrics (EER, minDCF, Cllr, min-Cllr,
  linkability). Randomly initialized weights: speed does not depend on them.
* ASR and SER: audio seconds per second of the VPC 2024 ASR_eval (speechbrain ``EncoderASR``,
  wav2vec2-large size, VPC batches of 8 sorted by length) and of one SER fold model (the custom
  wav2vec2-base classifier, one utterance at a time as the VPC runs it), on ``--asr-utts``
  utterances of ``../shared/data/timit`` (generated when absent); random-weight stand-ins in the
  release layouts (``voxanon.testing.vpc_models``).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from speechbrain.lobes.models.ECAPA_TDNN import Classifier
from speechbrain.nnet.losses import AdditiveAngularMargin, LogSoftmaxWrapper

from voxanon.audio import load_16k
from voxanon.data.kaldi import load_data_dir, resolve_wav
from voxanon.eval.asv_model import AsvModel, EcapaShape, EMBEDDING_FILE
from voxanon.eval.asv_train import fit_length
from voxanon.eval.eer import all_metrics
from voxanon.eval.scoring import EmbeddingStore, evaluate_asv, find_trial_lists

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def machine(device: str) -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if device.startswith("cuda") else ""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return (f"{platform.node()}: {cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, "
            f"{torch.get_num_threads()} torch threads{gpu}; load average {load:.1f} at start (a shared machine: "
            f"other jobs ran too); Python {platform.python_version()}, torch {torch.__version__}")


def training_chunks(n: int) -> tuple[list[np.ndarray], str]:
    chunk = 3 * 16000
    if (SHARED / "libri100" / "wav.scp").is_file():
        d = load_data_dir(SHARED / "libri100")
        return [fit_length(load_16k(resolve_wav(d, u), d.path).samples, chunk, 0) for u in d.utts[:n]], "libri100"
    rng = np.random.default_rng(0)
    return [0.1 * rng.standard_normal(chunk).astype(np.float32) for _ in range(n)], "generated noise"


def make_training_step(channels: int, batch: int, device: str, speakers: int = 100):
    """One stage-6 step (Fbank, ECAPA-TDNN, AAM-softmax, Adam) on ``batch`` 3 s chunks, as ``step()``."""
    chunks, _ = training_chunks(batch)
    x = torch.from_numpy(np.stack(chunks)).to(device)
    y = torch.arange(batch, device=device) % speakers
    model = AsvModel(EcapaShape(80, channels, 128, 192)).to(device).train()
    clf = Classifier(192, out_neurons=speakers).to(device)
    loss_fn = LogSoftmaxWrapper(AdditiveAngularMargin(margin=0.2, scale=30))
    opt = torch.optim.Adam(list(model.ecapa.parameters()) + list(clf.parameters()), lr=1e-3)

    def step():
        loss = loss_fn(clf(model.ecapa(model.frontend(x))), y.unsqueeze(1))
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def bench_training(channels: int, batch: int, batches: int, device: str) -> tuple[float, float]:
    """(utterances per wall-clock second, per CPU-second of this process)"""
    step = make_training_step(channels, batch, device)
    step()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(batches):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return batches * batch / (time.perf_counter() - t0), batches * batch / (time.process_time() - c0)


def bench_scoring(channels: int, device: str, work: Path) -> tuple[float, float, int, int, str]:
    if (SHARED / "timit" / "trials").is_file():
        data_root, name, what = SHARED, "timit", "timit"
    else:
        from voxanon.testing.datadirs import make_dir

        data_root, name, what = work / "data", "ev", "generated (8 speakers)"
        make_dir(data_root / name, n_spk=8, n_utt=10, n_enroll=3)
    model_dir = work / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    model = AsvModel(EcapaShape(80, channels, 128, 192)).to(device).eval()
    torch.save(model.ecapa.state_dict(), model_dir / EMBEDDING_FILE)
    store = EmbeddingStore(model, model_dir, work / "emb", -30.0, 1.0)
    lists = find_trial_lists([name], data_root)
    t0, c0 = time.perf_counter(), time.process_time()
    res = evaluate_asv(lists, ["original"], {"orig": store}, data_root, "", work / "res", {})
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    n_trials = sum(m["n_target"] + m["n_nontarget"] for per in res["trial_sets"].values() for m in per.values())
    n_utts = len(load_data_dir(data_root / name).utts)
    return seconds, cpu, n_trials, n_utts, what


def bench_metrics(n: int) -> float:
    rng = np.random.default_rng(0)
    tar, non = rng.normal(1, 1, n // 10), rng.normal(0, 1, n - n // 10)
    t0 = time.perf_counter()
    all_metrics(tar, non)
    return time.perf_counter() - t0


def utility_audio(n: int) -> tuple[list, str]:
    """``n`` utterances (Audio) of TIMIT, or generated speech-like audio."""
    if (SHARED / "timit" / "wav.scp").is_file():
        data = load_data_dir(SHARED / "timit")
        return [load_16k(resolve_wav(data, u), data.path) for u in sorted(data.utts)[:n]], "timit"
    from voxanon.audio import Audio
    from voxanon.testing.datadirs import speaker_wave

    return [Audio(speaker_wave(i % 8, i, 3.0), 16000) for i in range(n)], "generated"


def bench_asr_ser(n: int, device: str, work: Path, asr_size: str = "large",
                  ser_size: str = "base") -> tuple[float, float, float, str]:
    """Audio seconds, and audio seconds per wall second of the ASR (batches of 8) and of one SER fold
    (wav2vec2 sizes of voxanon.testing.vpc_models)."""
    from voxanon.asr import AsrConfig, load_asr
    from voxanon.eval.ser import FoldModel, fold_dir
    from voxanon.testing.vpc_models import make_vpc_asr, make_vpc_ser

    audios, what = utility_audio(n)
    seconds = sum(a.duration for a in audios)
    asr = load_asr(AsrConfig(backend="speechbrain", model=str(make_vpc_asr(work / "asr", size=asr_size)),
                             batch_size=8), device)
    ordered = sorted(audios, key=lambda a: -a.duration)
    asr.transcribe_batch(ordered[:1])  # warm-up
    t0 = time.perf_counter()
    for i in range(0, len(ordered), 8):
        asr.transcribe_batch(ordered[i:i + 8])
    asr_rate = seconds / (time.perf_counter() - t0)
    ser = FoldModel(fold_dir(make_vpc_ser(work / "ser", size=ser_size, folds=1), "1"), device)
    ser.posteriors(audios[0].samples)
    t0 = time.perf_counter()
    for a in audios:
        ser.posteriors(a.samples)
    return seconds, asr_rate, seconds / (time.perf_counter() - t0), what


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--channels", type=int, default=128, help="a smaller model besides the VPC 512")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    p.add_argument("--asr-utts", type=int, default=24, help="utterances for the ASR / SER throughput")
    p.add_argument("--out")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out or ROOT / "bench" / "results" / f"eval_{args.device.split(':')[0]}.md")
    _, source = training_chunks(1)
    lines = [f"# Evaluation bench ({args.device})", "", f"Machine: {machine(args.device)}", "",
             f"## ASV training throughput (3 s chunks from {source}, batch {args.batch_size}, "
             f"{args.batches} timed batches)", "", "| channels | utterances/s (wall) | utterances per CPU-second |",
             "|---|---|---|"]
    for channels in dict.fromkeys([512, args.channels]):
        rate, cpu_rate = bench_training(channels, args.batch_size, args.batches, args.device)
        lines.append(f"| {channels} | {rate:.1f} | {cpu_rate:.1f} |")
        print(lines[-1], flush=True)
    lines += ["", "## Scoring (embed every utterance with pre-processing, cosine, all metrics)", "",
              "| channels | data | utterances | trials | seconds (wall) | CPU-seconds | wall seconds per 1,000 trials |",
              "|---|---|---|---|---|---|---|"]
    for channels in dict.fromkeys([512, args.channels]):
        with tempfile.TemporaryDirectory() as work:
            sec, cpu, n_trials, n_utts, what = bench_scoring(channels, args.device, Path(work))
        lines.append(f"| {channels} | {what} | {n_utts} | {n_trials} | {sec:.2f} | {cpu:.2f} | "
                     f"{1000 * sec / n_trials:.2f} |")
        print(lines[-1], flush=True)
    with tempfile.TemporaryDirectory() as work:
        seconds, asr_rate, ser_rate, what = bench_asr_ser(args.asr_utts, args.device, Path(work))
    lines += ["", f"## VPC ASR_eval and SER ({args.asr_utts} utterances of {what}, {seconds:.0f} s of audio)", "",
              "| model | audio seconds per second |", "|---|---|",
              f"| ASR_eval (wav2vec2-large + CTC, batches of 8) | {asr_rate:.2f} |",
              f"| SER fold model (wav2vec2-base, one utterance at a time) | {ser_rate:.2f} |"]
    print("\n".join(lines[-2:]), flush=True)
    lines += ["", "## Metrics alone (EER, minDCF, Cllr, min-Cllr, linkability on random scores)", "",
              "| trials | seconds |", "|---|---|"]
    for n in (1_000, 30_000, 1_000_000):
        lines.append(f"| {n:,} | {bench_metrics(n):.3f} |")
    lines.append("")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

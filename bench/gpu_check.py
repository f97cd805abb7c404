"""One-shot GPU check: throughput and memory of every stage on the CUDA device found, and a
projected VPC 2024 kNN-VC Table-1 row (run it through bench/gpu_check.sh, which bounds it to 8 min).

  bench/gpu_check.sh [--out-dir DIR] [--tiny]

On CUDA, with random weights of the real sizes (speed does not depend on them):
  * kNN-VC (WavLM-Large to layer 6, k = 4 over 15k-frame sets, HiFi-GAN V1) through the
    anonymizer's batched path: real-time factor and peak memory per batch size, and WavLM alone
    (stage 2);
  * a 24 GB cap (torch.cuda.set_per_process_memory_fraction): a batch too big for it must finish,
    split (the WavLM and vocoder passes halve on out-of-memory, a failed batch is redone one
    utterance at a time), with the same output as without the cap;
  * Whisper (openai-whisper, the ``small`` dimensions): the encoder batched over 30 s windows and
    greedy decoding of 32 tokens, per batch size;
  * the converter's training step (base and +adv+discrete), ASV training rows/s (ECAPA-TDNN 512,
    3 s rows) and scoring (embeddings of 7.3 s utterances and cosine scores), the VPC ASR_eval and SER;
  * the projection of a Table-1 row (bench/vpc_projection.py's work and formula) on 1-16 devices.
Writes ``gpu_<device>.md`` and ``.json`` to bench/results, after every section (a timeout keeps
what was measured). Without CUDA it runs on the CPU at tiny sizes and writes to a temporary dir
(tests/test_gpu_check.py), so the script cannot rot.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import converter_bench
import eval_bench
from flops import commit
from knnvc_bench import fake_matching_sets, machine
from vpc_projection import WORK_HOURS, project
from voxanon.audio import Audio
from voxanon.features.wavlm import WavLMConfig
from voxanon.vocoder.hifigan import HiFiGANConfig

ROOT = Path(__file__).resolve().parents[1]
CAP_GIB = 24.0


@dataclass(frozen=True)
class Sizes:
    wavlm: WavLMConfig = WavLMConfig(encoder_layers=6)
    vocoder: HiFiGANConfig = HiFiGANConfig()
    pool_frames: int = 15000
    utt_seconds: float = 10.0
    batch_sizes: tuple[int, ...] = (1, 4, 16, 64)
    cap_batch: tuple[int, float] = (128, 20.0)  # utterances, seconds each: over 24 GB in one vocoder pass
    whisper: dict = field(default_factory=lambda: dict(n_mels=80, n_audio_ctx=1500, n_audio_state=768,
                                                       n_audio_head=12, n_audio_layer=12, n_vocab=51864,
                                                       n_text_ctx=448, n_text_state=768, n_text_head=12,
                                                       n_text_layer=12))
    whisper_batches: tuple[int, ...] = (1, 8, 16)
    converter: dict = field(default_factory=dict)
    converter_variants: tuple[tuple[str, bool, bool], ...] = (("base", False, False), ("+adv+discrete", True, True))
    converter_batch: tuple[int, int] = (16, 400)  # items, frames
    asv_channels: int = 512
    asv_batch: int = 128
    asr_size: str = "large"
    ser_size: str = "base"
    eval_utts: int = 16
    steps: int = 5


TINY_CONV = "[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2"
TINY = Sizes(
    wavlm=WavLMConfig(conv_feature_layers=TINY_CONV, encoder_layers=6, encoder_embed_dim=64, encoder_ffn_embed_dim=128,
                      encoder_attention_heads=4, conv_pos=16, conv_pos_groups=4, num_buckets=32),
    vocoder=HiFiGANConfig(in_dim=64, initial_channels=32), pool_frames=500, utt_seconds=1.0, batch_sizes=(1, 2),
    cap_batch=(3, 1.5),
    whisper=dict(n_mels=80, n_audio_ctx=1500, n_audio_state=32, n_audio_head=2, n_audio_layer=1, n_vocab=51864,
                 n_text_ctx=64, n_text_state=32, n_text_head=2, n_text_layer=1),
    whisper_batches=(1, 2), converter=dict(feat_dim=64, hidden=32, ffn_dim=64, encoder_layers=1, decoder_layers=1),
    converter_variants=(("base", False, False),), converter_batch=(2, 50), asv_channels=32, asv_batch=4,
    asr_size="tiny", ser_size="tiny", eval_utts=2, steps=1)


class Device:
    def __init__(self, name: str):
        self.name, self.cuda = name, name.startswith("cuda")

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def timed(self, fn) -> float:
        self.sync()
        t = time.perf_counter()
        fn()
        self.sync()
        return time.perf_counter() - t

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float | None:
        return torch.cuda.max_memory_allocated() / 2**30 if self.cuda else None


def utterances(n: int, seconds: float, seed: int = 0) -> list:
    from voxanon.anonymize.base import Utterance

    rng = np.random.default_rng(seed)
    return [Utterance(f"u{i:04d}", "s", Audio((0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32),
                                              16000)) for i in range(n)]


def knnvc_system(sizes: Sizes, dev: Device, work: Path, batch_size: int):
    from voxanon.anonymize.base import BuildContext, build_system
    from voxanon.features.wavlm import WavLM, save_wavlm
    from voxanon.vocoder.hifigan import Generator, save_generator

    sets = work / "pool" / "sets"
    if not sets.is_dir():  # 8 target speakers, made once
        torch.manual_seed(0)
        save_wavlm(WavLM(sizes.wavlm).eval(), work / "wavlm.pt")
        save_generator(Generator(sizes.vocoder).eval(), work / "vocoder.pt")
        fake_matching_sets(work / "pool", work / "wavlm.pt", sizes.pool_frames, 8, sizes.wavlm.encoder_embed_dim)
    params = {"matching_sets": str(sets), "vocoder": str(work / "vocoder.pt"), "batch_size": batch_size}
    return build_system("knnvc", params, BuildContext(1, dev.name, work))


def check_outputs(utts: list, outs: list) -> None:
    bad = [u.id for u, o in zip(utts, outs) if isinstance(o, Exception) or len(o.audio.samples) < 0.9 * len(u.audio.samples)]
    if bad or len(outs) != len(utts):
        raise RuntimeError(f"kNN-VC gave no proper output for {bad or 'some utterances'}")


def knnvc(sizes: Sizes, dev: Device, work: Path) -> dict:
    from voxanon.anonymize.base import convert_all
    from voxanon.features.wavlm import extract_tensors

    rows = []
    for bs in sizes.batch_sizes:
        system = knnvc_system(sizes, dev, work, bs)
        utts = utterances(2 * bs, sizes.utt_seconds)
        convert_all(system, utts[:bs])  # warm-up, and the matching sets onto the device
        dev.reset_peak()
        outs = []
        seconds = dev.timed(lambda: outs.extend(convert_all(system, utts[i:i + bs]) for i in range(0, len(utts), bs)))
        check_outputs(utts, [o for batch in outs for o in batch])
        rows.append({"batch_size": bs, "rtf": seconds / (len(utts) * sizes.utt_seconds), "peak_gib": dev.peak_gib()})
        print(f"kNN-VC batch {bs}: {rows[-1]}", flush=True)
    audios = [u.audio for u in utts]
    feats_s = dev.timed(lambda: extract_tensors(system.wavlm, audios, system.layer))
    return {"rows": rows, "features_audio_s_per_s": len(audios) * sizes.utt_seconds / feats_s}


class _Count(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def capped(sizes: Sizes, dev: Device, work: Path) -> dict:
    """A batch over the cap: no crash, split, same output as uncapped."""
    from voxanon.anonymize.base import convert_all

    n, seconds = sizes.cap_batch
    system, utts = knnvc_system(sizes, dev, work, n), utterances(n, seconds, seed=1)
    dev.reset_peak()
    free = [o.audio.samples for o in convert_all(system, utts)]
    free_peak = dev.peak_gib()
    total = torch.cuda.get_device_properties(0).total_memory / 2**30 if dev.cuda else None
    fraction = min(1.0, CAP_GIB / total) if total else None
    count = _Count()
    logging.getLogger("voxanon").addHandler(count)
    try:
        if fraction:
            torch.cuda.set_per_process_memory_fraction(fraction)
        dev.reset_peak()
        outs = convert_all(system, utts)
        peak = dev.peak_gib()
    finally:
        logging.getLogger("voxanon").removeHandler(count)
        if fraction:
            torch.cuda.set_per_process_memory_fraction(1.0)
    check_outputs(utts, outs)
    diff = max(float(np.abs(a - o.audio.samples).max()) for a, o in zip(free, outs))
    return {"utterances": n, "seconds_each": seconds, "cap_gib": CAP_GIB if fraction else None,
            "device_gib": total, "uncapped_peak_gib": free_peak, "capped_peak_gib": peak, "all_converted": True,
            "max_abs_diff_vs_uncapped": diff, "split_messages": count.messages}


def whisper_rows(sizes: Sizes, dev: Device) -> dict:
    import whisper
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    model = Whisper(ModelDimensions(**sizes.whisper)).to(dev.name).eval()
    with torch.no_grad():  # Whisper leaves it uninitialized (torch.empty)
        model.decoder.positional_embedding.normal_(0.0, 0.02)
    audio = torch.from_numpy(utterances(1, sizes.utt_seconds)[0].audio.samples)
    mel = whisper.pad_or_trim(whisper.log_mel_spectrogram(audio, n_mels=sizes.whisper["n_mels"]), whisper.audio.N_FRAMES)
    dtype = torch.float16 if dev.cuda else torch.float32
    options = whisper.DecodingOptions(language="en", without_timestamps=True, fp16=dev.cuda, sample_len=32)
    rows = []
    for bs in sizes.whisper_batches:
        mels = mel[None].repeat(bs, 1, 1).to(dev.name, dtype)
        with torch.inference_mode():
            model.embed_audio(mels)  # warm-up
            features = []
            enc = dev.timed(lambda: features.append(model.embed_audio(mels)))
            results = []
            dec = dev.timed(lambda: results.extend(whisper.decode(model, features[0], options)))
        tokens = sum(len(r.tokens) for r in results)
        rows.append({"batch_size": bs, "encoder_windows_s": bs / enc, "decode_tokens_s": tokens / dec,
                     "audio_s_per_s": bs * sizes.utt_seconds / (enc + dec), "peak_gib": dev.peak_gib()})
        print(f"Whisper batch {bs}: {rows[-1]}", flush=True)
    return {"dims": sizes.whisper, "seconds": sizes.utt_seconds, "rows": rows}


def converter(sizes: Sizes, dev: Device) -> dict:
    b, t = sizes.converter_batch
    rows = []
    for name, adv, disc in sizes.converter_variants:
        _, step = converter_bench.make_step(adv, disc, sizes.converter, dev.name, b, t)
        step()  # warm-up
        dev.reset_peak()
        seconds = dev.timed(lambda: [step() for _ in range(sizes.steps)]) / sizes.steps
        rows.append({"objectives": name, "steps_s": 1 / seconds, "frames_s": b * t / seconds, "peak_gib": dev.peak_gib()})
    return {"batch": b, "frames": t, "rows": rows}


def asv(sizes: Sizes, dev: Device) -> dict:
    from voxanon.eval.asv_model import AsvModel, EcapaShape

    step = eval_bench.make_training_step(sizes.asv_channels, sizes.asv_batch, dev.name, speakers=921)
    step()  # warm-up
    dev.reset_peak()
    seconds = dev.timed(lambda: [step() for _ in range(sizes.steps)])
    train = {"rows_s": sizes.asv_batch * sizes.steps / seconds, "peak_gib": dev.peak_gib()}
    model = AsvModel(EcapaShape(80, sizes.asv_channels, 128, 192)).to(dev.name).eval()
    utts = utterances(sizes.eval_utts, 7.3, seed=2)  # the VPC enroll/trial sets' mean length
    model.embed(utts[0].audio.samples)
    emb = []
    embed_s = dev.timed(lambda: emb.extend(model.embed(u.audio.samples) for u in utts))
    e = torch.nn.functional.normalize(torch.from_numpy(np.stack(emb)), dim=1)
    scores = e @ e.T
    return {"channels": sizes.asv_channels, "batch": sizes.asv_batch, "train": train,
            "embed_audio_s_per_s": 7.3 * len(utts) / embed_s, "trials_scored": int(scores.numel())}


def utility(sizes: Sizes, dev: Device, work: Path) -> dict:
    _, asr, ser, what = eval_bench.bench_asr_ser(sizes.eval_utts, dev.name, work / "utility", sizes.asr_size,
                                                 sizes.ser_size)
    return {"asr_audio_s_per_s": asr, "ser_audio_s_per_s": ser, "audio": what}


def projection(res: dict) -> dict:
    """A Table-1 row on 1-16 devices from the rates measured (vpc_projection's formula)."""
    knn = res["knnvc"]
    default = min(knn["rows"], key=lambda r: abs(r["batch_size"] - 16))
    rates = {"features": knn["features_audio_s_per_s"], "anonymize": 1 / default["rtf"],
             "asv_rows": res["asv"]["train"]["rows_s"], "asv_embed": res["asv"]["embed_audio_s_per_s"],
             "asr": res["utility"]["asr_audio_s_per_s"], "ser": res["utility"]["ser_audio_s_per_s"]}
    return {"batch_size": default["batch_size"], "rates": rates,
            "hours": {n: project(rates, 0.0, 352.0, n) for n in (1, 4, 8, 16)}}


def gib(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def markdown(res: dict) -> str:
    lines = [f"# GPU check ({res['device']})", "", f"Machine: {res['machine']}", "",
             f"Command: `{res['command']}` at commit {res['commit']}; sizes: {res['sizes']}; random weights.", ""]
    if "knnvc" in res:
        lines += ["## kNN-VC through the batched anonymizer (RTF = compute seconds / audio seconds)", "",
                  "| batch size | RTF | peak memory GiB |", "|---|---|---|"]
        lines += [f"| {r['batch_size']} | {r['rtf']:.5f} | {gib(r['peak_gib'])} |" for r in res["knnvc"]["rows"]]
        lines += ["", f"WavLM to layer 6 alone (stage 2): {res['knnvc']['features_audio_s_per_s']:.1f} audio s/s.", ""]
    if "capped" in res:
        c = res["capped"]
        cap = f"a {c['cap_gib']:.0f} GiB cap" if c["cap_gib"] else "no cap (no CUDA device)"
        lines += [f"## Memory cap: {c['utterances']} utterances of {c['seconds_each']:.1f} s in one batch, {cap}", "",
                  f"Peak without the cap {gib(c['uncapped_peak_gib'])} GiB, with it {gib(c['capped_peak_gib'])} GiB "
                  f"(device {gib(c['device_gib'])} GiB); every utterance converted; largest sample difference "
                  f"from the uncapped output {c['max_abs_diff_vs_uncapped']:.2e}; {len(c['split_messages'])} "
                  "out-of-memory splits logged" + (": " + "; ".join(sorted(set(c["split_messages"])))
                                                    if c["split_messages"] else "") + ".", ""]
    if "whisper" in res:
        lines += ["## Whisper batched (encoder over 30 s windows, greedy decoding of up to 32 tokens)", "",
                  f"| batch size | encoder windows/s | decoded tokens/s | audio s/s ({res['whisper']['seconds']:.0f} s "
                  "utterances) | peak GiB |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['batch_size']} | {r['encoder_windows_s']:.1f} | {r['decode_tokens_s']:.0f} | "
                  f"{r['audio_s_per_s']:.1f} | {gib(r['peak_gib'])} |" for r in res["whisper"]["rows"]]
        lines.append("")
    if "converter" in res:
        c = res["converter"]
        lines += [f"## Converter training step (batch {c['batch']} x {c['frames']} frames)", "",
                  "| objectives | steps/s | frames/s | peak GiB |", "|---|---|---|---|"]
        lines += [f"| {r['objectives']} | {r['steps_s']:.2f} | {r['frames_s']:.0f} | {gib(r['peak_gib'])} |"
                  for r in c["rows"]]
        lines.append("")
    if "asv" in res:
        a = res["asv"]
        lines += [f"## ASV (ECAPA-TDNN {a['channels']})", "",
                  f"Training: {a['train']['rows_s']:.1f} rows/s (3 s rows, batch {a['batch']}, peak "
                  f"{gib(a['train']['peak_gib'])} GiB); scoring: {a['embed_audio_s_per_s']:.1f} audio s/s of "
                  f"embeddings (one utterance at a time), {a['trials_scored']} cosine scores.", ""]
    if "utility" in res:
        u = res["utility"]
        lines += [f"## VPC ASR_eval and SER ({u['audio']})", "",
                  f"ASR_eval {u['asr_audio_s_per_s']:.1f} audio s/s (batches of 8), SER {u['ser_audio_s_per_s']:.1f} "
                  "audio s/s (one utterance at a time).", ""]
    if "projection" in res:
        p = res["projection"]
        stages = list(p["hours"][1])
        lines += ["## A VPC 2024 Table-1 row (kNN-VC) projected", "",
                  f"Work of bench/vpc_projection.py: target pool 352 h (stage 2), {WORK_HOURS['anonymize']:.1f} h to "
                  f"anonymize (batch size {p['batch_size']}), {WORK_HOURS['asv_rows']:,.0f} ASV training rows, "
                  "scoring of the VPC sets; model loading not included. Hours:", "",
                  "| devices | " + " | ".join(stages) + " |", "|---|" + "---|" * len(stages)]
        lines += [f"| {n} | " + " | ".join(f"{h[s]:,.2f}" for s in stages) + " |" for n, h in p["hours"].items()]
        lines.append("")
    if res["errors"]:
        lines += ["## Sections that failed", ""] + [f"- {k}: {v}" for k, v in res["errors"].items()] + [""]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", type=Path, help="default: bench/results on CUDA, a new temporary dir on the CPU")
    p.add_argument("--tiny", action="store_true", help="tiny models and audio (always so without CUDA)")
    args = p.parse_args()
    dev = Device("cuda" if torch.cuda.is_available() else "cpu")
    sizes = TINY if args.tiny or not dev.cuda else Sizes()
    out_dir = args.out_dir or (ROOT / "bench" / "results" if dev.cuda else Path(tempfile.mkdtemp(prefix="gpu_check_")))
    slug = re.sub(r"[^a-z0-9]+", "_", torch.cuda.get_device_name(0).lower()).strip("_") if dev.cuda else "cpu"
    out = out_dir / f"gpu_{slug}"
    res = {"device": torch.cuda.get_device_name(0) if dev.cuda else "cpu", "machine": machine(dev.name),
           "command": "bench/gpu_check.sh " + " ".join(sys.argv[1:]), "commit": commit(),
           "sizes": "tiny" if sizes is TINY else "real", "errors": {}}
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gpu_check_work_") as tmp:
        work = Path(tmp)
        sections = {"knnvc": lambda: knnvc(sizes, dev, work), "capped": lambda: capped(sizes, dev, work),
                    "whisper": lambda: whisper_rows(sizes, dev), "converter": lambda: converter(sizes, dev),
                    "asv": lambda: asv(sizes, dev), "utility": lambda: utility(sizes, dev, work),
                    "projection": lambda: projection(res)}
        for name, fn in sections.items():
            t = time.perf_counter()
            try:
                res[name] = fn()
            except Exception as err:  # keep the other sections' figures
                res["errors"][name] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            print(f"{name}: {time.perf_counter() - t:.1f} s {res['errors'].get(name, 'ok')}", flush=True)
            out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
            out.with_suffix(".md").write_text(markdown(res))
    print(out.with_suffix(".md").read_text())
    print(f"wrote {out}.md")
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())

"""Real-time factor of the cascade's ASR and TTS backends.

  python bench/asr_tts_bench.py [--device cpu|cuda] [--utts 10] [--threads 2] [--out bench/results/asr_tts_cpu.md]

RTF = processing time / seconds of audio (ASR: input speech; TTS: synthesized speech); below 1
is faster than real time. Wall-clock and process CPU time are both given: on a shared machine
the wall clock also measures the neighbours, CPU time less so.

* ASR input: the first ``--utts`` utterances of ``../shared/data/timit`` when present, else
  sentences spoken by the packaged joe voice. Backends: faster-whisper base (packaged; int8
  one utterance at a time and in batches of 8 — on a GPU, float16 batched —, and float32),
  faster-whisper tiny.en (packaged, int8), openai-whisper with a randomly
  initialized model of Whisper tiny.en's dimensions (no real weights offline; its decoding is
  capped at the token count of the longest real transcript, since a random model never stops
  by itself).
* TTS: the packaged Piper joe voice, a packaged Kokoro-82M voice and espeak-ng, on the
  transcripts; ONNX sessions with ``--threads`` threads.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from voxanon.asr import AsrConfig, load_asr
from voxanon.audio import load_16k
from voxanon.data.kaldi import load_data_dir, resolve_wav
from voxanon.tts.config import TtsConfig
from voxanon.tts.synth import Tts

ROOT = Path(__file__).resolve().parents[1]

SENTENCES = ["She had your dark suit in greasy wash water all year.",
             "Don't ask me to carry an oily rag like that.",
             "The meeting starts at half past ten on the second of May.",
             "Assume for example a situation where a farm has a packing shed and fields."]


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (espeak-ng runs as a subprocess)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(fn):
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    return result, time.perf_counter() - wall, cpu_seconds() - cpu


def inputs(n: int, device: str) -> tuple[list, str]:
    timit = ROOT.parent / "shared" / "data" / "timit"
    if (timit / "wav.scp").is_file():
        data = load_data_dir(timit)
        return [load_16k(resolve_wav(data, u), data.path) for u in data.utts[:n]], f"{timit} (first {n} utterances)"
    tts = Tts(TtsConfig(), device)
    return [tts.synthesize(SENTENCES[i % len(SENTENCES)], tts.speakers[0]) for i in range(n)], "joe-voice sentences"


def random_tiny_en(path: Path) -> Path:
    """Whisper tiny.en's dimensions, random weights, openai-whisper checkpoint layout."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=384, n_audio_head=6, n_audio_layer=4,
                           n_vocab=51864, n_text_ctx=448, n_text_state=384, n_text_head=6, n_text_layer=4)
    model = Whisper(dims)
    with torch.no_grad():
        model.decoder.positional_embedding.normal_(0.0, 0.02)
    torch.save({"dims": dataclasses.asdict(dims), "model_state_dict": model.state_dict()}, path)
    return path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--utts", type=int, default=10)
    p.add_argument("--threads", type=int, default=2, help="CPU threads for the ASR backends")
    p.add_argument("--out", default=None, help="default bench/results/asr_tts_<device>.md")
    args = p.parse_args()
    device = args.device
    out = Path(args.out or ROOT / "bench" / "results" / f"asr_tts_{device.split(':')[0]}.md")
    audios, source = inputs(args.utts, device)
    seconds = sum(a.duration for a in audios)
    rows, transcripts = [], []

    def asr_row(label: str, config: AsrConfig, tweak=None):
        asr, load_s, _ = timed(lambda: load_asr(config, device))
        if tweak:
            tweak(asr)
        asr.transcribe_batch(audios[:1])  # warm-up
        texts, wall, cpu = timed(lambda: asr.transcribe_batch(audios))
        rows.append(("ASR", label, seconds, wall, cpu, load_s))
        print(rows[-1], flush=True)
        return texts

    threads = args.threads
    transcripts = asr_row("faster-whisper base, int8, one at a time",
                          AsrConfig(model="whisper-base-ct2", compute_type="int8", cpu_threads=threads, batch_size=1))
    fast = "float16" if device.startswith("cuda") else "int8"
    asr_row(f"faster-whisper base, {fast}, batches of 8",
            AsrConfig(model="whisper-base-ct2", compute_type=fast, cpu_threads=threads, batch_size=8))
    asr_row("faster-whisper base, float32 (default on CPU)",
            AsrConfig(model="whisper-base-ct2", compute_type="default", cpu_threads=threads))
    asr_row("faster-whisper tiny.en, int8",
            AsrConfig(model="whisper-tiny.en-ct2", compute_type="int8", cpu_threads=threads))
    import whisper

    tokenizer = whisper.tokenizer.get_tokenizer(multilingual=False)
    cap = max(len(tokenizer.encode(" " + t)) for t in transcripts) + 1
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = random_tiny_en(Path(tmp) / "tiny.en-random.pt")
        asr_row(f"openai-whisper tiny.en dims, random weights, greedy, {cap} tokens",
                AsrConfig(backend="whisper", model=str(ckpt), beam_size=1, batch_size=8, cpu_threads=threads),
                lambda asr: setattr(asr, "options", dataclasses.replace(asr.options, sample_len=cap)))

    for label, config in (("Piper joe (medium, 22.05 kHz)", TtsConfig(cpu_threads=threads)),
                          ("Kokoro-82M int8 jf_alpha (24 kHz)",
                           TtsConfig(piper_voices=(), kokoro_voices=("jf_alpha",), cpu_threads=threads)),
                          ("espeak-ng en-us+f2", TtsConfig(piper_voices=(), espeak_voices=("en-us+f2",)))):
        tts, load_s, _ = timed(lambda: Tts(config, device))
        tts.synthesize("Warm up.", tts.speakers[0])
        speech, wall, cpu = timed(lambda: [tts.synthesize(t, tts.speakers[0]) for t in transcripts])
        rows.append(("TTS", label, sum(a.duration for a in speech), wall, cpu, load_s))
        print(rows[-1], flush=True)

    lines = [
        f"# ASR / TTS backends of the asr_tts cascade: real-time factor on {device}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores visible, Python {platform.python_version()}; "
        f"load average at the end {os.getloadavg()[0]:.1f} (shared machine). ASR and ONNX threads {threads}. "
        f"Input: {source}, {seconds:.1f} s of speech. `python bench/asr_tts_bench.py --device {device}`.",
        "",
        "| stage | backend | audio s | wall s | RTF (wall) | CPU s | RTF (CPU) | load s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for stage, label, audio_s, wall, cpu, load_s in rows:
        lines.append(f"| {stage} | {label} | {audio_s:.1f} | {wall:.1f} | {wall / audio_s:.3f} | {cpu:.1f} | "
                     f"{cpu / audio_s:.3f} | {load_s:.1f} |")
    lines += ["", "RTF (CPU) counts the CPU time of all threads of this process and its subprocesses. The random-weight Whisper "
              "row measures the architecture's cost only; its transcripts mean nothing.", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

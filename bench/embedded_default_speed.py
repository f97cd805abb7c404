"""CPU cost of the embedded default's anonymizers (conf/mini.yaml: McAdams, p = 0.6, and the
offline ASR -> TTS cascade, p = 0.4), at its settings: one thread per job, greedy decoding.

  python bench/embedded_default_speed.py [--utts 8] [--out bench/results/embedded_default_cpu]

Input: the first ``--utts`` utterances of ../shared/data/timit (real speech, with transcripts).

* McAdams: real-time factor of ``mcadams`` (CPU s per audio s), and side by side on the same
  frames its batched analysis and synthesis (Burg LPC, poles, residual and synthesis filters over
  all frames at once) against B2's library calls frame by frame (librosa.lpc, tf2zpk, np.poly,
  lfilter), with the largest output difference.
* ASR (faster-whisper base, beam 1): int8 weights (the conf's fast mode) against float32: CPU
  RTF, speed-up and the word error rate of the int8 transcripts against the float32 ones (a text
  output has no SNR; this is what int8 changes), and both against TIMIT's transcripts.
* TTS: the packaged Piper joe and Kokoro-82M voices (ONNX, int8 as packaged) on the transcripts.
* The admixture's expected CPU time per second of input speech: 0.6 McAdams + 0.4 (ASR + the
  voices' synthesis weighted as the conf draws them).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import librosa
import scipy.signal

from voxanon.anonymize.mcadams import (EPS, all_pole_frames, fir_frames, frames_of, mcadams, mcadams_poles,
                                       poly_from_roots, poly_roots)
from voxanon.asr import AsrConfig, load_asr
from voxanon.audio import load_16k
from voxanon.data.kaldi import load_data_dir, resolve_wav
from voxanon.eval.wer import corpus_wer, words
from voxanon.tts.config import TtsConfig
from voxanon.tts.synth import Tts

from asr_tts_bench import cpu_seconds
from knnvc_bench import machine

ROOT = Path(__file__).resolve().parents[1]
TIMIT = ROOT.parent / "shared" / "data" / "timit"


def cpu_time(fn, reps: int = 1):
    """(result, the least CPU seconds of ``reps`` runs)."""
    best = float("inf")
    for _ in range(reps):
        start = cpu_seconds()
        result = fn()
        best = min(best, cpu_seconds() - start)
    return result, best


def b2_per_frame(frames: np.ndarray, order: int, alpha: float) -> np.ndarray:
    """McAdams' analysis and synthesis as B2 computes them: library calls frame by frame."""
    out = []
    for frame in frames:
        a = librosa.lpc(frame + EPS, order=order)
        poles = scipy.signal.tf2zpk(np.array([1]), a)[1]
        new_a = np.real(np.poly(mcadams_poles(poles[None], alpha)[0]))
        out.append(scipy.signal.lfilter([1.0], new_a, scipy.signal.lfilter(a, [1.0], frame)))
    return np.stack(out)


def batched(frames: np.ndarray, order: int, alpha: float) -> np.ndarray:
    a = librosa.lpc(frames + EPS, order=order, axis=1)
    return all_pole_frames(poly_from_roots(mcadams_poles(poly_roots(a), alpha)), fir_frames(a, frames))


def bench_mcadams(audios) -> dict:
    signals = [a.samples for a in audios]
    seconds = sum(len(s) for s in signals) / 16000
    _, cpu = cpu_time(lambda: [mcadams(s, 16000, 0.8) for s in signals], reps=3)
    hann = np.hanning(320)
    window = np.sqrt(hann / (hann.sum() / 160))
    frames = np.concatenate([frames_of(s + EPS, 320, 160) * window for s in signals])
    ref, ref_s = cpu_time(lambda: b2_per_frame(frames, 20, 0.8), reps=3)
    ours, ours_s = cpu_time(lambda: batched(frames, 20, 0.8), reps=3)
    return {"audio_s": round(seconds, 1), "rtf_cpu": round(cpu / seconds, 4),
            "frames": len(frames), "per_frame_b2_s": round(ref_s, 3), "batched_s": round(ours_s, 3),
            "speedup": round(ref_s / ours_s, 2), "max_abs_diff": float(np.abs(ref - ours).max()),
            "peak": float(np.abs(ref).max())}


def bench_asr(audios, refs) -> tuple[dict, list[str]]:
    seconds = sum(a.duration for a in audios)
    rows, texts = {}, {}
    for kind in ("int8", "float32"):
        asr = load_asr(AsrConfig(model="whisper-base-ct2", compute_type=kind, cpu_threads=1, beam_size=1), "cpu")
        asr.transcribe_batch(audios[:1])  # warm-up
        texts[kind], cpu = cpu_time(lambda: asr.transcribe_batch(audios), reps=2)
        wer = corpus_wer([words(r, True, "whisper") for r in refs], [words(t, False, "whisper") for t in texts[kind]])
        rows[kind] = {"rtf_cpu": round(cpu / seconds, 4), "wer_vs_timit": round(wer["wer"], 2)}
    agree = corpus_wer([words(t, True, "whisper") for t in texts["float32"]],
                       [words(t, False, "whisper") for t in texts["int8"]])
    return {"audio_s": round(seconds, 1), **rows, "speedup_int8": round(rows["float32"]["rtf_cpu"] / rows["int8"]["rtf_cpu"], 2),
            "wer_int8_vs_float32": round(agree["wer"], 2)}, texts["int8"]


def bench_tts(texts) -> dict:
    out = {}
    for label, config in (("piper_joe", TtsConfig(cpu_threads=1)),
                          ("kokoro_jf_gongitsune", TtsConfig(piper_voices=(), kokoro_voices=("jf_gongitsune",),
                                                             cpu_threads=1, kokoro_speed=0.85))):
        tts = Tts(config, "cpu")
        tts.synthesize("Warm up.", tts.speakers[0])
        speech, cpu = cpu_time(lambda: [tts.synthesize(t, tts.speakers[0]) for t in texts])
        out[label] = {"audio_s": round(sum(a.duration for a in speech), 1),
                      "rtf_cpu": round(cpu / sum(a.duration for a in speech), 4)}
    return out


# conf/asr_tts_offline.yaml draws each utterance's voice uniformly from 1 Piper and 4 Kokoro
# voices; one Kokoro voice is timed for the four
VOICE_SHARE = {"piper_joe": 0.2, "kokoro_jf_gongitsune": 0.8}


def cascade_cost(res: dict) -> float:
    """CPU s per second of input speech: the ASR, plus each voice's synthesis (timed per second it
    speaks, which differs from the input's length) weighted by how often the conf draws it."""
    input_s = res["asr"]["audio_s"]
    tts = sum(share * res["tts"][name]["rtf_cpu"] * res["tts"][name]["audio_s"] / input_s
              for name, share in VOICE_SHARE.items())
    return round(res["asr"]["int8"]["rtf_cpu"] + tts, 4)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--utts", type=int, default=8)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "embedded_default_cpu")
    args = p.parse_args()
    if not (TIMIT / "wav.scp").is_file():
        sys.exit(f"needs {TIMIT} (../shared/data/timit)")
    torch.set_num_threads(1)  # the embedded default runs one thread per job
    data = load_data_dir(TIMIT)
    utts = data.utts[: args.utts]
    audios = [load_16k(resolve_wav(data, u), data.path) for u in utts]
    refs = [data.table("text")[u] for u in utts]
    load = os.getloadavg()[0]
    res = {"command": f"python bench/embedded_default_speed.py --utts {args.utts}", "machine": machine("cpu"),
           "load_average": [round(load, 1)], "mcadams": bench_mcadams(audios)}
    res["asr"], texts = bench_asr(audios, refs)
    res["tts"] = bench_tts(texts)
    res["cascade_cpu_per_input_s"] = cascade_cost(res)
    res["admixture_cpu_per_input_s"] = round(0.6 * res["mcadams"]["rtf_cpu"] + 0.4 * res["cascade_cpu_per_input_s"], 4)
    res["load_average"].append(round(os.getloadavg()[0], 1))
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))
    return 0


def markdown(res: dict) -> str:
    mc, asr, tts = res["mcadams"], res["asr"], res["tts"]
    lines = ["# The embedded default's anonymizers on the CPU, one thread", "",
             f"Command: `{res['command']}`. Machine: {res['machine']}; load average {res['load_average'][0]} at the "
             f"start, {res['load_average'][1]} at the end. Input: {TIMIT.name}, {mc['audio_s']} s of speech. "
             "RTF = CPU seconds per audio second (the least of the repeats).", "",
             "| part | setting | RTF (CPU) | against | speed-up | output difference |", "|---|---|---|---|---|---|",
             f"| McAdams (whole transform, B2) | | {mc['rtf_cpu']} | | | |",
             f"| McAdams analysis + synthesis, {mc['frames']} frames | frame-batched | {mc['batched_s']} s | B2 per frame "
             f"{mc['per_frame_b2_s']} s | {mc['speedup']}x | max {mc['max_abs_diff']:.1e} (peak {mc['peak']:.2f}) |",
             f"| ASR faster-whisper base, beam 1 | int8 (the conf's) | {asr['int8']['rtf_cpu']} | float32 "
             f"{asr['float32']['rtf_cpu']} | {asr['speedup_int8']}x | WER {asr['wer_int8_vs_float32']} % of int8 against "
             f"float32 transcripts; vs TIMIT: int8 {asr['int8']['wer_vs_timit']} %, float32 {asr['float32']['wer_vs_timit']} % |"]
    for name, row in tts.items():
        lines.append(f"| TTS {name} | ONNX as packaged | {row['rtf_cpu']} | | | |")
    lines += ["", "TTS RTF is per second spoken; per second of input speech (Kokoro speaks slower than TIMIT), with the voices "
              "weighted as the conf draws them (1 Piper, 4 Kokoro; jf_gongitsune timed for the four), the cascade costs "
              f"{res['cascade_cpu_per_input_s']} CPU s and the admixture (0.6 McAdams + 0.4 cascade) "
              f"{res['admixture_cpu_per_input_s']} CPU s per second of input speech.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

"""kNN-VC side by side with the public reference implementation, on the same random weights.

  git clone https://github.com/bshall/knn-vc /tmp/knn-vc          # the reference, not a dependency
  PYTHONPATH=/tmp/knn-vc python bench/knnvc_reference.py [--threads 2] [--rounds 3] [--seconds 10]

Random weights of the real sizes (WavLM-Large, the HiFi-GAN V1 of kNN-VC) are written once in the
release layouts (voxanon.features.wavlm.save_wavlm "original", voxanon.vocoder.hifigan.save_generator)
and each side loads them with its own code; the matching set is 15,000 random frames; the source is
``--seconds`` of libri100 speech (noise without ../shared). In every round, in one process, each
side runs WavLM to layer 6, the k = 4 matcher and the vocoder, alternating which goes first; the
outputs are compared. The reference's matcher module needs torchaudio.sox_effects, which torchaudio
2.9 removed: its matching (one full cosine matrix, top-k, mean) is computed inline instead. Writes bench/results/knnvc_reference_cpu.{json,md}.
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
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def source(seconds: float) -> torch.Tensor:
    n = int(seconds * 16000)
    if (SHARED / "libri100").is_dir():
        from voxanon.data.kaldi import load_data_dir

        data = load_data_dir(SHARED / "libri100")
        x = np.concatenate([data.audio(u).samples for u in data.utts[:8]])[:n]
    else:
        x = 0.1 * np.random.default_rng(0).standard_normal(n)
    return torch.from_numpy(np.asarray(x, dtype=np.float32))


def build(work: Path):
    """Both sides' models from the same files."""
    import hifigan.models
    from hifigan.models import Generator as RefHiFiGAN
    from hifigan.utils import AttrDict
    from wavlm.WavLM import WavLM as RefWavLM, WavLMConfig as RefConfig

    from voxanon.features.wavlm import WavLM, load_wavlm, save_wavlm
    from voxanon.vocoder.hifigan import Generator, load_generator, save_generator

    torch.manual_seed(0)
    save_wavlm(WavLM(), work / "wavlm.pt", "original")
    save_generator(Generator(), work / "vocoder.pt")
    ckpt = torch.load(work / "wavlm.pt", weights_only=True)
    ref_wavlm = RefWavLM(RefConfig(ckpt["cfg"]))
    ref_wavlm.load_state_dict(ckpt["model"])
    cfg = json.loads((Path(hifigan.models.__file__).parent / "config_v1_wavlm.json").read_text())
    ref_voc = RefHiFiGAN(AttrDict(cfg))
    ref_voc.load_state_dict(torch.load(work / "vocoder.pt", weights_only=True)["generator"])
    ref_voc.remove_weight_norm()
    return (load_wavlm(work / "wavlm.pt"), load_generator(work / "vocoder.pt")), (ref_wavlm.eval(), ref_voc.eval())


@torch.inference_mode()
def ours(models, wav: torch.Tensor, pool: torch.Tensor) -> tuple[dict, torch.Tensor, torch.Tensor]:
    from voxanon.audio import Audio
    from voxanon.features.wavlm import extract_layer
    from voxanon.knn.matcher import knn_average

    wavlm, voc = models
    t = [time.perf_counter()]
    feats = torch.as_tensor(extract_layer(wavlm, Audio(wav.numpy(), 16000), 6))
    t.append(time.perf_counter())
    matched = knn_average(feats, pool, 4)
    t.append(time.perf_counter())
    out = voc(matched[None])
    t.append(time.perf_counter())
    return dict(zip(("wavlm", "matcher", "vocoder"), np.diff(t))), feats, out.flatten()


@torch.inference_mode()
def reference(models, wav: torch.Tensor, pool: torch.Tensor) -> tuple[dict, torch.Tensor, torch.Tensor]:
    wavlm, voc = models
    t = [time.perf_counter()]
    feats = wavlm.extract_features(wav[None], output_layer=6, ret_layer_results=False)[0].squeeze(0)
    t.append(time.perf_counter())
    # the reference's matcher.py imports torchaudio.sox_effects (gone in torchaudio 2.9): its
    # computation, one full cosine matrix and top-k, written out here
    sims = (feats / feats.norm(dim=-1, keepdim=True)) @ (pool / pool.norm(dim=-1, keepdim=True)).T
    matched = pool[sims.topk(k=4, dim=-1).indices].mean(dim=1)
    t.append(time.perf_counter())
    out = voc(matched[None])
    t.append(time.perf_counter())
    return dict(zip(("wavlm", "matcher", "vocoder"), np.diff(t))), feats, out.flatten()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        mine, ref = build(Path(tmp))
    wav, pool = source(args.seconds), torch.randn(15000, 1024, generator=torch.Generator().manual_seed(1))
    sides = {"voxanon": (ours, mine), "reference": (reference, ref)}
    ours(mine, wav[:16000], pool), reference(ref, wav[:16000], pool)  # warm-up
    times = {name: [] for name in sides}
    outs = {}
    for r in range(args.rounds):
        for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            fn, models = sides[name]
            t, feats, out = fn(models, wav, pool)
            times[name].append(t)
            outs[name] = (feats, out)
    mean = {n: {k: float(np.mean([t[k] for t in ts])) for k in ts[0]} for n, ts in times.items()}
    feat_err = float((outs["voxanon"][0] - outs["reference"][0]).abs().max())
    n = min(len(outs["voxanon"][1]), len(outs["reference"][1]))
    wav_err = float((outs["voxanon"][1][:n] - outs["reference"][1][:n]).abs().max())
    res = {"threads": args.threads, "rounds": args.rounds, "seconds": args.seconds, "mean_s": mean,
           "max_feature_diff": feat_err, "max_wav_diff": wav_err, "load_average": os.getloadavg()}
    total = {n: sum(m.values()) for n, m in mean.items()}
    lines = ["# kNN-VC side by side with the reference implementation (cpu)", "",
             f"`PYTHONPATH=<knn-vc checkout> python bench/knnvc_reference.py --threads {args.threads} --rounds "
             f"{args.rounds} --seconds {args.seconds:g}`, {platform.machine()}, {os.cpu_count()} cores, load average "
             f"{res['load_average'][0]:.1f} at the end, torch {torch.__version__}.", "",
             f"Same random weights (WavLM-Large, HiFi-GAN V1) in the release layouts, {args.seconds:g} s of speech, "
             "a 15k-frame matching set; mean of the rounds, the sides alternating in one process.", "",
             "| side | WavLM to layer 6 s | matcher s | vocoder s | total s | total / reference |", "|---|---|---|---|---|---|"]
    for name, m in mean.items():
        lines.append(f"| {name} | {m['wavlm']:.3f} | {m['matcher']:.3f} | {m['vocoder']:.3f} | {total[name]:.3f} | "
                     f"{total[name] / total['reference']:.2f} |")
    lines += ["", f"Largest difference: layer-6 features {feat_err:.2e}, waveform {wav_err:.2e} (before loudness "
              "normalization, which each side does its own way).", ""]
    out = ROOT / "bench" / "results"
    (out / "knnvc_reference_cpu.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "knnvc_reference_cpu.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train a kNN-VC (prematched) HiFi-GAN vocoder on WavLM features of a corpus.

  python -m voxanon.bin.train_vocoder prematch [--k 4] [--device auto] DATA FEATS_SCP OUTDIR
  python -m voxanon.bin.train_vocoder train [--steps N] [--batch-size 16] ... DATA PREMATCH_SCP OUTDIR

``prematch`` writes OUTDIR/prematch.1.{ark,scp}: each frame replaced by its k-NN mean over the other
utterances of the same chapter (LibriSpeech ids spk-chapter-utt, as the kNN-VC reference) or speaker. ``train`` trains on (prematched features, audio) pairs and writes
OUTDIR/g_<step>.pt in the published {"generator": ...} layout plus OUTDIR/state.pt; re-run to
resume. For several GPUs: torchrun --nproc_per_node N -m voxanon.bin.train_vocoder train ...
"""
from __future__ import annotations

import argparse
import logging
import sys

from voxanon.data.kaldi import DataDirError, load_data_dir
from voxanon.device import resolve_device
from voxanon.progress import setup_logging
from voxanon.vocoder.train import TrainOptions, prematch, train

log = logging.getLogger("voxanon.train_vocoder")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    pm = sub.add_parser("prematch")
    pm.add_argument("--k", type=int, default=4)
    tr = sub.add_parser("train")
    defaults = TrainOptions()
    for name in ("steps", "batch_size", "segment_frames", "channels", "save_every", "workers", "seed"):
        tr.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    for name in ("lr", "lr_decay"):
        tr.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(defaults, name))
    for sp in (pm, tr):
        sp.add_argument("--device", default="auto")
        sp.add_argument("data")
        sp.add_argument("feats_scp")
        sp.add_argument("out_dir")
    args = p.parse_args(argv)
    setup_logging()
    device = resolve_device(args.device)
    try:
        data = load_data_dir(args.data)
        if args.command == "prematch":
            log.info("wrote %s", prematch(data, args.feats_scp, args.out_dir, args.k, device))
        else:
            opts = TrainOptions(**{k: getattr(args, k) for k in TrainOptions.__dataclass_fields__})
            train(data, args.feats_scp, args.out_dir, opts, device)
    except (DataDirError, ValueError, OSError) as err:
        log.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""WavLM layer features of one shard of a data dir, or the combined ``feats.scp`` (voxanon.features.extract).

  python -m voxanon.bin.make_wavlm --job J --nj N [--checkpoint wavlm-large] [--layer 6] \
      [--dtype float32] [--vad-trigger-level 0] DATA FEATDIR
  python -m voxanon.bin.make_wavlm --finalize --nj N DATA FEATDIR
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from voxanon.bin import exit_code
from voxanon.data.features import DTYPES
from voxanon.features.extract import Extraction, check_stamp, finalize, run_shard
from voxanon.registry import ModelError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="wavlm-large", help="registry name or local file")
    p.add_argument("--layer", type=int, default=6)
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="storage of the features")
    p.add_argument("--vad-trigger-level", type=float, default=0.0,
                   help="trim leading/trailing silence with sox's VAD at this level first (0 = no)")
    p.add_argument("--job", type=int, default=1)
    p.add_argument("--nj", type=int, default=1)
    p.add_argument("--finalize", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--chunk-seconds", type=float, default=30.0)
    p.add_argument("--context-seconds", type=float, default=4.0)
    p.add_argument("--batch-seconds", type=float, default=120.0)
    p.add_argument("--allow-pipes", default="false", choices=("true", "false"))
    p.add_argument("--overwrite", default="false", choices=("true", "false"))
    p.add_argument("data")
    p.add_argument("feat_dir")
    a = p.parse_args(argv)
    feat_dir = Path(a.feat_dir)
    opts = Extraction(a.checkpoint, a.layer, a.dtype, a.vad_trigger_level, a.device, a.chunk_seconds,
                      a.context_seconds, a.batch_seconds, a.allow_pipes == "true")

    def run() -> int:
        if a.finalize:
            return finalize(feat_dir, a.nj)
        if not 1 <= a.job <= a.nj:
            raise ValueError(f"--job {a.job} is outside 1..{a.nj}")
        (feat_dir / "log").mkdir(parents=True, exist_ok=True)
        check_stamp(feat_dir, opts.stamp, a.overwrite == "true")
        return run_shard(opts, a.data, feat_dir, a.job, a.nj)

    return exit_code(run, "voxanon.make_wavlm", (ValueError, OSError, ModelError))


if __name__ == "__main__":
    sys.exit(main())

"""The WavLM conversion model's stage 4: training pairs, k-means units, training.

  python -m voxanon.bin.train_converter pairs --conf C --feats F --pairs-dir P --job J --nj N [--device D]
      kNN-VC targets k(w(u), a) for job J's share of F (feats.scp of the training set), resumable
  python -m voxanon.bin.train_converter finalize --conf C --feats F --data DIR --pairs-dir P --nj N
      joins the shards; stores the target's frames (reconstruction), the identity of the WavLM
      that made F (inference refuses other features) and, for the discrete objective, the
      target's spherical k-means units
  python -m voxanon.bin.train_converter train --conf C --pairs-dir P --out-dir O [--device D]
      trains (or resumes) the converter; several GPUs: launch with ``torchrun --nproc-per-node N``

The target speaker a is ``train.pairs.target``: a speaker of the stage-3 matching sets
(<targets.dir>/<data.target_pool>). local/train_converter.sh runs the three in order through
$cuda_cmd.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from voxanon.bin import exit_code
from voxanon.config import ConfigError
from voxanon.experiment import Experiment, load_experiment


def target_frames(exp: Experiment) -> tuple[Path, np.ndarray]:
    """Where stage 3 put the matching sets, and the target speaker's set (N, D) in them."""
    from voxanon.knn.matching_set import MatchingSets

    if not exp.data.target_pool:
        raise ConfigError("data.target_pool: the conf names no target-speaker pool (the converter's target is in it)")
    sets = MatchingSets(Path(exp.targets.dir) / exp.data.target_pool)
    target = exp.train.pairs.target
    if target not in sets.speakers:
        raise ValueError(f"train.pairs.target {target!r} is not a speaker of the matching sets in {sets.path} "
                         f"({len(sets.speakers)} speakers, e.g. {', '.join(sets.speakers[:5])})")
    return Path(sets.path), sets.get(target).numpy()


def prepare_pairs(args, exp: Experiment) -> np.ndarray:
    """The target's frames, once the pairs dir is known to hold pairs of these settings."""
    from voxanon.models.pairs import check_settings

    cfg = exp.train
    sets_dir, frames = target_frames(exp)
    check_settings(Path(args.pairs_dir), {
        "target": cfg.pairs.target, "k": cfg.pairs.k, "dtype": cfg.pairs.dtype, "feats": str(Path(args.feats).resolve()),
        "sets": str(sets_dir.resolve()), "discrete": cfg.objectives.discrete, "kmeans": "spherical",
        "seed": cfg.optim.seed})
    return frames


def run(args) -> int:
    import torch

    from voxanon.device import resolve_device

    exp = load_experiment(args.conf)
    cfg = exp.train
    if not cfg.pairs.target:
        raise ConfigError("train.pairs.target: name the target speaker (a matching set of stage 3)")
    if args.command == "pairs":
        from voxanon.data.features import load_scp
        from voxanon.knn.matcher import knn_average
        from voxanon.models.pairs import make_shard

        pool = torch.from_numpy(prepare_pairs(args, exp)).to(resolve_device(args.device))
        utts = sorted(load_scp(args.feats).keys())
        part = utts[(args.job - 1) * len(utts) // args.nj: args.job * len(utts) // args.nj]
        make_shard(Path(args.feats), part, pool, cfg.pairs.k, knn_average, Path(args.pairs_dir), args.job,
                   cfg.pairs.dtype)
    elif args.command == "finalize":
        from voxanon.data.kaldi import read_table
        from voxanon.models.feature_id import features_identity
        from voxanon.models.pairs import finalize
        from voxanon.models.units import fit_units

        frames, disc = prepare_pairs(args, exp), cfg.objectives.discrete
        centroids = fit_units(frames, disc.units, disc.kmeans_frames, cfg.optim.seed, cfg.pairs.target) \
            if disc.enabled else None
        finalize(Path(args.pairs_dir), args.nj, Path(args.feats), read_table(Path(args.data) / "utt2spk"), frames,
                 centroids, features_identity(args.feats))
    else:
        from voxanon.models.training import train

        train(cfg, Path(args.pairs_dir), Path(args.out_dir), resolve_device(args.device))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("pairs", "finalize", "train"))
    p.add_argument("--conf", required=True, help="experiment conf (its train section is used)")
    p.add_argument("--pairs-dir", required=True, help="where the training pairs are (written by pairs/finalize)")
    p.add_argument("--feats", help="feats.scp of the training set (pairs, finalize)")
    p.add_argument("--data", help="Kaldi data dir of the training set, for utt2spk (finalize)")
    p.add_argument("--job", type=int, default=1, help="job number, from 1 (pairs)")
    p.add_argument("--nj", type=int, default=1, help="number of pair jobs (pairs, finalize)")
    p.add_argument("--out-dir", help="training output: checkpoints, final.pt, train_log.csv (train)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (pairs, train)")
    args = p.parse_args(argv)
    need = {"pairs": ("feats",), "finalize": ("feats", "data"), "train": ("out_dir",)}[args.command]
    for name in need:
        if getattr(args, name) is None:
            p.error(f"{args.command} needs --{name.replace('_', '-')}")
    return exit_code(lambda: run(args), "voxanon.train", (ValueError, RuntimeError, OSError))


if __name__ == "__main__":
    sys.exit(main())

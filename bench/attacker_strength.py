"""How much would a better attacker cut the privacy figure? Real speech, several seeds.

  OMP_NUM_THREADS=2 python bench/attacker_strength.py anonymize [--work exp/bench_attacker_strength]
                                                                [--parts exp/bench_admixture_attack/parts]
  OMP_NUM_THREADS=2 python bench/attacker_strength.py evaluate [--work ...] [--p "0 0.4 1"] [--seeds "1986 1987"]

The systems and sets of bench/admixture_attack.py (McAdams = p 0, the offline cascade = p 1 and
their admixture; attacker training on libri100 + vctk + arctic + emodb, trials on timit), with more
utterances of the speakers who have several (UTTS_PER_SPEAKER), so that the attacker's 10 %
validation split holds same-speaker pairs; ``anonymize`` shares that bench's part cache. Per p and
seed, three semi-informed attackers with the same small ECAPA-TDNN:
  recipe     the bench's attacker recipe, trained from random weights (``ASV`` epochs);
  finetuned  the same recipe started from an ASV trained on the original training data (its
             classifier replaced), as ``asv.init_model`` / the semi-informed-finetuned scenario;
  longer     the recipe trained for LONGER_EPOCHS epochs.
Each records its validation EER after every epoch (voxanon.eval.convergence). Writes
bench/results/attacker_strength.{json,md} after every model, so a cut run keeps what it measured.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import admixture_attack
from admixture_attack import ASV, METRIC_ARGS, ROOT, SHARED, TRAIN_SETS, TRIAL_SET, anonymize, assemble, bench_set, \
    original_trials, part_outputs, renamed
from voxanon.data.kaldi import DataDir, load_data_dir, resolve_wav, write_data_dir
from voxanon.progress import setup_logging

UTTS_PER_SPEAKER = {"libri100": 1, "emodb": 20, "arctic": 30}  # vctk: all 10
LONGER_EPOCHS = 3 * ASV.epochs
VARIANTS = ("recipe", "finetuned", "longer")
log = logging.getLogger("bench")


def original_training_set(root: Path) -> Path:
    """The four training sets as recorded (the fine-tuned attacker's starting ASV learns on them)."""
    wav, spk = {}, {}
    for name in TRAIN_SETS:
        data = bench_set(name)
        r = renamed(DataDir({u: str(Path(resolve_wav(data, u)).resolve()) for u in data.utts}, data.utt2spk), name)
        wav.update(r.wav_scp)
        spk.update(r.utt2spk)
    write_data_dir(DataDir(wav, spk), root / "train_orig")
    return root / "train_orig"


def measure(work: Path, ps: list[float], seeds: list[int], write) -> None:
    from voxanon.eval.asv_model import load_asv
    from voxanon.eval.asv_train import train_asv
    from voxanon.eval.scoring import EmbeddingStore, evaluate_asv, find_trial_lists

    root = work / "data"
    original_trials(work)
    parts = part_outputs(work)
    for p in ps:
        assemble(work, p, parts)
    orig_data = original_training_set(root)
    lists = find_trial_lists([TRIAL_SET], root)
    rows: list[dict] = []

    def train(cfg, data: Path, out: Path) -> tuple[dict, float]:
        start = time.time()
        return train_asv(cfg, load_data_dir(data), out), time.time() - start

    for seed in seeds:
        base = replace(ASV, seed=seed, drop_last=True)  # no one-row last batch (training BatchNorm fails on it)
        orig_dir = work / "asv_strength" / f"orig_s{seed}"
        orig_info, orig_s = train(base, orig_data, orig_dir)
        for p in ps:
            cfgs = {"recipe": base, "finetuned": replace(base, init_model=str(orig_dir.resolve())),
                    "longer": replace(base, epochs=LONGER_EPOCHS)}
            for variant, cfg in cfgs.items():
                out = work / "asv_strength" / f"p{p:g}_{variant}_s{seed}"
                info, train_s = train(cfg, root / f"train_p{p:g}", out)
                store = EmbeddingStore(load_asv(out, "cpu"), out, work / "emb_strength" / out.name, -30.0, 1.0)
                start = time.time()
                res = evaluate_asv(lists, ["semi-informed"], {"anon": store}, root, f"_p{p:g}",
                                   work / "exp_strength" / out.name, METRIC_ARGS)
                m = res["trial_sets"][TRIAL_SET]["semi-informed"]
                rows.append({"p": p, "seed": seed, "variant": variant, "epochs": cfg.epochs, "eer": m["eer"],
                             "eer_ci": m.get("eer_ci"), "valid_eer": info["convergence"]["valid_eer"],
                             "converged": info["convergence"]["converged"], "best_epoch": info["best"]["epoch"],
                             "train_s": train_s + (orig_s if variant == "finetuned" else 0.0),
                             "score_s": time.time() - start})
                log.info("%s", rows[-1])
                write({"rows": rows, "orig_valid_eer": {str(seed): orig_info["convergence"]["valid_eer"]},
                       "train_utts": orig_info["train_utts"], "speakers": len(orig_info["speakers"])})


def markdown(res: dict) -> str:
    rows = res["rows"]
    seeds = sorted({r["seed"] for r in rows})
    lines = ["# Attacker strength on real speech: recipe vs fine-tuned vs longer training", "",
             "`python bench/attacker_strength.py anonymize` then `evaluate` "
             f"(OMP_NUM_THREADS=1-2), {platform.machine()}, {os.cpu_count()} cores shared with other work, "
             f"Python {platform.python_version()}.", "",
             "Anonymized data of bench/admixture_attack.md: McAdams (p = 0), the offline ASR -> TTS cascade (p = 1) "
             "and their admixture (share p of the cascade); semi-informed attackers trained on "
             f"{res['train_utts']} anonymized training utterances of {res['speakers']} speakers (libri100, vctk, "
             "arctic, emodb: " + ", ".join(f"{n} per speaker of {k}" for k, n in UTTS_PER_SPEAKER.items())
             + "), scored on timit anonymized (896 same-gender trials).", "",
             f"Every attacker is the same small ECAPA-TDNN ({ASV.channels} channels, batch {ASV.batch_size}, "
             f"{ASV.chunk_s:g} s chunks, lr {ASV.lr} cyclic): *recipe* {ASV.epochs} epochs from random weights; "
             f"*finetuned* {ASV.epochs} epochs from an ASV trained {ASV.epochs} epochs on the original (not "
             f"anonymized) training data, classifier replaced; *longer* {LONGER_EPOCHS} epochs from random "
             "weights. These are not VPC figures: they compare attackers on the same data.", "",
             "| p | attacker | " + " | ".join(f"EER % seed {s}" for s in seeds) + " | mean | converged |",
             "|---|---|" + "---|" * len(seeds) + "---|---|"]
    for p in sorted({r["p"] for r in rows}):
        for variant in VARIANTS:
            got = {r["seed"]: r for r in rows if r["p"] == p and r["variant"] == variant}
            if not got:
                continue
            eers = [got[s]["eer"] for s in seeds if s in got]
            conv = ", ".join({True: "yes", False: "no", None: "n/a"}[got[s]["converged"]] for s in seeds if s in got)
            lines.append(f"| {p:g} | {variant} | " + " | ".join(f"{got[s]['eer']:.2f}" if s in got else "-"
                                                                for s in seeds)
                         + f" | {np.mean(eers):.2f} | {conv} |")
    lines += ["", "Validation EER % after each epoch (held-out utterances of the attacker's own training "
              "speakers; `asv.json` history):", "", "| p | attacker | seed | per epoch |", "|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["p"], VARIANTS.index(r["variant"]), r["seed"])):
        curve = " ".join("-" if v is None else f"{v:.1f}" for v in r["valid_eer"])
        lines.append(f"| {r['p']:g} | {r['variant']} | {r['seed']} | {curve} |")
    for seed, curve in sorted(res["orig_valid_eer"].items()):
        lines.append(f"| original data | (start of finetuned) | {seed} | "
                     + " ".join("-" if v is None else f"{v:.1f}" for v in curve) + " |")
    train_s, score_s = sum(r["train_s"] for r in rows), sum(r["score_s"] for r in rows)
    lines += ["", f"Cost: training {train_s:.0f} s, scoring {score_s:.0f} s (wall).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("anonymize", "evaluate"))
    ap.add_argument("--work", default="exp/bench_attacker_strength")
    ap.add_argument("--parts", default="exp/bench_admixture_attack/parts", help="anonymize: the part cache to share")
    ap.add_argument("--p", default="0 0.4 1")
    ap.add_argument("--seeds", default="1986 1987")
    args = ap.parse_args(argv)
    setup_logging()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED}: the real-speech sets are not here")
    admixture_attack.UTTS_PER_SPEAKER.update(UTTS_PER_SPEAKER)  # its set selection, with these sizes
    work = Path(args.work)
    if args.step == "anonymize":
        work.mkdir(parents=True, exist_ok=True)
        if not (work / "parts").exists():
            (work / "parts").symlink_to(Path(args.parts).resolve())
        cost = anonymize(work, 1, 1)
        (work / "anonymize_cost.json").write_text(json.dumps(cost, indent=1) + "\n")
        return 0
    out = ROOT / "bench" / "results"
    orig_curves: dict = {}

    def write(res: dict) -> None:
        orig_curves.update(res["orig_valid_eer"])
        res = {**res, "orig_valid_eer": dict(orig_curves)}
        (out / "attacker_strength.json").write_text(json.dumps(res, indent=1) + "\n")
        (out / "attacker_strength.md").write_text(markdown(res))

    measure(work, [float(p) for p in args.p.split()], [int(s) for s in args.seeds.split()], write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The admixture sweep (the paper's Figure 4): privacy and utility as the mixing probability p grows.

  python -m voxanon.studies.sweep confs --base-conf conf/admixture_p0.4.yaml --p "0 0.1 0.2 0.325 0.4 0.5 0.75 1" \
      [--setup-conf conf/mini.yaml] --dir DIR
  python -m voxanon.studies.sweep plot --dir DIR [--exp-root exp]

``confs`` copies the base admixture conf once per p, with p the probability of its *second*
system (the cascade in the paper's confs) and 1 - p for the first, into ``DIR/conf/p<p>.yaml``
(each with its own experiment name and output suffix, and ``DIR/parts`` as the parts' shared
output cache, so the sweep costs about two passes, not one per p; and the first experiment's
ASV_orig and mixture-aware part ASVs, trained once), and lists them in ``DIR/experiments.tsv``.
``plot`` reads each experiment's results.json and writes ``DIR/sweep.png`` (the paper's Figure-4
axes: EER against UAR and against WER, each point labelled by p) with two curves, the VPC's
semi-informed attacker and the mixture-aware one (voxanon.eval.mixture_attack: it trains one ASV
per part and asks a component classifier which part made each utterance), and the straight line
between the two pure systems p = 0 and p = 1 for the semi-informed attacker (what mixing would give
if privacy and utility mixed linearly); ``DIR/sweep.csv`` holds the averages.
"""
from __future__ import annotations

import argparse
import copy
import csv
import io
import logging
import sys
from pathlib import Path

from voxanon.config import ConfigError, read_conf
from voxanon.fileio import atomic_write_text
from voxanon.experiment import write_conf
from voxanon.progress import setup_logging
from voxanon.studies.confs import derive_conf, setup_of, share_asv_orig, share_part_asvs
from voxanon.eval.plots import save_figure
from voxanon.studies.metrics import Metrics, ResultsError, load_metrics, read_results

log = logging.getLogger("voxanon.studies")
PAPER_PS = (0.0, 0.1, 0.2, 0.325, 0.4, 0.5, 0.75, 1.0)
SCENARIOS = ("semi-informed", "mixture-aware")  # the attackers plotted: the VPC's, and the one that undoes mixing


def with_p(base: dict, p: float) -> dict:
    """The base admixture conf with probability p for its second system."""
    anon = base.get("anonymizer") or {}
    systems = (anon.get("params") or {}).get("systems")
    if anon.get("system") != "admixture" or not isinstance(systems, list) or len(systems) != 2:
        raise ConfigError("the sweep's base conf must be an admixture of exactly 2 systems "
                          "(anonymizer.system: admixture, anonymizer.params.systems: [first, second])")
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"p = {p} is not a probability")
    conf = copy.deepcopy(base)
    first, second = conf["anonymizer"]["params"]["systems"]
    first["p"], second["p"] = round(1.0 - p, 10), p
    conf["anonymizer"]["suffix"] = f"_admix_p{p:g}"  # each p anonymizes into its own data dirs
    return conf


def make_confs(base_conf: str, ps: list[float], setup_conf: str | None, out_dir: Path, name: str) -> list[tuple[float, str]]:
    base = read_conf(base_conf)
    setup, tag = setup_of(setup_conf)
    experiments = [(p, f"{name}_p{p:g}{tag}") for p in ps]
    confs = share_part_asvs(share_asv_orig([derive_conf(with_p(base, p), setup, exp) for p, exp in experiments]))
    for conf in confs:  # the draws are nested across p: each part anonymizes each utterance once
        conf["anonymizer"]["params"]["cache_dir"] = str(out_dir / "parts")
    for (p, _), conf in zip(experiments, confs):
        write_conf(conf, out_dir / "conf" / f"p{p:g}.yaml")
    atomic_write_text(out_dir / "experiments.tsv", "".join(f"{p:g}\t{exp}\n" for p, exp in experiments))
    return experiments


def read_experiments(path: Path) -> list[tuple[float, str]]:
    if not path.is_file():
        raise ConfigError(f"{path} not found: run the 'confs' step first")
    return [(float(p), exp) for p, exp in (line.split("\t") for line in path.read_text().splitlines() if line)]


def collect(experiments: list[tuple[float, str]], exp_root: Path) -> list[tuple[float, dict[str, Metrics]]]:
    """Per p with results: {scenario: metrics} (semi-informed always; mixture-aware where scored)."""
    points = []
    for p, exp in experiments:
        path = exp_root / exp / "results" / "results.json"
        try:
            results = read_results(path)
            metrics = {SCENARIOS[0]: load_metrics(results, SCENARIOS[0], str(path))}
        except ResultsError as err:
            log.warning("p = %g: %s", p, err)
            continue
        for scenario in SCENARIOS[1:]:
            try:
                metrics[scenario] = load_metrics(results, scenario, str(path))
            except ResultsError as err:
                log.warning("p = %g: %s", p, err)
        points.append((p, metrics))
    return points


def averages(metrics: dict[str, Metrics]) -> dict[str, float | None]:
    """EER per attacker, UAR and WER (the same for every attacker) of one p."""
    first = metrics[SCENARIOS[0]]
    return {**{f"eer {sc}": m.average("eer") for sc, m in metrics.items()},
            "uar": first.average("uar"), "wer": first.average("wer")}


def plot(points: list[tuple[float, dict[str, Metrics]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    avg = {p: averages(m) for p, m in points}
    ends = (avg.get(0.0), avg.get(1.0))
    semi = f"eer {SCENARIOS[0]}"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, (fam, label) in zip(axes, (("uar", "UAR % (utility, higher is better)"), ("wer", "WER % (utility, lower is better)"))):
        ax.set_xlabel(label)
        ax.set_ylabel("EER % (privacy, higher is better)")
        ax.grid(alpha=0.3)
        drawn = False
        for scenario, style, color in zip(SCENARIOS, ("o-", "s-"), ("C0", "C2")):
            xy = [(p, a[fam], a.get(f"eer {scenario}")) for p, a in avg.items()
                  if a[fam] is not None and a.get(f"eer {scenario}") is not None]
            if not xy:
                continue
            drawn = True
            ax.plot([x for _, x, _ in xy], [y for _, _, y in xy], style, color=color, label=f"{scenario} attacker")
            for p, x, y in xy:
                ax.annotate(f"p={p:g}", (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8, color=color)
        if not drawn:
            ax.text(0.5, 0.5, f"no {fam.upper()} in the results", ha="center", transform=ax.transAxes)
            continue
        if all(e is not None and e[fam] is not None and e[semi] is not None for e in ends):
            a, b = ends
            ps = [p for p in avg if avg[p][fam] is not None]
            ax.plot([(1 - p) * a[fam] + p * b[fam] for p in ps], [(1 - p) * a[semi] + p * b[semi] for p in ps],
                    "x--", color="C1", label="linear interpolation of p=0 and p=1 (semi-informed)")
        ax.legend(fontsize=8)
    fig.suptitle("Random admixture: privacy vs utility as p grows, against two attackers")
    save_figure(fig, path)


def to_csv(points: list[tuple[float, dict[str, Metrics]]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    keys = [*(f"eer {sc}" for sc in SCENARIOS), "uar", "wer"]
    writer.writerow(["p", *(f"EER {sc} avg" for sc in SCENARIOS), "UAR avg", "WER avg"])
    for p, m in points:
        a = averages(m)
        writer.writerow([f"{p:g}", *("" if a.get(k) is None else f"{a[k]:.2f}" for k in keys)])
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("confs", help="write one experiment conf per p")
    c.add_argument("--base-conf", required=True, help="an admixture conf of 2 systems; p = share of the second")
    c.add_argument("--p", default=" ".join(f"{p:g}" for p in PAPER_PS), help="space-separated probabilities")
    c.add_argument("--setup-conf", default="", help="take data/models/asv/eval/report from this conf")
    c.add_argument("--name", default="admixture_sweep", help="experiment names are <name>_p<p>")
    c.add_argument("--dir", required=True)
    t = sub.add_parser("plot", help="plot the sweep from the experiments' results.json")
    t.add_argument("--dir", required=True)
    t.add_argument("--exp-root", default="exp")
    args = ap.parse_args(argv)
    setup_logging()
    try:
        out = Path(args.dir)
        if args.command == "confs":
            try:
                ps = [float(p) for p in args.p.split()]
            except ValueError as err:
                raise ConfigError(f"--p {args.p!r}: {err}") from None
            for p, exp in make_confs(args.base_conf, ps, args.setup_conf, out, args.name):
                print(f"{p:g}\t{out / 'conf' / f'p{p:g}.yaml'}")
            return 0
        experiments = read_experiments(out / "experiments.tsv")
        points = collect(experiments, Path(args.exp_root))
        if not points:
            raise ResultsError(f"no experiment of {out / 'experiments.tsv'} has results yet")
        plot(points, out / "sweep.png")
        atomic_write_text(out / "sweep.csv", to_csv(points))
        sys.stdout.write(to_csv(points))
        log.info("wrote %s and %s (%d of %d points)", out / "sweep.png", out / "sweep.csv", len(points), len(experiments))
        return 0
    except (ConfigError, ResultsError, OSError) as err:
        log.error("%s", err)
        return 2


if __name__ == "__main__":
    sys.exit(main())

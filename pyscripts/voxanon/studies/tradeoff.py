"""The privacy-utility trade-off of finished experiments, against the strongest attacker each met.

A privacy figure is only as good as the attacker behind it: for every experiment the plot takes the
lowest average EER over the attackers that ran on anonymized data
(``voxanon.eval.results.strongest_attacker``, as results.json's headline), beside the VPC's semi-informed figure (hollow marker). The pure
systems are joined by a dashed line: a mixture of two of them is worth its randomness only where
its point lies above that line.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voxanon.eval.results import ANON_ATTACKERS, strongest_attacker
from voxanon.eval.plots import save_figure
from voxanon.studies.metrics import Metrics, ResultsError, load_metrics


@dataclass(frozen=True)
class Point:
    label: str
    mixture: bool  # an admixture (else a pure system)
    strongest: str  # the attacker with the lowest EER
    eer: float  # its average EER %
    eer_vpc: float | None  # the semi-informed (VPC) average EER %
    uar: float | None
    wer: float | None


def strongest(results: dict, where: str) -> tuple[str, Metrics]:
    """The attacker with the lowest average EER on the anonymized data, and its metrics."""
    found = {}
    for attacker in ANON_ATTACKERS:
        try:
            found[attacker] = load_metrics(results, attacker, where)
        except ResultsError:
            continue
    attacker = strongest_attacker({a: m.average("eer") for a, m in found.items()})
    if attacker is None:
        raise ResultsError(f"{where}: no EER of an attacker on anonymized data")
    return attacker, found[attacker]


def point(label: str, results: dict, mixture: bool, where: str) -> Point:
    attacker, metrics = strongest(results, where)
    try:
        vpc = load_metrics(results, "semi-informed", where).average("eer")
    except ResultsError:
        vpc = None
    return Point(label, mixture, attacker, metrics.average("eer"), vpc, metrics.average("uar"), metrics.average("wer"))


def plot(points: list[Point], path: Path) -> None:
    """Two panels, EER against UAR and against WER; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, (fam, label) in zip(axes, (("uar", "UAR % (higher is better)"), ("wer", "WER % (lower is better)"))):
        ax.set_xlabel(label)
        ax.set_ylabel("EER % of the strongest attacker (higher is better)")
        ax.grid(alpha=0.3)
        shown = [p for p in points if getattr(p, fam) is not None]
        if not shown:
            ax.text(0.5, 0.5, f"no {fam.upper()} in the results", ha="center", transform=ax.transAxes)
            continue
        pure = sorted((p for p in shown if not p.mixture), key=lambda p: getattr(p, fam))
        if len(pure) > 1:
            ax.plot([getattr(p, fam) for p in pure], [p.eer for p in pure], "--", color="grey",
                    label="between the pure systems")
        for p in shown:
            x = getattr(p, fam)
            color = "C3" if p.mixture else "C0"
            ax.plot(x, p.eer, "s" if p.mixture else "o", color=color)
            if p.eer_vpc is not None and p.eer_vpc != p.eer:
                ax.plot(x, p.eer_vpc, "o", mfc="none", color=color)
                ax.plot([x, x], [p.eer, p.eer_vpc], ":", color=color, lw=0.8)
            ax.annotate(f"{p.label} ({p.strongest})", (x, p.eer), textcoords="offset points", xytext=(5, 4), fontsize=7)
        ax.plot([], [], "o", color="C0", label="pure system")
        ax.plot([], [], "s", color="C3", label="admixture")
        ax.plot([], [], "o", mfc="none", color="grey", label="VPC semi-informed attacker")
        ax.legend(fontsize=7)
    fig.suptitle("Privacy against the strongest attacker that ran vs utility")
    save_figure(fig, path)


def to_tsv(points: list[Point]) -> str:
    fmt = lambda v: "" if v is None else f"{v:.2f}"  # noqa: E731
    lines = ["experiment\tadmixture\tstrongest attacker\tEER strongest\tEER semi-informed\tUAR\tWER"]
    lines += [f"{p.label}\t{str(p.mixture).lower()}\t{p.strongest}\t{fmt(p.eer)}\t{fmt(p.eer_vpc)}\t{fmt(p.uar)}"
              f"\t{fmt(p.wer)}" for p in points]
    return "\n".join(lines) + "\n"

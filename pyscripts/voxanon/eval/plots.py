"""DET curves and score histograms from the stage-7 score files (matplotlib, Agg backend)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import norm  # noqa: E402

from voxanon.eval.eer import eer_thresholds, error_counts, read_scores  # noqa: E402

DET_TICKS = [0.1, 0.5, 1, 2, 5, 10, 20, 40, 60, 80]  # percent


def det_points(tar: np.ndarray, non: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(miss rate, false-alarm rate) at every candidate threshold, as fractions."""
    thr = np.concatenate([[-np.inf], eer_thresholds(tar, non)])
    fr, fa = error_counts(tar, non, thr)
    return fr / len(tar), fa / len(non)


def det_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str, path: Path) -> None:
    """One DET plot (probit axes) with a curve per label; ``curves`` maps label -> (tar, non)."""
    fig, ax = plt.subplots(figsize=(5, 5))
    eps = 1e-4
    for label, (tar, non) in curves.items():
        miss, fa = det_points(tar, non)
        ax.plot(norm.ppf(np.clip(fa, eps, 1 - eps)), norm.ppf(np.clip(miss, eps, 1 - eps)), label=label)
    ticks = norm.ppf(np.array(DET_TICKS) / 100)
    for set_ticks, set_labels, set_lim in ((ax.set_xticks, ax.set_xticklabels, ax.set_xlim),
                                          (ax.set_yticks, ax.set_yticklabels, ax.set_ylim)):
        set_ticks(ticks)
        set_labels([str(t) for t in DET_TICKS])
        set_lim(ticks[0], ticks[-1])
    ax.plot([ticks[0], ticks[-1]], [ticks[0], ticks[-1]], color="grey", lw=0.5, ls=":")
    ax.set_xlabel("false acceptance rate (%)")
    ax.set_ylabel("false rejection rate (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def histogram_plot(panels: dict[str, tuple[np.ndarray, np.ndarray]], title: str, path: Path) -> None:
    """Target vs non-target score histograms, one panel per label."""
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 2.8), squeeze=False)
    for ax, (label, (tar, non)) in zip(axes[0], panels.items()):
        lo, hi = min(tar.min(), non.min()), max(tar.max(), non.max())
        bins = np.linspace(lo, hi if hi > lo else lo + 1e-3, 40)
        ax.hist(non, bins=bins, density=True, alpha=0.6, label="non-target")
        ax.hist(tar, bins=bins, density=True, alpha=0.6, label="target")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("cosine score")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_asv(asv: dict, out_dir: Path) -> list[dict]:
    """DET + histogram per trial list (all scenarios with scores); returns [{title, det, hist}]
    with paths relative to ``out_dir``."""
    made = []
    for name, per in asv.get("trial_sets", {}).items():
        curves = {}
        for scenario, m in per.items():
            path = Path(m.get("scores", ""))
            if not path.is_file():
                continue
            _, tar, non = read_scores(path)
            if len(tar) and len(non):
                curves[scenario] = (tar, non)
        if not curves:
            continue
        det, hist = f"plots/det_{name}.png", f"plots/hist_{name}.png"
        det_plot(curves, f"DET: {name}", out_dir / det)
        histogram_plot(curves, f"scores: {name}", out_dir / hist)
        made.append({"title": name, "det": det, "hist": hist})
    return made


def plot_convergence(conv: dict, path: Path) -> bool:
    """Validation EER per epoch of each attacker stage 6 trained (``asv.convergence`` of
    results.json); False when no attacker has one."""
    curves = {f"{name} ({c['attacker']})": c["valid_eer"] for name, c in conv.items()
              if any(e is not None for e in c["valid_eer"])}
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, eers in curves.items():
        epochs = [i + 1 for i, e in enumerate(eers) if e is not None]
        ax.plot(epochs, [e for e in eers if e is not None], "o-", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation EER (%)")
    ax.set_title("attacker convergence")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def save_figure(fig, path: Path, dpi: int = 120) -> None:
    """Write ``fig`` to ``path`` atomically (``fileio.atomic_path``) and close it."""
    import matplotlib.pyplot as plt

    from voxanon.fileio import atomic_path

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)

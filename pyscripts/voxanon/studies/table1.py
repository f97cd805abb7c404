"""The paper's Table 1: one row per system, EER per trials set, UAR per emotion set, WER per set.

  python -m voxanon.studies.table1 confs --rows ROWS.tsv --conf-dir conf [--setup-conf conf/mini.yaml] --dir DIR
  python -m voxanon.studies.table1 table --dir DIR [--scenario semi-informed] [--exp-root exp]
  python -m voxanon.studies.table1 collect --dir DIR [--exp-root exp] EXP [EXP ...]

``confs`` writes one experiment conf per row into ``DIR/conf/`` (moved onto the setup conf's data
and evaluation when given) and the list ``DIR/experiments.tsv``; egs/jhu_vpc2024/run.sh runs each
through run.sh. ``table`` reads every experiment's ``results/results.json`` and writes
``DIR/table1.txt``, ``.csv`` and ``.md``, and the privacy-utility plot ``DIR/tradeoff.png`` (+ .tsv:
voxanon.studies.tradeoff). ``collect`` does the same for experiments that already finished (any:
yours, with --data or --setup), named by their exp/<name>, without running anything. A rows file has tab-separated lines
``id  label  conf-name  paper``: conf-name ``-`` is the original (un-anonymized) data, whose metrics
come from the "original" scenario of the first experiment that has them; ``paper`` is the paper's
"EER/UAR/WER" averages for comparison, or ``-``.
"""
from __future__ import annotations

import argparse
import csv
import io
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from voxanon.config import ConfigError, read_conf
from voxanon.fileio import atomic_write_text
from voxanon.experiment import write_conf
from voxanon.progress import setup_logging
from voxanon.studies.confs import derive_conf, setup_of, share_asv_orig
from voxanon.studies import tradeoff
from voxanon.studies.metrics import Metrics, ResultsError, has_scenario, load_metrics, read_results

log = logging.getLogger("voxanon.studies")
ORIGINAL = "-"
FAMILIES = (("eer", "EER %"), ("uar", "UAR %"), ("wer", "WER %"))


@dataclass(frozen=True)
class Row:
    id: str
    label: str
    conf: str  # conf name (conf/<name>.yaml) or ORIGINAL
    paper: str = "-"  # the paper's "EER/UAR/WER" averages
    exp: str = ""  # experiment name, once its conf is written


def read_rows(path: str | Path, with_exp: bool = False) -> list[Row]:
    rows = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != (5 if with_exp else 4):
            raise ConfigError(f"{path}:{n}: expected {5 if with_exp else 4} tab-separated fields, got {len(fields)}")
        rows.append(Row(*fields))
    if not rows:
        raise ConfigError(f"{path}: no rows")
    return rows


def make_confs(rows: list[Row], conf_dir: Path, setup_conf: str | None, out_dir: Path) -> list[Row]:
    """Write each row's experiment conf to ``out_dir/conf`` and the list ``out_dir/experiments.tsv``."""
    setup, tag = setup_of(setup_conf)
    missing = [r.conf for r in rows if r.conf != ORIGINAL and not (conf_dir / f"{r.conf}.yaml").is_file()]
    if missing:
        raise ConfigError(f"conf(s) missing in {conf_dir}: {', '.join(f'{m}.yaml' for m in missing)}")
    done, confs = [], []
    for row in rows:
        if row.conf != ORIGINAL:
            system = read_conf(conf_dir / f"{row.conf}.yaml")
            exp = f"{system.get('exp', row.conf)}{tag}"
            confs.append(derive_conf(system, setup, exp))
            row = Row(row.id, row.label, row.conf, row.paper, exp)
        done.append(row)
    confs = iter(share_asv_orig(confs))
    for row in done:
        if row.conf != ORIGINAL:
            write_conf(next(confs), out_dir / "conf" / f"{row.conf}.yaml")
    atomic_write_text(out_dir / "experiments.tsv", "".join(
        f"{r.id}\t{r.label}\t{r.conf}\t{r.paper}\t{r.exp}\n" for r in done))
    return done


def collect(rows: list[Row], exp_root: Path, scenario: str) -> list[tuple[Row, Metrics | None]]:
    """Each row's metrics (None where results are missing, with a warning)."""
    loaded: list[tuple[dict, str] | None] = []
    for row in rows:
        path = exp_root / row.exp / "results" / "results.json"
        try:
            loaded.append((read_results(path), str(path)) if row.conf != ORIGINAL else None)
        except ResultsError as err:
            log.warning("row %s (%s): %s", row.id, row.label, err)
            loaded.append(None)
    out = []
    for row, got in zip(rows, loaded):
        if row.conf == ORIGINAL:
            # the first experiment that scored the original data
            found = next((load_metrics(r, "original", where) for r, where in filter(None, loaded)
                          if has_scenario(r, "original")), None)
            if found is None:
                log.warning("row %s: no experiment has results for the original data", row.id)
            out.append((row, found))
        else:
            out.append((row, load_metrics(got[0], scenario, got[1]) if got else None))
    return out


def short(name: str) -> str:
    """Column label of a set: libri_dev_trials_f -> dev-f, IEMOCAP_test -> test."""
    for prefix in ("libri_", "IEMOCAP_"):
        name = name.removeprefix(prefix)
    return name.replace("trials_", "").replace("_", "-")


def build_table(collected: list[tuple[Row, Metrics | None]]) -> tuple[list[tuple[str, list[str]]], list[list[str]]]:
    """Column groups [(title, labels)] and rows of cells (numbers with 2 decimals, '-' if absent)."""
    sets = {fam: list(dict.fromkeys(s for _, m in collected if m for s in getattr(m, fam))) for fam, _ in FAMILIES}
    groups = [("", ["ID", "system"])]
    groups += [(title, [short(s) for s in sets[fam]] + ["avg"]) for fam, title in FAMILIES if sets[fam]]
    groups.append(("paper", ["EER/UAR/WER"]))
    lines = []
    for row, metrics in collected:
        cells = [row.id, row.label]
        for fam, _ in FAMILIES:
            if not sets[fam]:
                continue
            values = getattr(metrics, fam) if metrics else {}
            cells += [fmt(values.get(s)) for s in sets[fam]]
            # the average only over a complete row, so it compares with the other rows
            complete = metrics is not None and all(s in values for s in sets[fam])
            cells.append(fmt(metrics.average(fam) if complete else None))
        cells.append(row.paper)
        lines.append(cells)
    return groups, lines


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def to_text(groups, lines) -> str:
    flat = [f"{label}" for _, labels in groups for label in labels]
    widths = [max(len(x) for x in col) for col in zip(flat, *lines)]
    top, i = [], 0
    for title, labels in groups:  # group titles over their columns
        span = sum(widths[i: i + len(labels)]) + 2 * (len(labels) - 1)
        top.append(title.center(span))
        i += len(labels)
    out = ["  ".join(top).rstrip(),
           "  ".join(h.rjust(w) if k > 1 else h.ljust(w) for k, (h, w) in enumerate(zip(flat, widths))).rstrip()]
    out += ["  ".join(c.rjust(w) if k > 1 else c.ljust(w) for k, (c, w) in enumerate(zip(cells, widths))).rstrip()
            for cells in lines]
    return "\n".join(out) + "\n"


def flat_header(groups) -> list[str]:
    return [f"{title.split()[0]} {label}".strip() if title else label for title, labels in groups for label in labels]


def to_csv(groups, lines) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(flat_header(groups))
    writer.writerows(lines)
    return buf.getvalue()


def to_markdown(groups, lines) -> str:
    header = flat_header(groups)
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if k < 2 else "---:" for k in range(len(header))) + "|"]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return "\n".join(out) + "\n"


def models_note(rows: list[Row], exp_root: Path) -> str:
    """Which evaluation models made the columns (results.json ``models`` of the rows' experiments)."""
    used: dict[str, list[str]] = {"wer": [], "ser": [], "asv_orig": []}
    for row in rows:
        try:
            models = read_results(exp_root / row.exp / "results" / "results.json").get("models") or {}
        except ResultsError:
            continue
        for key, names in used.items():
            if models.get(key) and models[key] not in names:
                names.append(models[key])
    labels = {"wer": "WER", "ser": "UAR", "asv_orig": "EER of the original data"}
    return "".join(f"{labels[k]} by: {'; '.join(v)}\n" for k, v in used.items() if v) + \
        "EER of the anonymized data by: each experiment's attacker from its stage 6.\n"


def finished_rows(exps: list[str]) -> list[Row]:
    """Rows for finished experiments: the original data first, then each experiment by its name."""
    return [Row("0", "original", ORIGINAL), *(Row(str(i), exp, exp, "-", exp) for i, exp in enumerate(exps, 1))]


def write_tradeoff(out_dir: Path, rows: list[Row], exp_root: Path) -> None:
    points = []
    for row in rows:
        path = exp_root / row.exp / "results" / "results.json"
        if row.conf == ORIGINAL or not path.is_file():
            continue
        config = exp_root / row.exp / "config.yaml"
        system = ((read_conf(config).get("anonymizer") or {}).get("system") if config.is_file() else None)
        try:
            points.append(tradeoff.point(row.label, read_results(path), system == "admixture", str(path)))
        except ResultsError as err:
            log.warning("row %s: %s", row.id, err)
    if points:
        tradeoff.plot(points, out_dir / "tradeoff.png")
        atomic_write_text(out_dir / "tradeoff.tsv", tradeoff.to_tsv(points))
        log.info("wrote %s/tradeoff.{png,tsv}: EER of the strongest attacker each experiment met", out_dir)


def write_table(out_dir: Path, rows: list[Row], exp_root: Path, scenario: str) -> int:
    write_tradeoff(out_dir, rows, exp_root)
    collected = collect(rows, exp_root, scenario)
    groups, lines = build_table(collected)
    note = f"EER: {scenario} attacker; averages over complete rows only.\n" + models_note(rows, exp_root)
    atomic_write_text(out_dir / "table1.txt", to_text(groups, lines) + note)
    atomic_write_text(out_dir / "table1.csv", to_csv(groups, lines))
    atomic_write_text(out_dir / "table1.md", to_markdown(groups, lines) + "\n" + note)
    sys.stdout.write(to_text(groups, lines) + note)
    log.info("wrote %s/table1.{txt,csv,md}", out_dir)
    return sum(m is None for _, m in collected)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("confs", help="write the rows' experiment confs")
    c.add_argument("--rows", required=True)
    c.add_argument("--conf-dir", default="conf")
    c.add_argument("--setup-conf", default="", help="take data/models/asv/eval/report from this conf")
    c.add_argument("--dir", required=True)
    t = sub.add_parser("table", help="assemble the table from the experiments' results.json")
    t.add_argument("--dir", required=True)
    t.add_argument("--scenario", default="semi-informed", help="attack scenario whose EERs the table shows")
    t.add_argument("--exp-root", default="exp")
    f = sub.add_parser("collect", help="the table and the trade-off plot of finished experiments")
    f.add_argument("--dir", required=True)
    f.add_argument("--scenario", default="semi-informed", help="attack scenario whose EERs the table shows")
    f.add_argument("--exp-root", default="exp")
    f.add_argument("exps", nargs="+", help="experiment names (exp/<name>) or their dirs")
    args = p.parse_args(argv)
    setup_logging()
    try:
        if args.command == "confs":
            for row in make_confs(read_rows(args.rows), Path(args.conf_dir), args.setup_conf, Path(args.dir)):
                print(f"{row.id}\t{Path(args.dir) / 'conf' / (row.conf + '.yaml') if row.exp else ORIGINAL}")
            return 0
        if args.command == "collect":
            rows = finished_rows([Path(e).name for e in args.exps])
            atomic_write_text(Path(args.dir) / "experiments.tsv", "".join(
                f"{r.id}\t{r.label}\t{r.conf}\t{r.paper}\t{r.exp}\n" for r in rows))
        rows = read_rows(Path(args.dir) / "experiments.tsv", with_exp=True)
        missing = write_table(Path(args.dir), rows, Path(args.exp_root), args.scenario)
        if missing:
            log.warning("%d row(s) have no results yet; their cells are '-'", missing)
        return 0
    except (ConfigError, ResultsError, OSError) as err:
        log.error("%s", err)
        return 2


if __name__ == "__main__":
    sys.exit(main())

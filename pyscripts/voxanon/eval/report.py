"""The HTML report of an experiment: the privacy figures to quote, results tables, the attackers'
convergence, DET curves and score histograms, and audio players for a few original / anonymized
pairs. One self-contained folder::

    report/index.html   report/plots/*.png   report/audio/<utt>.{orig,anon}.wav
"""
from __future__ import annotations

import html
import os
from pathlib import Path

from voxanon.audio import AudioError, load_16k, write_wav
from voxanon.data.kaldi import load_data_dir, read_table, resolve_wav
from voxanon.eval.plots import plot_asv, plot_convergence
from voxanon.eval.results import mixture_summary, privacy_lines
from voxanon.eval.split import split_lines
from voxanon.fileio import atomic_write_text

CSS = """body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:0.5em 0 1.5em}
td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}th{background:#eee}td.l,th.l{text-align:left}
img{max-width:100%;border:1px solid #ddd;margin:4px}.skip{color:#a00}.note{color:#555}.warn{color:#a60}
figure{display:inline-block;margin:0}"""


def _e(x) -> str:
    return html.escape(str(x))


def _num(x, digits: int = 2) -> str:
    return f"{x:.{digits}f}" if isinstance(x, (int, float)) else _e(x)


def _table(header: list[str], rows: list[list[str]], css_id: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td{' class=l' if i == 0 else ''}>{c}</td>" for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f'<table id="{css_id}"><tr>{head}</tr>{body}</table>'


def asv_section(asv: dict) -> str:
    if "trial_sets" not in asv:
        return _missing("ASV", asv)
    rows = []
    for name, per in asv["trial_sets"].items():
        for scenario, m in per.items():
            if "eer" in m:
                ci = m.get("eer_ci")
                rows.append([_e(name), _e(scenario), _num(m["eer"]), f"{ci[0]:.1f}-{ci[1]:.1f}" if ci else "-",
                             _num(m["min_dcf"], 3), _num(m["cllr"], 3),
                             _num(m["min_cllr"], 3), _num(m["linkability"], 3), str(m["n_target"]),
                             str(m["n_nontarget"])])
            else:
                rows.append([_e(name), _e(scenario), f'<span class="skip">{_e(m.get("error"))}</span>'] + [""] * 7)
    for scenario, m in asv.get("average", {}).items():
        if "eer" in m:
            rows.append(["<b>average</b>", _e(scenario), f"<b>{_num(m['eer'])}</b>", "", _num(m["min_dcf"], 3),
                         _num(m["cllr"], 3), _num(m["min_cllr"], 3), _num(m["linkability"], 3), "", ""])
    for scenario, why in asv.get("skipped", {}).items():
        rows.append(["-", _e(scenario), f'<span class="skip">skipped: {_e(why)}</span>'] + [""] * 7)
    table = _table(["trials", "attacker", "EER %", "95 % interval", "minDCF", "Cllr", "min-Cllr", "linkability",
                    "#target", "#non-target"], rows, "asv-table")
    mix = mixture_summary(asv.get("mixture"))
    return table + "".join(f"<p>{_e(line)}</p>" for line in mix)


def _missing(what: str, part: dict) -> str:
    """A metric without figures: grey when the conf never asked for it, red when it was skipped."""
    if "not_requested" in part:
        return f'<p class="note">{what} not computed: {_e(part["not_requested"])}</p>'
    return f'<p class="skip">{what} skipped: {_e(part.get("skipped", part.get("error")))}</p>'


def convergence_section(conv: dict, out_dir: Path) -> str:
    """The validation EER per epoch of each attacker stage 6 trained, plotted (the warnings are
    at the top of the page)."""
    plot = "plots/convergence.png"
    if not conv or not plot_convergence(conv, out_dir / plot):
        return ""
    verdicts = {True: "converged", False: "had not converged", None: "too few epochs to tell"}
    rows = [[_e(f"{name} ({c['attacker']})"), " ".join("-" if e is None else _num(e) for e in c["valid_eer"]),
             _e(verdicts[c["converged"]])] for name, c in conv.items()]
    return ("<h2>Attacker convergence</h2>" + _table(["attacker", "validation EER % per epoch", ""], rows, "convergence")
            + f"<figure><img src='{plot}' alt='validation EER per epoch'></figure>")


def wer_section(wer: dict) -> str:
    if "anon" not in wer:
        return _missing("WER", wer)
    rows = []
    for side in ("original", "anon"):
        r = wer.get(side)
        if r is None:
            continue
        for name, s in r.get("sets", {}).items():
            if "wer" in s:
                rows.append([_e(name), _e(side), _num(s["wer"]) + (" (partial)" if s.get("partial") else ""),
                             str(s["n_utts"]), str(len(s.get("failed", [])))])
            else:
                rows.append([_e(name), _e(side), f'<span class="skip">{_e(s.get("skipped"))}</span>', "", ""])
        if "mean" in r:
            rows.append(["mean", _e(side), _num(r["mean"]), "", ""])
    ref = ("<p id='wer-reference'>No reference text: the utility figure is the WER of the anonymized audio "
           "against the ASR transcript of the original audio.</p>") if wer.get("reference") == "asr_of_original" else ""
    return (f"<p>ASR: {_e(wer.get('asr', {}).get('name', '-'))}</p>" + ref
            + _table(["set", "audio", "WER %", "#utts", "#failed"], rows, "wer-table"))


def ser_section(ser: dict) -> str:
    if "sets" not in ser:
        return _missing("UAR", ser)
    out = [f"<p>SER: {_e(ser.get('name', '-'))}</p>"]
    for name, s in ser["sets"].items():
        if "skipped" in s:
            out.append(f'<p class="skip">{_e(name)}: {_e(s["skipped"])}</p>')
            continue
        classes = sorted({c for side in ("original", "anon") for c in (s.get(side) or {}).get("per_class", {})})
        rows = []
        for side in ("original", "anon"):
            r = s.get(side) or {}
            if "uar" in r:
                rows.append([_e(name), _e(side), _num(r["uar"]) + (" (partial)" if r.get("partial") else "")]
                            + [_num(r["per_class"].get(c, "-")) for c in classes])
            else:
                rows.append([_e(name), _e(side), f'<span class="skip">{_e(r.get("skipped"))}</span>']
                            + [""] * len(classes))
        out.append(_table(["set", "audio", "UAR %", *[f"ACC {c} %" for c in classes]], rows, f"ser-{name}"))
        out.append(f"<p>{len(s['folds'])} fold models, each scoring the speakers of its spk2fold rows</p>")
    return "\n".join(out)


def _by_speaker(utts: list[str], utt2spk: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for u in utts:
        out.setdefault(utt2spk[u], []).append(u)
    return out


def hypotheses(wer: dict) -> dict[str, dict[str, str]]:
    """"original" / "anon" -> {utt: ASR hypothesis} from stage 7's hypothesis files."""
    out: dict[str, dict[str, str]] = {}
    for side in ("original", "anon"):
        for r in (wer.get(side) or {}).get("sets", {}).values():
            if Path(r.get("hyp_file", "")).is_file():
                out.setdefault(side, {}).update(read_table(r["hyp_file"]))
    return out


def _candidates(asv: dict, data_root: Path, suffix: str) -> list[list[tuple]]:
    """Per trial list, its (utt, original dir, anonymized dir), one utterance per speaker first."""
    lists = []
    for tl in asv.get("trial_lists", []):
        orig_path, anon_path = data_root / tl["trial_set"], data_root / f"{tl['trial_set']}{suffix}"
        if not (orig_path / "wav.scp").is_file() or not (anon_path / "wav.scp").is_file():
            continue
        orig, anon = load_data_dir(orig_path), load_data_dir(anon_path)
        utts = sorted({t.utt for t in orig.trials or ()} & set(anon.wav_scp))
        rank = {u: i for spk_utts in _by_speaker(utts, orig.utt2spk).values() for i, u in enumerate(spk_utts)}
        utts.sort(key=lambda u: (rank[u], orig.utt2spk[u]))
        lists.append([(u, orig, anon) for u in utts])
    return lists


def audio_pairs(asv: dict, data_root: Path, suffix: str, n: int, out_dir: Path, copy: bool,
                hyps: dict[str, dict[str, str]] | None = None) -> list[dict]:
    """Up to ``n`` trial utterances present in both the original and the anonymized dir, taken in
    turn from each trial list (VPC: both genders) and one per speaker first, with the reference
    text and the ASR hypotheses of both audios when stage 7 made them."""
    hyps = hyps or {}
    lists = _candidates(asv, data_root, suffix)
    turns = [c for k in range(max(map(len, lists), default=0)) for c in (lst[k] for lst in lists if k < len(lst))]
    pairs: list[dict] = []
    for utt, orig, anon in turns:
        if len(pairs) >= n:
            break
        try:
            pair = {"utt": utt, "speaker": orig.utt2spk[utt], "text": (orig.table("text") or {}).get(utt, ""),
                    "gender": (orig.table("spk2gender") or {}).get(orig.utt2spk[utt], "?"),
                    **{f"hyp_{side}": h.get(utt, "") for side, h in hyps.items()}}
            for side, d in (("orig", orig), ("anon", anon)):
                src = resolve_wav(d, utt)
                if copy:
                    dst = out_dir / "audio" / f"{utt}.{side}.wav"
                    write_wav(dst, load_16k(src, d.path))
                    pair[side] = os.path.relpath(dst, out_dir)
                else:
                    pair[side] = os.path.relpath(Path(src).resolve(), out_dir.resolve())
            pairs.append(pair)
        except AudioError:
            continue
    return pairs


def audio_section(pairs: list[dict]) -> str:
    has_hyp = [side for side in ("original", "anon") if any(f"hyp_{side}" in p for p in pairs)]
    header = ["utterance", "speaker", "gender", "reference text",
              *[f"ASR of {'original' if s == 'original' else 'anonymized'}" for s in has_hyp], "original", "anonymized"]
    rows = [[_e(p["utt"]), _e(p["speaker"]), _e(p["gender"]), _e(p["text"]) or "-",
             *[_e(p.get(f"hyp_{s}", "")) for s in has_hyp],
             f"<audio controls preload='metadata' src='{_e(p['orig'])}'></audio>",
             f"<audio controls preload='metadata' src='{_e(p['anon'])}'></audio>"] for p in pairs]
    return "<h2>Audio examples</h2>" + _table(header, rows, "audio-table")


def components_section(comp: dict | None) -> str:
    """Per admixture part: EER of each attacker on the part's trial utterances, WER on its utterances."""
    if not comp:
        return ""
    parts = comp["parts"]
    scenarios = sorted({sc for p in parts.values() for sc in p["eer"]})
    rows = [[_e(i), _e(p["system"]), str(p["n_utts"]),
             *["; ".join(f"{_e(name)} {v:.2f}" for name, v in p["eer"].get(sc, {}).items()) or "-" for sc in scenarios],
             _num(p["wer"]) if p["wer"] is not None else "-"] for i, p in parts.items()]
    return ("<h2>Admixture parts (owner only)</h2><p class='note'>From the owner-only records of which part "
            "anonymized each utterance: an attacker does not have them. EER on the trials whose trial "
            "utterance the part made.</p>"
            + _table(["part", "system", "#utts", *[f"EER % {sc}" for sc in scenarios], "WER %"], rows, "components"))


def write_report(res: dict, out_dir: str | Path, data_root: str | Path, n_audio: int = 4, copy_audio: bool = True,
                 title: str = "") -> Path:
    out_dir, data_root = Path(out_dir), Path(data_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    asv = res.get("asv", {})
    plots = plot_asv(asv, out_dir)
    pairs = audio_pairs(asv, data_root, res.get("suffix") or "", n_audio, out_dir, copy_audio,
                        hypotheses(res.get("wer", {})))
    title = title or f"voxanon: {res['exp']}"
    head = res.get("headline", {})
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(title)}</title><style>{CSS}</style>"
             "</head><body>", f"<h1>{_e(title)}</h1>",
             f"<p>created {_e(res['created'])}; anonymized data suffix <code>{_e(res.get('suffix'))}</code></p>"]
    parts += [f"<p><b>{_e(line)}</b></p>" for line in privacy_lines(head)]
    if res.get("data"):
        parts.append("<h2>Data</h2><ul id='data'>" + "".join(f"<li>{_e(x)}</li>" for x in split_lines(res["data"]))
                     + "</ul>")
    parts += [f"<p class='warn'>WARNING {_e(w)}</p>" for w in res.get("warnings", [])]
    if head:
        parts.append(_table(["headline", "value"], [[_e(k), _num(v)] for k, v in head.items()], "headline"))
    models = res.get("models") or {}
    if models:
        parts.append(_table(["evaluation model", "used"], [[_e(k), _e(v or "-")] for k, v in models.items()], "models"))
    parts += ["<h2>Privacy: speaker verification</h2>", asv_section(asv),
              convergence_section(asv.get("convergence", {}), out_dir),
              "<h2>Utility: word error rate</h2>", wer_section(res.get("wer", {})),
              "<h2>Utility: emotion (UAR)</h2>", ser_section(res.get("ser", {}))]
    if plots:
        parts.append("<h2>DET curves and score distributions</h2>")
        for p in plots:
            parts.append(f"<h3>{_e(p['title'])}</h3><figure><img src='{_e(p['det'])}' alt='DET {_e(p['title'])}'>"
                         f"</figure><figure><img src='{_e(p['hist'])}' alt='scores {_e(p['title'])}'></figure>")
    parts.append(components_section(res.get("components")))
    if pairs:
        parts.append(audio_section(pairs))
    parts.append("</body></html>\n")
    index = out_dir / "index.html"
    atomic_write_text(index, "\n".join(parts))
    return index

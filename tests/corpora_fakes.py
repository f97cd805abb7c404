"""Tiny fake corpora in their real published layouts, with generated audio (for tests/test_corpora_*).

Each builder returns what a test needs to know to check the produced dirs exactly.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf


def write_tone(path: Path, seconds: float = 0.2, rate: int = 16000, seed: int = 0) -> Path:
    """A short harmonic tone + noise; format from the suffix (.wav / .flac)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    x = 0.3 * np.sin(2 * np.pi * (150 + 10 * seed) * t) + 0.01 * rng.standard_normal(len(t))
    sf.write(str(path), x.astype(np.float32), rate)
    return path


def speechlike(seconds: float = 1.0, seed: int = 0, lead: float = 0.3, trail: float = 0.3,
               noise_dbfs: float = -60.0, rate: int = 16000) -> np.ndarray:
    """Syllables (0.2 s voiced, gliding pitch, 0.08 s gaps) for ``seconds``, between ``lead`` and
    ``trail`` seconds of white noise at ``noise_dbfs`` RMS: audio that sox's VAD takes for speech
    (a steady tone from the first sample it takes for noise)."""
    rng = np.random.default_rng(seed)
    f0 = 160 + 10 * (seed % 8)  # sox's VAD misses a pure harmonic tone under ~150 Hz (its lifter band)
    noise = lambda s: 10 ** (noise_dbfs / 20) * rng.standard_normal(int(s * rate))  # noqa: E731
    t = np.arange(int(0.2 * rate)) / rate
    parts, n = [noise(lead)], 0
    while n * 0.28 < seconds:
        phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 3 * t + n))) / rate
        parts += [0.3 * np.sin(np.pi * t / 0.2) * sum(np.sin(h * phase) / h for h in range(1, 8)), noise(0.08)]
        n += 1
    parts.append(noise(trail))
    return np.concatenate(parts).astype(np.float32)


def write_speech(path: Path, seconds: float = 1.0, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), speechlike(seconds, seed), 16000)
    return path


# ---- LibriSpeech (OpenSLR 12) ----

LIBRI_SPEAKERS = {"19": "F", "26": "M", "103": "F", "1034": "M"}


def fake_librispeech(root: Path, subset: str = "train-clean-360", speakers=("19", "26", "103"),
                     chapters: int = 2, utts: int = 2, speech: bool = False) -> dict[str, str]:
    """``root/SPEAKERS.TXT`` + ``root/<subset>/<spk>/<chapter>/*.flac`` (0.2 s tones, or ~1.7 s of
    ``speechlike`` audio); returns {utt: raw words}."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [";ID  |SEX| SUBSET           |MINUTES| NAME", "; comment line"]
    lines += [f"{spk:<5}| {sex} | {subset:<16} | 25.19 | Reader {spk}" for spk, sex in LIBRI_SPEAKERS.items()]
    (root / "SPEAKERS.TXT").write_text("\n".join(lines) + "\n")
    words = {}
    for i, spk in enumerate(speakers):
        for c in range(chapters):
            chapter = str(100 + c)
            chap_dir = root / subset / spk / chapter
            trans = []
            for n in range(utts):
                utt = f"{spk}-{chapter}-{n:04d}"
                seed = i * 10 + c * 3 + n
                (write_speech if speech else write_tone)(chap_dir / f"{utt}.flac", seed=seed)
                words[utt] = f"HELLO WORLD NUMBER {n} FROM {spk}"
                trans.append(f"{utt} {words[utt]}")
            (chap_dir / f"{spk}-{chapter}.trans.txt").write_text("\n".join(trans) + "\n")
    return words


# ---- VPC 2024 release lists + organizers' libri_dev / libri_test audio ----

def fake_vpc(root: Path) -> dict[str, dict]:
    """``root/libri_{dev,test}_{enrolls,trials_f,trials_m}`` (release Kaldi dirs, wav.scp entries as
    release-relative paths or flac pipes) and ``root/libri_{dev,test}/wav/<utt>/<utt>.wav`` + text;
    ``libri_{dev,test}_trials_mixed`` as VPC 2026 distributes it: the f and m dirs' files merged
    (sorted), their trials followed by the added cross-gender non-target pairs.

    Returns, per set: utt2spk, raw text, trials/enrolls, gender map.
    """
    out = {}
    for part, spk_f, spk_m in (("dev", "1272", "2277"), ("test", "61", "121")):
        audio = root / f"libri_{part}"
        texts = {}
        sets = {
            "enrolls": {f"{spk_f}-1-000{n}": spk_f for n in range(2)} | {f"{spk_m}-1-000{n}": spk_m for n in range(2)},
            "trials_f": {f"{spk_f}-2-000{n}": spk_f for n in range(2)} | {f"8{spk_f}-2-0000": f"8{spk_f}"},
            "trials_m": {f"{spk_m}-2-000{n}": spk_m for n in range(2)} | {f"8{spk_m}-2-0000": f"8{spk_m}"},
        }
        for kind, utt2spk in sets.items():
            name = f"libri_{part}_{kind}"
            d = root / name
            d.mkdir(parents=True)
            scp, text = [], []
            for i, utt in enumerate(sorted(utt2spk)):
                write_tone(audio / "wav" / utt / f"{utt}.wav", seed=i)
                texts[utt] = f"hello, world! is it {i}?  yes."
                # half the entries as release-relative paths, half as pipes: both must be rewritten
                if i % 2:
                    scp.append(f"{utt} flac -c -d -s data/libri_{part}/wav/{utt}/{utt}.flac |")
                else:
                    scp.append(f"{utt} data/libri_{part}/wav/{utt}/{utt}.wav")
                text.append(f"{utt} {texts[utt]}")
            (d / "wav.scp").write_text("\n".join(scp) + "\n")
            (d / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utt2spk.items())))
            spks = sorted(set(utt2spk.values()))
            spk2utt = {s: sorted(u for u in utt2spk if utt2spk[u] == s) for s in spks}
            (d / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in spk2utt.items()))
            gender = {s: ("f" if s.endswith(spk_f) else "m") for s in spks}
            (d / "spk2gender").write_text("".join(f"{s} {g}\n" for s, g in gender.items()))
            info = {"utt2spk": utt2spk, "gender": gender}
            if kind == "enrolls":
                (d / "enrolls").write_text("".join(f"{u}\n" for u in sorted(utt2spk)))
                info["enrolls"] = sorted(utt2spk)
                # the enrolls dir carries text; trials dirs get it from the organizers' libri_<part>/text
                (d / "text").write_text("\n".join(text) + "\n")
            else:
                enroll_spk = spk_f if kind == "trials_f" else spk_m
                trials = [f"{enroll_spk} {u} {'target' if utt2spk[u] == enroll_spk else 'nontarget'}"
                          for u in sorted(utt2spk)]
                (d / "trials").write_text("\n".join(trials) + "\n")
                info["trials"] = trials
            out[name] = info
        out[f"libri_{part}_trials_mixed"] = fake_mixed(root, part)
        (audio / "text").write_text("".join(f"{u} {t}\n" for u, t in sorted(texts.items())))
        for name in out:
            if name.startswith(f"libri_{part}_"):
                out[name]["text"] = {u: texts[u] for u in out[name]["utt2spk"]}
    return out


def fake_mixed(root: Path, part: str) -> dict:
    """``libri_<part>_trials_mixed`` from the fake trials_f and trials_m dirs under ``root``."""
    f, m = (root / f"libri_{part}_trials_{g}" for g in "fm")
    d = root / f"libri_{part}_trials_mixed"
    d.mkdir()
    for table in ("wav.scp", "utt2spk", "spk2utt", "spk2gender"):
        lines = sorted((f / table).read_text().splitlines() + (m / table).read_text().splitlines())
        (d / table).write_text("\n".join(lines) + "\n")
    enroll = {g: (f if g == "f" else m).joinpath("trials").read_text().split()[0] for g in "fm"}
    utt2spk = dict(line.split() for line in (d / "utt2spk").read_text().splitlines())
    gender = dict(line.split() for line in (d / "spk2gender").read_text().splitlines())
    trials = f.joinpath("trials").read_text().splitlines() + m.joinpath("trials").read_text().splitlines()
    trials += [f"{enroll[g]} {u} nontarget" for g in "fm" for u in sorted(utt2spk) if gender[utt2spk[u]] != g]
    (d / "trials").write_text("\n".join(trials) + "\n")
    return {"utt2spk": utt2spk, "gender": gender, "trials": trials}


# ---- IEMOCAP (USC release layout) ----

IEMOCAP_LABELS = ["neu", "exc", "fru", "sad", "ang", "hap", "xxx", "neu"]


def fake_iemocap(root: Path) -> dict[str, str]:
    """Sessions 1-5, two dialogs each (F- and M-wearer), 4 utterances per dialog alternating
    F/M speakers, labels from ``IEMOCAP_LABELS``. Returns {utt: raw label}."""
    labels = {}
    for s in range(1, 6):
        session = root / f"Session{s}"
        for k, dialog in enumerate((f"Ses0{s}F_impro01", f"Ses0{s}M_script02_1")):
            emo_lines, trans_lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""], []
            for n in range(4):
                utt = f"{dialog}_{'FM'[n % 2]}{n:03d}"
                label = IEMOCAP_LABELS[(s + k * 4 + n) % len(IEMOCAP_LABELS)]
                labels[utt] = label
                write_tone(session / "sentences" / "wav" / dialog / f"{utt}.wav", seed=s * 8 + k * 4 + n)
                emo_lines += [f"[{n}.0000 - {n}.9000]\t{utt}\t{label}\t[2.5000, 3.0000, 3.0000]",
                              "C-E1:\tNeutral state;\t()", ""]
                trans_lines.append(f"{utt} [{n}.0000-{n}.9000]: Well, it's turn {n}!")
            (session / "dialog" / "EmoEvaluation").mkdir(parents=True, exist_ok=True)
            (session / "dialog" / "EmoEvaluation" / f"{dialog}.txt").write_text("\n".join(emo_lines) + "\n")
            (session / "dialog" / "transcriptions").mkdir(parents=True, exist_ok=True)
            (session / "dialog" / "transcriptions" / f"{dialog}.txt").write_text("\n".join(trans_lines) + "\n")
    return labels


# ---- VoxCeleb ----

VOX_SPEAKERS = {"id10001": "m", "id10002": "m", "id10003": "f"}


def fake_voxceleb(root: Path, m4a: bool = False) -> list[str]:
    """``root/id1000N/<video>/0000K.wav`` (or .m4a via ffmpeg) of ``speechlike`` audio, and
    ``root/vox1_meta.csv`` (VoxCeleb1's tab-separated meta file); returns the expected utt ids."""
    utts = []
    root.mkdir(parents=True, exist_ok=True)
    (root / "vox1_meta.csv").write_text("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n" + "".join(
        f"{spk}\tCeleb_{spk}\t{sex}\tIreland\tdev\n" for spk, sex in VOX_SPEAKERS.items()))
    for i, spk in enumerate(VOX_SPEAKERS):
        for video in ("1zcIwhmdeo4", "7w0IBEWc9Qw"):
            for k in (1, 2):
                wav = write_speech(root / spk / video / f"0000{k}.wav", seed=i * 4 + k)
                if m4a:
                    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav),
                                    "-c:a", "aac", str(wav.with_suffix(".m4a"))], check=True)
                    wav.unlink()
                utts.append(f"{spk}-{video}-0000{k}")
    return sorted(utts)


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None

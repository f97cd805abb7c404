"""VPC 2024 evaluation lists (the release's ``data.zip``) + the organizers' LibriSpeech dev/test
audio -> ``libri_{dev,test}_{enrolls,trials_f,trials_m}`` with wav.scp pointing at real files;
also VPC 2026 Track 1's ``libri_{dev,test}_trials_mixed`` (trials_f + trials_m + cross-gender
non-target pairs), read from the distributed lists in the same layout, never regenerated.

The release's ``wav.scp`` entries are paths relative to the challenge checkout or Kaldi pipes
(``flac -c -d -s ... |``); here every utterance is looked up by id (or by the file name in its
entry) among the audio files under ``<vpc_audio_dir>/libri_dev`` / ``libri_test`` and written as
an absolute path. ``text`` gets the VPC normalization. Set sizes are compared with the published
ones; a difference is reported, not fatal (a subset of the lists is allowed).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from voxanon.config import from_dict
from voxanon.corpora import iemocap, librispeech, voxceleb
from voxanon.corpora.common import (AUDIO_SUFFIXES, CorpusError, count_mismatches, finish, log, require_dir,
                                    vpc_normalize)
from voxanon.data.kaldi import DataDir, load_data_dir, validate_data_dir

EVAL_SETS = tuple(f"libri_{part}_{kind}" for part in ("dev", "test")
                  for kind in ("enrolls", "trials_f", "trials_m", "trials_mixed"))

# Published sizes (VPC 2024 evaluation plan).
EXPECTED = {
    "libri_dev_enrolls": {"utts": 343, "speakers": 29},
    "libri_test_enrolls": {"utts": 438, "speakers": 29},
    "libri_dev_trials_f": {"utts": 1018, "target": 704, "nontarget": 14566},
    "libri_dev_trials_m": {"utts": 960, "target": 644, "nontarget": 12796},
    "libri_test_trials_f": {"utts": 734, "target": 548, "nontarget": 11196},
    "libri_test_trials_m": {"utts": 762, "target": 449, "nontarget": 9457},
    # VPC 2026 Track 1: the f and m utterances and target trials together (the added cross-gender
    # non-target count is not published)
    "libri_dev_trials_mixed": {"utts": 1978, "target": 1348},
    "libri_test_trials_mixed": {"utts": 1496, "target": 997},
}


@dataclass(frozen=True)
class TargetPoolOptions:
    """How to build the kNN-VC target-speaker pool (``data.options.target_pool``)."""

    corpus: str = ""  # librispeech | voxceleb | "" (no pool)
    subset: str = "train-clean-100"  # librispeech: subset under librispeech_root
    root: str = ""  # voxceleb: the dir holding id*/<video>/*.wav|*.m4a
    meta: str = ""  # voxceleb: vox1_meta.csv / vox2_meta.csv, gives spk2gender
    max_speakers: int = 0  # 0 = all
    max_utts_per_speaker: int = 0  # 0 = all

    def __post_init__(self):
        if self.corpus not in ("", "librispeech", "voxceleb"):
            raise ValueError(f"target_pool.corpus must be librispeech, voxceleb or empty, got {self.corpus!r}")


@dataclass(frozen=True)
class Vpc2024Options:
    """``data.options`` of ``recipe: vpc2024``."""

    vpc_data_dir: str = ""  # unzipped data.zip: libri_dev_enrolls/, ..., (IEMOCAP_dev/, IEMOCAP_test/)
    vpc_audio_dir: str = ""  # holds libri_dev/ and libri_test/ audio from the organizers; default vpc_data_dir
    librispeech_root: str = ""  # OpenSLR layout with SPEAKERS.TXT
    iemocap_root: str = ""  # USC layout: Session1..Session5
    target_pool: TargetPoolOptions = field(default_factory=TargetPoolOptions)
    check_audio: bool = False  # validate by opening every audio file (slow on train-clean-360)


def index_audio(directory: Path) -> dict[str, Path]:
    """Every audio file under ``directory`` by stem (first one wins)."""
    index: dict[str, Path] = {}
    for path in sorted(directory.rglob("*")):
        if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file():
            index.setdefault(path.stem, path.resolve())
    return index


def _entry_stems(entry: str) -> list[str]:
    """File names mentioned in a wav.scp entry (a path or a pipe), without suffix."""
    return [Path(tok).stem for tok in entry.split() if Path(tok).suffix.lower() in AUDIO_SUFFIXES]


def prepare_vpc_set(name: str, vpc_data_dir: str | Path, vpc_audio_dir: str | Path = "") -> tuple[DataDir, list[str]]:
    """One release set with real audio paths; returns the dir and its count mismatches."""
    if name not in EVAL_SETS:
        raise CorpusError(f"VPC 2024: unknown set {name!r}; known: {', '.join(EVAL_SETS)}")
    data_root = require_dir(vpc_data_dir, "VPC 2024 data dir (data.options.vpc_data_dir, the unzipped data.zip)")
    release_dir = data_root / name
    if not (release_dir / "wav.scp").is_file():
        where = ("the VPC 2026 Track 1 evaluation data (track1_evaldata.zip of "
                 "Voice-Privacy-Challenge-2026's 01_download_data_model_track1.sh)" if name.endswith("_mixed") else
                 "the release's data.zip (https://github.com/Voice-Privacy-Challenge/Voice-Privacy-Challenge-2024"
                 "/releases/download/data.zip/data.zip)")
        raise CorpusError(f"VPC 2024: {release_dir}/wav.scp not found; unzip {where} there")
    release = load_data_dir(release_dir)
    part = name.split("_")[1]  # dev | test
    audio_root = require_dir(Path(vpc_audio_dir or data_root) / f"libri_{part}",
                             f"VPC 2024 libri_{part} audio (from the organizers, under data.options.vpc_audio_dir)")
    index = index_audio(audio_root)

    wav_scp, missing = {}, []
    for utt, entry in release.wav_scp.items():
        found = next((index[s] for s in (utt, *_entry_stems(entry)) if s in index), None)
        if found is None:
            missing.append(utt)
        else:
            wav_scp[utt] = str(found)
    if missing:
        raise CorpusError(f"VPC 2024 {name}: no audio file under {audio_root} for {len(missing)} utterance(s), "
                          f"e.g. {' '.join(missing[:5])}")

    tables = {}
    text = release.table("text")
    if text is None and (audio_root / "text").is_file():
        text = load_text(audio_root / "text")
    if text is None:
        raise CorpusError(f"VPC 2024 {name}: no transcripts ({release_dir}/text or {audio_root}/text)")
    no_text = sorted(set(release.utt2spk) - set(text))
    if no_text:
        raise CorpusError(f"VPC 2024 {name}: no transcript for {' '.join(no_text[:5])} ({len(no_text)} in all)")
    tables["text"] = {u: vpc_normalize(text[u]) for u in release.utt2spk}
    spks = set(release.utt2spk.values())
    genders = release.table("spk2gender")
    if genders is None and name.endswith(("_f", "_m")):
        genders = {s: name[-1] for s in spks}
    if genders is None and name.endswith("_mixed"):
        raise CorpusError(f"VPC 2026 {name}: {release_dir}/spk2gender missing (the mixed list has both genders)")
    if genders is not None:
        tables["spk2gender"] = {s: g for s, g in genders.items() if s in spks}

    data = DataDir(wav_scp, dict(release.utt2spk), tables, release.enrolls, release.trials)
    return data, count_mismatches(name, set_counts(data), EXPECTED[name])


def load_text(path: Path) -> dict[str, str]:
    text = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        utt, _, words = line.strip().partition(" ")
        if utt:
            text[utt] = words
    return text


def set_counts(data: DataDir) -> dict[str, int]:
    counts = {"utts": len(data.utt2spk), "speakers": len(set(data.utt2spk.values()))}
    if data.trials is not None:
        counts["target"] = sum(t.target for t in data.trials)
        counts["nontarget"] = sum(not t.target for t in data.trials)
    return counts


# Published LibriSpeech subset sizes (OpenSLR 12), for the attacker's training set.
LIBRISPEECH_EXPECTED = {
    "train-clean-100": {"utts": 28539, "speakers": 251},
    "train-clean-360": {"utts": 104014, "speakers": 921},
}


def with_roots(opts: Vpc2024Options, roots: dict[str, str]) -> Vpc2024Options:
    """``opts`` with the corpus roots it leaves empty taken from ``roots`` (db.sh: the site's
    corpus locations, kept out of the experiment confs so moving a corpus changes no experiment).
    Keys: the option names, and ``voxceleb_root`` / ``voxceleb_meta`` for a VoxCeleb pool."""
    top = {k: v for k, v in roots.items() if hasattr(opts, k) and v and not getattr(opts, k)}
    pool = opts.target_pool
    if pool.corpus == "voxceleb":
        pool = replace(pool, root=pool.root or roots.get("voxceleb_root", ""), meta=pool.meta or roots.get("voxceleb_meta", ""))
    return replace(opts, **top, target_pool=pool)


def build_sets(data_cfg, out_root: str | Path, overwrite: bool = False, roots: dict[str, str] | None = None) -> list[str]:
    """Build every set ``data_cfg`` (a ``DataConfig`` with ``recipe: vpc2024``) names under
    ``out_root``; returns the warnings (count mismatches, split stand-ins). Corpus roots the conf
    leaves empty come from ``roots`` (see ``with_roots``).

    An existing valid dir is kept unless ``overwrite``. A set that fails does not stop the others;
    all failures are raised together at the end as one ``CorpusError``.
    """
    opts = with_roots(from_dict(Vpc2024Options, data_cfg.options, "data.options"), roots or {})
    out_root = Path(out_root)
    unknown = [s for s in data_cfg.eval_sets if s not in EVAL_SETS]
    unknown += [s for s in data_cfg.emotion_sets if s not in iemocap.SETS]
    if unknown:
        raise CorpusError(f"recipe vpc2024 cannot build {', '.join(unknown)}; it knows "
                          f"{', '.join(EVAL_SETS + iemocap.SETS)}, a LibriSpeech subset as asv_train_set, "
                          "and data.target_pool")
    if data_cfg.target_pool and not opts.target_pool.corpus:
        raise CorpusError(f"data.target_pool is {data_cfg.target_pool!r} but data.options.target_pool.corpus "
                          "is not set (librispeech or voxceleb)")

    def done(name: str) -> bool:
        if overwrite or not (out_root / name / "wav.scp").is_file():
            return False
        if validate_data_dir(out_root / name):
            return False
        log.info("%s: exists and is valid, kept (--overwrite true rebuilds it)", out_root / name)
        return True

    warnings, errors = [], []

    def attempt(name: str, build) -> None:
        try:
            if not done(name):
                build()
        except (CorpusError, OSError) as err:
            errors.append(f"{name}: {err}")

    for name in data_cfg.eval_sets:
        def build_eval(name=name):
            data, mismatches = prepare_vpc_set(name, opts.vpc_data_dir, opts.vpc_audio_dir)
            warnings.extend(mismatches)
            finish(data, out_root / name, opts.check_audio)
        attempt(name, build_eval)

    if data_cfg.asv_train_set:
        def build_train(name=data_cfg.asv_train_set):
            data = librispeech.prepare_librispeech(opts.librispeech_root, name)
            if name in LIBRISPEECH_EXPECTED:
                warnings.extend(count_mismatches(name, set_counts(data), LIBRISPEECH_EXPECTED[name], "LibriSpeech"))
            finish(data, out_root / name, opts.check_audio)
        attempt(data_cfg.asv_train_set, build_train)

    if data_cfg.emotion_sets:
        pending = [s for s in data_cfg.emotion_sets if not done(s)]
        if pending:
            try:
                sets, notes = iemocap.prepare_iemocap(opts.iemocap_root, opts.vpc_data_dir)
                warnings.extend(notes)
                for name in pending:
                    finish(sets[name], out_root / name, opts.check_audio)
            except (CorpusError, OSError) as err:
                errors.append(f"{', '.join(pending)}: {err}")

    if data_cfg.target_pool:
        pool = opts.target_pool

        def build_pool(name=data_cfg.target_pool):
            if pool.corpus == "librispeech":
                data = librispeech.prepare_librispeech(opts.librispeech_root, pool.subset, pool.max_speakers,
                                                       pool.max_utts_per_speaker)
            else:
                data = voxceleb.prepare_voxceleb(pool.root, out_root / name, pool.meta, pool.max_speakers,
                                                 pool.max_utts_per_speaker)
            finish(data, out_root / name, opts.check_audio)
        attempt(data_cfg.target_pool, build_pool)

    for w in warnings:
        log.warning("%s", w)
    if errors:
        raise CorpusError("stage 1 could not build:\n  " + "\n  ".join(errors))
    return warnings

"""The mini recipe's data: the synthetic corpus (espeak-ng, flite, packaged Piper voice) and the
import of the user's own speech (--data), split into VPC-style sets."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxanon.corpora.common import CorpusError, vpc_normalize
from voxanon.corpora.mini import SET_NAMES, VOICES, MiniOptions, prepare, read_sentences
from voxanon.corpora.user_data import import_user_data, speaker_of
from voxanon.data.kaldi import load_data_dir, validate_data_dir

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
TINY = MiniOptions(train_utts=2, eval_utts=5, enroll_utts=3)

needs_tools = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("flite")),
                                 reason="espeak-ng and flite are needed (utils/setup_env.sh installs them)")


def digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path -> md5), hidden stamp files excluded."""
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def check_vpc_layout(dirs: dict[str, Path], eval_spks: set[str], train_spks: set[str], enroll_utts: int) -> None:
    """The contract every mini data root satisfies, whatever the source."""
    for name in SET_NAMES:
        assert validate_data_dir(dirs[name]) == [], name
    sets = {name: load_data_dir(dirs[name]) for name in SET_NAMES}
    assert set(sets["mini_train"].spk2utt) == train_spks
    assert set(sets["mini_enrolls"].spk2utt) == eval_spks
    assert not train_spks & eval_spks
    enroll = sets["mini_enrolls"]
    assert enroll.trials is None and enroll.enrolls is not None
    for spk, utts in enroll.spk2utt.items():
        assert len(utts) == enroll_utts
    assert set(enroll.enrolls) == set(enroll.utt2spk)
    gender = enroll.tables["spk2gender"]
    for g in ("f", "m"):
        trial_set = sets[f"mini_trials_{g}"]
        spks = {s for s in eval_spks if gender[s] == g}
        assert set(trial_set.spk2utt) == spks
        assert set(trial_set.tables["spk2gender"].values()) == {g}
        assert not set(trial_set.utt2spk) & set(enroll.utt2spk)  # enroll utts are never trials
        # every trial utterance against every same-gender enrolled speaker, target iff same speaker
        pairs = {(t.enroll_spk, t.utt): t.target for t in trial_set.trials}
        assert len(pairs) == len(trial_set.trials) == len(trial_set.utt2spk) * len(spks)
        for (spk, utt), target in pairs.items():
            assert spk in spks and target == (trial_set.utt2spk[utt] == spk)
        assert any(pairs.values()) and not all(pairs.values())


@needs_tools
def test_synthetic_corpus_sets_and_determinism(tmp_path):
    a = prepare(tmp_path / "a", TINY, nj=2)
    train = {v.spk for v in VOICES if v.role == "train"}
    evals = {v.spk for v in VOICES if v.role == "eval"}
    check_vpc_layout(a, evals, train, TINY.enroll_utts)
    for name in SET_NAMES:  # real audio, 16 kHz, every file
        assert validate_data_dir(a[name], check_audio=True, expect_rate=16000) == [], name
    # labels: 8 f / 8 m voices, balanced in both parts
    genders = {**load_data_dir(a["mini_train"]).tables["spk2gender"], **load_data_dir(a["mini_enrolls"]).tables["spk2gender"]}
    assert genders == {v.spk: v.gender for v in VOICES}
    assert sorted(genders.values()).count("f") == 8
    train_dir = load_data_dir(a["mini_train"])
    assert len(train_dir.utt2spk) == len(train) * TINY.train_utts
    assert set(train_dir.tables["text"].values()) <= {vpc_normalize(s) for s in read_sentences()}
    # each engine produced speech (not silence) of a sentence-like length
    for utt, path in train_dir.wav_scp.items():
        x, rate = sf.read(path)
        assert rate == 16000 and 1.0 < len(x) / rate < 12.0 and np.abs(x).max() > 0.3, utt

    # a second root from the same options is byte-identical (audio included)
    b = prepare(tmp_path / "b", TINY, nj=1)
    tree_a, tree_b = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert tree_a.keys() == tree_b.keys()
    same_audio = [k for k in tree_a if k.endswith(".wav") and tree_a[k] == tree_b[k]]
    assert len(same_audio) == sum(k.endswith(".wav") for k in tree_a)
    assert (tmp_path / "a/mini_trials_m/trials").read_text() == (tmp_path / "b/mini_trials_m/trials").read_text()

    # re-running is a no-op; a killed run (missing wav, missing dir) resumes; new options redo it
    wav = Path(load_data_dir(a["mini_trials_f"]).wav_scp[sorted(load_data_dir(a["mini_trials_f"]).utt2spk)[0]])
    before = wav.stat().st_mtime_ns
    prepare(tmp_path / "a", TINY)
    assert wav.stat().st_mtime_ns == before
    wav.unlink()
    shutil.rmtree(a["mini_trials_f"])
    prepare(tmp_path / "a", TINY)
    assert wav.is_file() and validate_data_dir(a["mini_trials_f"]) == []
    prepare(tmp_path / "a", MiniOptions(train_utts=3, eval_utts=5, enroll_utts=3))
    assert len(load_data_dir(a["mini_train"]).utt2spk) == len(train) * 3


def test_too_many_utterances_per_speaker_is_a_clear_error(tmp_path):
    n = len(read_sentences())
    with pytest.raises(ValueError, match=f"only {n} sentences"):
        prepare(tmp_path, MiniOptions(train_utts=n + 1))


def tone(f0: float, seconds: float = 1.5, rate: int = 16000) -> np.ndarray:
    """A voiced-speech stand-in: harmonics of ``f0`` with a slow vibrato, so its pitch is known."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.02 * np.sin(2 * np.pi * 3 * t))) / rate
    return (0.3 * sum(np.sin(k * phase) / k for k in range(1, 6))).astype(np.float32)


def test_wav_folder_import_speakers_transcripts_and_estimated_gender(tmp_path):
    src = tmp_path / "my recordings"
    # three layouts for speakers: a folder per speaker (nested), and <speaker>_<n> / <speaker>-<n> names
    f0s = {"anna": 220, "beth": 240, "cara": 205, "dan": 110, "eric": 95, "finn": 125}
    for spk, f0 in f0s.items():
        for i in range(5):
            if spk in ("anna", "dan"):
                path = src / spk / "session1" / f"take {i}.flac"
            else:
                path = src / f"{spk}{'_' if spk < 'd' else '-'}{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, tone(f0 * (1 + 0.01 * i)), 16000)
            path.with_suffix(".txt").write_text(f"hello from {spk}\nnumber {i}\n")
    (src / "notes.md").write_text("not audio")

    dirs = prepare(tmp_path / "data", MiniOptions(eval_share=0.5, seed=3), user_data=src)
    data = import_user_data(src, tmp_path / "work")
    assert set(data.spk2utt) == set(f0s)
    assert data.utt2spk["anna-take_0"] == "anna" and data.utt2spk["beth_0"] == "beth" and data.utt2spk["eric-0"] == "eric"
    assert data.tables["text"]["anna-take_0"] == "hello from anna number 0"
    assert data.tables["spk2gender"] == {s: ("f" if f0 > 165 else "m") for s, f0 in f0s.items()}
    assert "anna f" in (tmp_path / "work" / "spk2gender.estimated").read_text()
    # 3 speakers per gender: 2 held out for evaluation (the minimum), 1 trains the attacker
    train = set(load_data_dir(dirs["mini_train"]).spk2utt)
    evals = set(f0s) - train
    assert len(train) == 2 and {data.tables["spk2gender"][s] for s in train} == {"f", "m"}
    check_vpc_layout(dirs, evals, train, 3)
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in load_data_dir(dirs["mini_enrolls"]).wav_scp.values())


def kaldi_src(src: Path, spks: dict[str, str], n_utt: int = 5) -> tuple[dict, dict]:
    """A Kaldi dir of tones, ``n_utt`` per speaker; returns (wav.scp, text)."""
    (src / "audio").mkdir(parents=True)
    wav_scp, utt2spk, text = {}, {}, {}
    for spk, g in spks.items():
        for j in range(n_utt):
            utt = f"{spk}-u{j}"
            sf.write(src / "audio" / f"{utt}.wav", tone(200 if g == "f" else 110), 16000)
            wav_scp[utt], utt2spk[utt], text[utt] = f"audio/{utt}.wav", spk, f"WORDS OF {utt.upper()}"

    def write(name, table):
        (src / name).write_text("".join(f"{k} {v}\n" for k, v in sorted(table.items())))

    write("wav.scp", wav_scp)
    write("utt2spk", utt2spk)
    write("text", text)
    write("spk2gender", spks)
    spk2utt = {}
    for u, s in sorted(utt2spk.items()):
        spk2utt.setdefault(s, []).append(u)
    write("spk2utt", {s: " ".join(u) for s, u in spk2utt.items()})
    return wav_scp, text


def test_kaldi_dir_import_keeps_labels_and_makes_its_own_split(tmp_path):
    src = tmp_path / "kaldi"
    spks = {f"{g}{i}": g for g in "fm" for i in range(4)}
    wav_scp, text = kaldi_src(src, spks)

    dirs = prepare(tmp_path / "data", MiniOptions(eval_share=0.5), user_data=src)
    train = set(load_data_dir(dirs["mini_train"]).spk2utt)
    assert len(train) == 4 and sorted(spks[s] for s in train) == ["f", "f", "m", "m"]
    check_vpc_layout(dirs, set(spks) - train, train, 3)
    trials_f = load_data_dir(dirs["mini_trials_f"])
    assert trials_f.tables["text"] == {u: text[u] for u in trials_f.utt2spk}
    assert all(p == str((src / wav_scp[u]).resolve()) for u, p in trials_f.wav_scp.items())
    assert not (tmp_path / "data" / "mini" / "spk2gender.estimated").exists()  # given, not estimated


def test_too_few_speakers_and_unknown_speaker_are_clear_errors(tmp_path):
    src = tmp_path / "few"
    for spk, f0 in (("ann", 220), ("bob", 110), ("cat", 230)):
        (src / spk).mkdir(parents=True)
        for i in range(5):
            sf.write(src / spk / f"{i}.wav", tone(f0), 16000)
    with pytest.raises(CorpusError, match="1 evaluation speaker.* of gender m"):
        prepare(tmp_path / "data", MiniOptions(), user_data=src)
    with pytest.raises(CorpusError, match="cannot tell its speaker"):
        speaker_of(Path("recording.wav"))
    with pytest.raises(CorpusError, match="neither a Kaldi data dir"):
        prepare(tmp_path / "data2", MiniOptions(), user_data=tmp_path / "missing")


@pytest.mark.skipif(not (SHARED / "timit" / "wav.scp").is_file(), reason="../shared/data/timit not present")
def test_timit_split():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        dirs = prepare(Path(tmp), MiniOptions(), user_data=SHARED / "timit")
        gender = load_data_dir(SHARED / "timit").tables["spk2gender"]
        train = set(load_data_dir(dirs["mini_train"]).spk2utt)
        check_vpc_layout(dirs, set(gender) - train, train, 3)
        assert sorted(gender[s] for s in train) == ["f"] * 4 + ["m"] * 4
        assert len(load_data_dir(dirs["mini_trials_f"]).trials) == 4 * 7 * 4


def test_corpus_voices_differ_from_the_offline_cascade_targets():
    """Anonymized speech must not land on an evaluation speaker's own voice: no espeak-ng variant
    of the corpus is a target variant of the offline cascade, and its Piper voice only trains."""
    from voxanon.anonymize.params import OFFLINE_ESPEAK_VOICES

    cascade_variants = {v.split("+")[1] for v in OFFLINE_ESPEAK_VOICES}
    corpus_variants = {v.voice.split("+")[1] for v in VOICES if v.engine == "espeak"}
    assert not cascade_variants & corpus_variants
    assert {v.role for v in VOICES if v.engine == "piper"} == {"train"}
    assert len({(v.engine, v.voice) for v in VOICES}) == len(VOICES)


def test_a_kaldi_dir_with_a_pipe_entry_is_refused_at_import(tmp_path):
    src = tmp_path / "kaldi"
    src.mkdir()
    sf.write(src / "a.wav", tone(200), 16000)
    for name, text in (("wav.scp", "s1-u1 a.wav\ns1-u2 sox a.wav -t wav - |\n"), ("utt2spk", "s1-u1 s1\ns1-u2 s1\n"),
                       ("spk2utt", "s1 s1-u1 s1-u2\n")):
        (src / name).write_text(text)
    with pytest.raises(CorpusError, match=r"wav.scp entry of s1-u2 is a command \(pipe\), 1 in all"):
        import_user_data(src, tmp_path / "work")


def vc_style_dir(src: Path) -> None:
    """4 speakers (2 f, 2 m) with their own VPC-style enrolls and mixed-gender trials."""
    spks = {"sf1": "f", "sf2": "f", "sm1": "m", "sm2": "m"}
    kaldi_src(src, spks, n_utt=4)
    (src / "enrolls").write_text("".join(f"{s}-u0\n{s}-u1\n" for s in spks))
    (src / "trials").write_text("".join(f"{e} {s}-u{j} {'target' if e == s else 'nontarget'}\n"
                                        for s in spks for j in (2, 3) for e in spks))


def test_own_trials_with_attacker_from_another_dir(tmp_path):
    src, train_src = tmp_path / "vcc", tmp_path / "other"
    vc_style_dir(src)
    kaldi_src(train_src, {"t1": "f", "t2": "m"}, n_utt=3)
    dirs = prepare(tmp_path / "data", MiniOptions(asv_train_dir=str(train_src)), user_data=src)
    enroll = load_data_dir(dirs["mini_enrolls"])
    assert enroll.enrolls == tuple(f"{s}-u{j}" for s in ("sf1", "sf2", "sm1", "sm2") for j in (0, 1))
    own = load_data_dir(src).trials
    for g in "fm":  # the dir's trials split by the trial utterance's gender, cross-gender kept
        trials = load_data_dir(dirs[f"mini_trials_{g}"]).trials
        assert trials == tuple(t for t in own if t.utt[1] == g) and len(trials) == 16
        assert {t.enroll_spk[1] for t in trials} == {"f", "m"}
    assert set(load_data_dir(dirs["mini_train"]).spk2utt) == {"t1", "t2"}
    assert "its own trials; attacker trained on" in (tmp_path / "data" / "mini" / "source").read_text()


def test_own_trials_without_attacker_data(tmp_path):
    src = tmp_path / "vcc"
    vc_style_dir(src)
    # no training speakers left: the recipe's split is tried instead, and 4 speakers are too few
    with pytest.raises(CorpusError, match="0 attacker-training speaker.*asv_train_dir.*asv.orig_model"):
        prepare(tmp_path / "data", MiniOptions(), user_data=src)
    # a pretrained attacker (data.asv_train_set empty): the trials are used, no mini_train
    dirs = prepare(tmp_path / "data", MiniOptions(), user_data=src, need_train=False)
    assert "mini_train" not in dirs and not (tmp_path / "data" / "mini_train").exists()
    assert len(load_data_dir(dirs["mini_trials_m"]).trials) == 16


def test_own_trials_need_both_genders_and_enrolled_speakers(tmp_path):
    src = tmp_path / "vcc"
    vc_style_dir(src)
    (src / "enrolls").write_text("sf1-u0\nsf2-u0\nsm1-u0\n")
    with pytest.raises(CorpusError, match="speaker sm2, who has no enrollment utterance"):
        prepare(tmp_path / "data", MiniOptions(), user_data=src, need_train=False)

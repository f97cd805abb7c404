"""The utils/ data-dir tools against Kaldi's documented behaviour, run as a user runs them.

Expected files are written out by hand from what Kaldi's egs/wsj/s5/utils scripts do (sorting
with LC_ALL=C on the first field, the first line of a duplicated id kept, whitespace-separated
fields with each kept line byte for byte, utt2spk/spk2utt regenerated with single spaces).
The TIMIT tests use ../shared/data/timit and skip when it is absent.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxanon.data.dirtools import perl_rand
from voxanon.data.kaldi import load_data_dir, resolve_wav

ROOT = Path(__file__).resolve().parents[1]
TIMIT = ROOT.parent / "shared" / "data" / "timit"


def tool(name, *args, cwd=None):
    return subprocess.run([str(ROOT / "utils" / name), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def write(d: Path, **files: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name.replace("_scp", ".scp")).write_text(text)
    return d


def read(d: Path, name: str) -> str:
    return (d / name).read_text()


# A Kaldi dir written with tabs: unsorted, one duplicated id, and utterances that fix must drop
# (s2-b: no text; s3-a: its speaker has no spk2gender line; s4-a: no wav.scp line).
MESSY = dict(
    wav_scp="s1-b\t/c/s1-b.wav\ns1-a\t/c/s1-a.wav\ns2-a /c/s2-a.wav\ns2-b\t/c/s2-b.wav\ns3-a\t/c/s3-a.wav\n"
            "s1-a\t/c/dup.wav\n",
    utt2spk="s1-a\ts1\ns1-b\ts1\ns2-a\ts2\ns2-b\ts2\ns3-a\ts3\ns4-a\ts4\n",
    text="s1-a\tHELLO  WORLD\ns1-b\tA\tB\ns2-a X\ns3-a\tY\n",
    spk2gender="s1\tm\ns2\tf\n",
    spk2utt="s1 s1-a\n",
    utt2extra="s1-a 1\ns2-b 2\ns4-a 4\n",
    enrolls="s1-a\ns3-a\n",
    trials="s1\ts1-b\ttarget\ns2 s3-a nontarget\ns1 s2-a nontarget\n",
)


def test_fix_keeps_tabs_and_filters_like_kaldi(tmp_path):
    d = write(tmp_path / "d", **MESSY)
    res = tool("fix_data_dir.sh", "--utt-extra-files", "utt2extra", d)
    assert res.returncode == 0, res.stderr
    assert "fix_data_dir.sh: kept 3 utterances out of 4" in res.stdout
    expected = {
        "wav.scp": "s1-a\t/c/s1-a.wav\ns1-b\t/c/s1-b.wav\ns2-a /c/s2-a.wav\n",  # first s1-a line kept
        "utt2spk": "s1-a s1\ns1-b s1\ns2-a s2\n",
        "spk2utt": "s1 s1-a s1-b\ns2 s2-a\n",
        "text": "s1-a\tHELLO  WORLD\ns1-b\tA\tB\ns2-a X\n",
        "spk2gender": "s1\tm\ns2\tf\n",
        "utt2extra": "s1-a 1\n",
        "enrolls": "s1-a\n",
        "trials": "s1\ts1-b\ttarget\ns1 s2-a nontarget\n",
    }
    for name, text in expected.items():
        assert read(d, name) == text, name
    for name, text in MESSY.items():  # .backup holds every file as it was
        assert read(d / ".backup", name.replace("_scp", ".scp")) == text
    # Fixed once, fixed for good: nothing changes, and the good backup is not replaced by a bad one.
    res = tool("fix_data_dir.sh", "--utt-extra-files", "utt2extra", d)
    assert res.returncode == 0 and "kept all 3 utterances." in res.stdout
    assert all(read(d, n) == t for n, t in expected.items())
    assert tool("validate_data_dir.sh", "--no-feats", "--no-audio", d).returncode == 0


def test_fix_without_extra_files_flag_leaves_unknown_file(tmp_path):
    d = write(tmp_path / "d", **MESSY)
    assert tool("fix_data_dir.sh", d).returncode == 0
    assert read(d, "utt2extra") == MESSY["utt2extra"]  # Kaldi filters only the files it is told of
    res = tool("fix_data_dir.sh", "--spk-extra-files", "spk2x", "--bogus", "1", d)
    assert res.returncode == 1


def test_fix_refuses_when_nothing_would_remain_and_keeps_everything(tmp_path):
    d = write(tmp_path / "d", wav_scp="x1 /a.wav\nx2 /b.wav\n", utt2spk="s1-a\ts1\n", spk2utt="s1 s1-a\n")
    before = {n: read(d, n) for n in ("wav.scp", "utt2spk", "spk2utt")}
    res = tool("fix_data_dir.sh", d)
    assert res.returncode == 1 and "no utterances remained" in res.stderr
    assert {n: read(d, n) for n in before} == before and not (d / ".backup" / "wav.scp").exists()


def test_fix_exit_1_when_speakers_do_not_sort_with_utterances(tmp_path):
    d = write(tmp_path / "d", wav_scp="a /a.wav\nb /b.wav\nc /c.wav\n", utt2spk="a s2\nb s1\nc s2\n")
    res = tool("fix_data_dir.sh", d)
    assert res.returncode == 1 and "utt2spk is not in sorted order" in res.stderr
    assert read(d, "utt2spk") == "a s2\nb s1\nc s2\n"


def test_fix_segments_recordings_and_durations(tmp_path):
    d = write(tmp_path / "d",
              wav_scp="r1\t/r1.wav\nr2 /r2.wav\nr9 /r9.wav\n",
              segments="u1-a\tr1\t0.0\t1.5\nu1-b r2 0.5 2\nu1-c r3 0 1\n",
              reco2file_and_channel="r1 r1 A\nr2 r2 A\nr9 r9 A\n",
              utt2spk="u1-a u1\nu1-b u1\nu1-c u1\nu1-d u1\n",
              utt2dur="u1-a 1.5\nu1-b 0\nu1-c 1\nu1-d 2\n")
    assert tool("fix_data_dir.sh", d).returncode == 0
    assert read(d, "utt2spk") == "u1-a u1\n"  # u1-b: duration 0; u1-c: no recording; u1-d: no segment
    assert read(d, "segments") == "u1-a r1 0.0 1.5\n"  # Kaldi rewrites segments with single spaces
    assert read(d, "wav.scp") == "r1\t/r1.wav\n"
    assert read(d, "reco2file_and_channel") == "r1 r1 A\n" and read(d, "utt2dur") == "u1-a 1.5\n"
    assert tool("validate_data_dir.sh", "--no-feats", "--no-text", "--no-audio", d).returncode == 0


@pytest.fixture
def timit_tabs(tmp_path):
    """A copy of the shared TIMIT dir written with tabs (the issue's case: Kaldi keeps all 160)."""
    if not (TIMIT / "wav.scp").is_file():
        pytest.skip(f"{TIMIT} absent (real-speech sets live in ../shared/data)")
    d = Path(shutil.copytree(TIMIT, tmp_path / "timit", ignore=shutil.ignore_patterns("wav")))
    (d / "wav").symlink_to(TIMIT / "wav")
    for name in ("wav.scp", "utt2spk", "text", "spk2gender"):
        (d / name).write_text("".join(line.replace(" ", "\t", 1) + "\n" for line in read(TIMIT, name).splitlines()))
    return d


def test_timit_with_tabs_fix_keeps_all(timit_tabs):
    tabbed = {n: read(timit_tabs, n) for n in ("wav.scp", "text", "spk2gender")}
    res = tool("fix_data_dir.sh", timit_tabs)
    assert res.returncode == 0, res.stderr
    assert "kept all 160 utterances." in res.stdout
    assert {n: read(timit_tabs, n) for n in tabbed} == tabbed  # lines kept byte for byte
    assert read(timit_tabs, "utt2spk") == read(TIMIT, "utt2spk")  # regenerated with spaces
    assert read(timit_tabs, "spk2utt") == read(TIMIT, "spk2utt")
    assert read(timit_tabs, "trials") == read(TIMIT, "trials")
    res = tool("validate_data_dir.sh", "--no-feats", timit_tabs)
    assert res.returncode == 0, res.stderr


def test_timit_split_per_speaker_by_default_and_per_utt(timit_tabs):
    assert tool("split_data.sh", timit_tabs, 3).returncode == 0
    parts = [load_data_dir(timit_tabs / "split3" / str(i)) for i in (1, 2, 3)]
    assert [len(p.utts) for p in parts] == [60, 50, 50]  # 6, 5, 5 speakers of 10 utterances
    speakers = [set(p.spk2utt) for p in parts]
    assert all(a.isdisjoint(b) for i, a in enumerate(speakers) for b in speakers[i + 1:])
    first = timit_tabs / "split3" / "1"
    assert read(first, "wav.scp").splitlines()[0] == "faem0-sa1\t../../wav/faem0-sa1.flac"  # tab kept, path relocated
    assert Path(resolve_wav(parts[0], parts[0].utts[0])).is_file()
    assert len(read(first, "trials").splitlines()) == sum(1 for t in load_data_dir(timit_tabs).trials
                                                          if t.utt in parts[0].utt2spk)
    assert tool("validate_data_dir.sh", "--no-feats", first).returncode == 0
    assert tool("split_data.sh", "--per-utt", timit_tabs, 3).returncode == 0
    assert [len(load_data_dir(timit_tabs / "split3utt" / str(i)).utts) for i in (1, 2, 3)] == [54, 53, 53]
    res = tool("split_data.sh", timit_tabs, 17)
    assert res.returncode == 1 and "number of speakers 16 is less than" in res.stderr


def test_split_rebalances_speakers_as_kaldi(tmp_path):
    # Speakers a (5 utterances), b..f (1 each) into 2: Kaldi starts with a,b,c | d,e,f and moves
    # the boundary speakers while the sizes get closer: a | b,c,d,e,f.
    u2s = [("a-%d" % i, "a") for i in range(5)] + [(f"{s}-0", s) for s in "bcdef"]
    d = write(tmp_path / "d", utt2spk="".join(f"{u} {s}\n" for u, s in u2s),
              wav_scp="".join(f"{u} /{u}.wav\n" for u, _ in u2s), spk2gender="a m\nb f\nc m\nd f\ne m\nf f\n")
    assert tool("split_data.sh", d, 2).returncode == 0
    assert read(d / "split2" / "1", "spk2utt") == "a a-0 a-1 a-2 a-3 a-4\n"
    assert read(d / "split2" / "2", "spk2gender") == "b f\nc m\nd f\ne m\nf f\n"
    # Newer than its input: not redone (Kaldi's rule); touched input: redone.
    stamp = (d / "split2" / "1" / "utt2spk").stat().st_mtime_ns
    assert tool("split_data.sh", d, 2).returncode == 0
    assert (d / "split2" / "1" / "utt2spk").stat().st_mtime_ns == stamp
    os.utime(d / "wav.scp", ns=(stamp + 10**9, stamp + 10**9))
    assert tool("split_data.sh", d, 2).returncode == 0
    assert (d / "split2" / "1" / "utt2spk").stat().st_mtime_ns != stamp
    assert tool("split_data.sh", d, 0).returncode == 1


SUBSET_SRC = dict(
    utt2spk="".join(f"{s}-{i}\t{s}\n" for s in ("a", "b", "c") for i in range(4)),
    wav_scp="".join(f"{s}-{i} /{s}{i}.wav\n" for s in ("a", "b", "c") for i in range(4)),
    spk2utt="".join(f"{s} " + " ".join(f"{s}-{i}" for i in range(4)) + "\n" for s in ("a", "b", "c")),
    utt2num_frames="".join(f"{s}-{i} {n}\n" for (s, i), n in zip([(s, i) for s in "abc" for i in range(4)],
                                                                  [9, 3, 7, 3, 5, 1, 8, 8, 2, 6, 4, 10])),
    spk2gender="a m\nb f\nc m\n",
    feats_scp="".join(f"{s}-{i} /feats.ark:{i}\n" for s in ("a", "b", "c") for i in range(4)),
)


@pytest.mark.parametrize("args, utts", [
    (["--first", 3], ["a-0", "a-1", "a-2"]),
    (["--last", 2], ["c-2", "c-3"]),
    ([5], ["a-2", "b-1", "c-0", "c-1", "c-3"]),  # default: evenly spaced (Kaldi's subset_scp.pl halving)
    (["--shortest", 3], ["b-1", "c-0", "a-1"]),  # by utt2num_frames; ties in C order of the line
    # shuffle_list.pl's order (perl srand(0)): c, a, b; whole speakers until 5 utterances
    (["--speakers", 5], ["a-0", "a-1", "a-2", "a-3", "c-0", "c-1", "c-2", "c-3"]),
])
def test_subset_counts(tmp_path, args, utts):
    src = write(tmp_path / "src", **SUBSET_SRC)
    res = tool("subset_data_dir.sh", args[0], src, *args[1:], tmp_path / "out") if len(args) > 1 else \
        tool("subset_data_dir.sh", src, args[0], tmp_path / "out")
    assert res.returncode == 0, res.stderr
    assert sorted(read(tmp_path / "out", "utt2spk").split()[::2]) == sorted(utts)
    lines = [line for line in SUBSET_SRC["wav_scp"].splitlines(keepends=True) if line.split()[0] in utts]
    assert read(tmp_path / "out", "wav.scp") == "".join(lines)
    assert "reducing #utt from 12 to" in res.stdout


def test_subset_per_spk_lists_and_errors(tmp_path):
    src = write(tmp_path / "src", **SUBSET_SRC)
    assert tool("subset_data_dir.sh", "--per-spk", src, 2, tmp_path / "p").returncode == 0
    assert read(tmp_path / "p", "spk2utt") == "a a-0 a-2 \nb b-0 b-2 \nc c-0 c-2 \n"  # Kaldi's trailing space
    assert read(tmp_path / "p", "utt2spk") == "a-0 a\na-2 a\nb-0 b\nb-2 b\nc-0 c\nc-2 c\n"
    (tmp_path / "spk.list").write_text("c\nzz\n")
    assert tool("subset_data_dir.sh", "--spk-list", tmp_path / "spk.list", src, tmp_path / "s").returncode == 0
    assert read(tmp_path / "s", "spk2utt") == "c c-0 c-1 c-2 c-3\n" and read(tmp_path / "s", "spk2gender") == "c m\n"
    (tmp_path / "utt.list").write_text("b-3\na-1\n")
    assert tool("subset_data_dir.sh", "--utt-list", tmp_path / "utt.list", src, tmp_path / "u").returncode == 0
    assert read(tmp_path / "u", "utt2spk") == "a-1\ta\nb-3\tb\n"  # src lines as they are
    res = tool("subset_data_dir.sh", src, 13, tmp_path / "x")
    assert res.returncode == 1 and "more utterances than you originally had" in res.stderr
    assert tool("subset_data_dir.sh", "--bogus", src, 1, tmp_path / "x").returncode == 1


def test_perl_rand_matches_perl():
    # perl -e 'srand(0); print rand(), "\n" for 1..3'  (shuffle_list.pl's generator)
    r = perl_rand(0)
    assert [f"{next(r):.15g}" for _ in range(3)] == ["0.17082803610629", "0.749901980484964", "0.0963716556235674"]


def test_combine_extra_files_utt2uniq_segments_and_fix(tmp_path):
    a = write(tmp_path / "a", utt2spk="a-1 a\na-2 a\n", wav_scp="a-1\t/a1.wav\na-2 /a2.wav\n", text="a-1 X\na-2 Y\n",
              utt2uniq="a-1 a-1\na-2 a-1\n", utt2emo="a-1 ang\na-2 hap\n", utt2foo="a-1 1\n",
              utt2dur="a-1 1.5\na-2 2\n", spk2gender="a m\n")
    b = write(tmp_path / "b", utt2spk="b-1 b\n", wav_scp="b-1 /b1.wav\n", text="b-1 Z\n", utt2emo="b-1 sad\n",
              utt2foo="b-1 2\n", segments="b-1\tb-1\t0\t3\n", spk2gender="b f\n")
    out = write(tmp_path / "out", stale="left from before\n")
    res = tool("combine_data.sh", "--extra-files", "utt2foo", out, a, b)
    assert res.returncode == 0, res.stderr
    assert read(out, "utt2spk") == "a-1 a\na-2 a\nb-1 b\n" and read(out, "spk2utt") == "a a-1 a-2\nb b-1\n"
    assert read(out, "wav.scp") == "a-1\t/a1.wav\na-2 /a2.wav\nb-1 /b1.wav\n"
    assert read(out, "utt2uniq") == "a-1 a-1\na-2 a-1\nb-1 b-1\n"  # made up for b
    assert read(out, "segments") == "a-1 a-1 0 1.5\na-2 a-2 0 2\nb-1 b-1 0 3\n"  # a's from its utt2dur
    assert read(out, "utt2foo") == "a-1 1\nb-1 2\n" and read(out, "utt2emo") == "a-1 ang\na-2 hap\nb-1 sad\n"
    assert not (out / "utt2dur").exists() and not (out / "stale").exists()  # not everywhere; out replaced
    assert "not combining utt2dur as it does not exist everywhere" in res.stdout
    res = tool("combine_data.sh", "--skip-fix", "true", tmp_path / "o2", b, a)
    assert res.returncode == 0 and not (tmp_path / "o2" / ".backup").exists()
    res = tool("combine_data.sh", a, a, b)
    assert res.returncode == 1 and "would replace its input" in res.stderr
    assert read(a, "utt2spk") == "a-1 a\na-2 a\n"


def test_combine_relative_wavs_resolve_and_duplicates_warned(tmp_path):
    a = write(tmp_path / "a", utt2spk="a-1 a\na-2 a\n", wav_scp="a-1 wav/a-1.wav\na-2 wav/a-2.wav\n")
    (a / "wav").mkdir()
    for utt in ("a-1", "a-2"):
        sf.write(a / "wav" / f"{utt}.wav", np.zeros(1600), 16000)
    b = write(tmp_path / "b", utt2spk="a-1 a\nb-1 b\n", wav_scp="a-1 /other.wav\nb-1 /b1.wav\n")
    res = tool("combine_data.sh", tmp_path / "out", a, b)
    assert res.returncode == 0, res.stderr
    assert "utterance id(s) in more than one input" in res.stdout and "a-1" in res.stdout
    out = load_data_dir(tmp_path / "out")
    assert out.wav_scp["a-2"] == str(a / "wav" / "a-2.wav")  # dir-relative path made absolute
    assert out.wav_scp["a-1"] == "/other.wav"  # as Kaldi: sorted lines, the first of the id kept


@pytest.mark.parametrize("flags, missing, rc", [
    ([], None, 1),  # Kaldi requires feats.scp by default
    (["--no-feats"], None, 0),
    (["--no-feats"], "text", 1),
    (["--no-feats", "--no-text"], "text", 0),
    (["--no-feats", "--no-wav", "--no-audio"], "wav.scp", 0),
])
def test_validate_flags(tmp_path, flags, missing, rc):
    d = write(tmp_path / "d", utt2spk="s1-a s1\ns1-b s1\n", spk2utt="s1 s1-a s1-b\n", text="s1-a A\ns1-b B\n")
    for utt in ("s1-a", "s1-b"):
        sf.write(d / f"{utt}.wav", np.zeros(1600), 16000)
    (d / "wav.scp").write_text(f"s1-a\t{d}/s1-a.wav\ns1-b\t{d}/s1-b.wav\n")
    if missing:
        (d / missing).unlink()
    res = tool("validate_data_dir.sh", *flags, d)
    assert res.returncode == rc, res.stdout + res.stderr


def test_validate_reports_what_fix_would_change(tmp_path):
    d = write(tmp_path / "d", utt2spk="a-1 s2\nb-1 s1\n", spk2utt="s1 b-1\ns2 a-1\n", wav_scp="a-1 /a\nb-1 /b\n",
              text="a-1 \x07bell\nb-1 <s> hi\n")
    res = tool("validate_data_dir.sh", "--no-feats", "--no-audio", d)
    assert res.returncode == 1
    assert "sorted first on speaker-id" in res.stderr and "non-printable" in res.stderr
    assert "illegal symbol" in res.stderr and "spk2utt and utt2spk do not match" in res.stderr
    ok = ["--no-feats", "--no-audio", "--no-spk-sort", "--non-print"]
    (d / "text").write_text("a-1 \x07bell\nb-1 hi\n")
    (d / "spk2utt").write_text("s2 a-1\ns1 b-1\n")
    assert tool("validate_data_dir.sh", *ok, d).returncode == 1  # spk2utt must also be sorted
    (d / "spk2utt").write_text("s1 b-1\ns2 a-1\n")
    assert tool("validate_data_dir.sh", *ok, d).returncode == 1  # ... and match utt2spk's order
    assert tool("validate_data_dir.sh", "--no-feats", "--no-audio", "--bogus", d).returncode == 1


def test_tools_through_a_symlinked_utils_from_another_dir(tmp_path):
    recipe = tmp_path / "other_recipe"
    recipe.mkdir()
    (recipe / "utils").symlink_to(ROOT / "utils")
    write(recipe / "data" / "x", **MESSY)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    res = subprocess.run(["utils/fix_data_dir.sh", "data/x"], cwd=recipe, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert read(recipe / "data" / "x", "utt2spk") == "s1-a s1\ns1-b s1\ns2-a s2\n"
    res = subprocess.run(["utils/split_data.sh", "--per-utt", "data/x", "2"], cwd=recipe, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    res = subprocess.run(["utils/filter_scp.pl", "-f", "2", "data/x/split2utt/1/utt2spk", "data/x/trials"],
                         cwd=recipe, capture_output=True, text=True, env=env)
    assert res.returncode == 0 and res.stdout == "s1\ts1-b\ttarget\n"


def test_line_tools_keep_lines(tmp_path):
    d = write(tmp_path / "d", **MESSY)
    res = tool("utt2spk_to_spk2utt.pl", d / "utt2spk")
    assert res.stdout == "s1 s1-a s1-b\ns2 s2-a s2-b\ns3 s3-a\ns4 s4-a\n"
    res = subprocess.run([str(ROOT / "utils" / "spk2utt_to_utt2spk.pl")], input="s1 a b\ns2 c\n",
                         capture_output=True, text=True)
    assert res.stdout == "a s1\nb s1\nc s2\n"
    (tmp_path / "ids").write_text("s1-b\ns2-a extra fields ignored\n")
    assert tool("filter_scp.pl", tmp_path / "ids", d / "wav.scp").stdout == "s1-b\t/c/s1-b.wav\ns2-a /c/s2-a.wav\n"
    res = tool("filter_scp.pl", "--exclude", tmp_path / "ids", d / "wav.scp")
    assert res.stdout.count("\n") == 4 and "s1-b" not in res.stdout


def test_segments_are_read_where_audio_is_read(tmp_path):
    from voxanon.audio import load_16k

    rate = 16000
    rec = np.arange(3 * rate, dtype=np.float32) / (3 * rate)
    (tmp_path / "d" / "wav").mkdir(parents=True)
    sf.write(tmp_path / "d" / "wav" / "r1.wav", rec, rate, subtype="FLOAT")
    d = write(tmp_path / "d", wav_scp="r1\twav/r1.wav\n", segments="r1-a r1 0.5 1.0\nr1-b r1 2 3\n",
              utt2spk="r1-a r1\nr1-b r1\n", spk2utt="r1 r1-a r1-b\n")
    data = load_data_dir(d)
    a = load_16k(resolve_wav(data, "r1-a"))
    assert len(a.samples) == rate // 2 and np.allclose(a.samples, rec[rate // 2:rate])
    assert np.allclose(load_16k(resolve_wav(data, "r1-b")).samples, rec[2 * rate:])
    res = tool("validate_data_dir.sh", "--no-feats", "--no-text", d)
    assert res.returncode == 0, res.stderr
    (d / "segments").write_text("r1-a r1 0.5 1.0\nr1-b r1 2 9\n")
    res = tool("validate_data_dir.sh", "--no-feats", "--no-text", d)
    assert res.returncode == 1 and "r1-b" in res.stderr and "outside the recording" in res.stderr

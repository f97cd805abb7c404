"""The stage driver: done-markers skip finished stages, a conf change re-runs them, a failing stage
prints its log's tail. Runs run.sh in a throw-away recipe dir that links to this checkout."""
import os
import shutil
import subprocess

import pytest

from conftest import link_recipe



@pytest.fixture
def recipe(tmp_path, tiny_data_dir):
    top = link_recipe(tmp_path / "recipe")
    shutil.copytree(tiny_data_dir, top / "data" / "tiny")
    conf = top / "t.yaml"
    conf.write_text(
        "exp: driver\n"
        "data: {recipe: mini, eval_sets: [tiny]}\n"
        "anonymizer: {system: mcadams, seed: 1}\n")
    return top, conf


def run_sh(top, *args, env=None):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VOXANON_")}, **(env or {})}
    return subprocess.run(["./run.sh", "--nj", "1", *args], cwd=top, env=env, capture_output=True, text=True)


def own_speech(path, speakers=8, utts=5):
    """A folder of wavs, <speaker>/<utt>.wav, half of them low-pitched."""
    import numpy as np
    import soundfile as sf

    t = np.arange(16000) / 16000
    for i in range(speakers):
        (path / f"spk{i}").mkdir(parents=True)
        f0 = 110 + 10 * i if i % 2 else 210 + 10 * i
        for j in range(utts):
            x = sum(np.sin(2 * np.pi * f0 * h * t * (1 + 0.01 * j)) / h for h in range(1, 5))
            sf.write(path / f"spk{i}" / f"u{j}.wav", 0.1 * x, 16000)
    return path


def mark_done(top, conf, *stages):
    """Stages marked done as run.sh marks them after they ran (stages 0-1 need models and a corpus)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXANON_")}
    for n in stages:
        for step in ("begin", "end"):
            res = subprocess.run([f"{top}/.venv/bin/python", "-m", "voxanon.bin.conf", step, "exp/driver/config.yaml",
                                  str(n)], cwd=top, env=env, capture_output=True, text=True)
            assert res.returncode == 0, res.stderr


def test_named_stage_runs_resuming_its_work_and_a_conf_change_replaces_it(recipe):
    top, conf = recipe
    first = run_sh(top, "--conf", str(conf), "--stage", "5", "--stop-stage", "5")
    assert first.returncode == 0, first.stdout + first.stderr
    wav = top / "data" / "tiny_driver" / "wav" / "spkA-u0.wav"  # suffix: _<exp>
    assert (top / "data" / "tiny_driver" / "wav.scp").is_file() and wav.is_file()
    assert (top / "exp" / "driver" / "log" / "stage5.anonymize.log").is_file()
    assert (top / "exp" / "driver" / "config.yaml").is_file()
    mtime = wav.stat().st_mtime_ns

    again = run_sh(top, "--conf", str(conf), "--stage", "5", "--stop_stage", "5")  # Kaldi's both spellings
    assert again.returncode == 0 and "Stage 5 (anonymize)" in again.stdout, again.stdout + again.stderr
    assert "replacing" not in again.stdout and wav.stat().st_mtime_ns == mtime  # ran, finished work kept

    conf.write_text(conf.read_text().replace("seed: 1", "seed: 2"))  # the anonymizer section changed
    changed = run_sh(top, "--conf", str(conf), "--stage", "5", "--stop-stage", "5")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "replacing earlier outputs" in changed.stdout and wav.stat().st_mtime_ns != mtime

    conf.write_text(conf.read_text().replace("eval_sets: [tiny]", "eval_sets: [missing]"))
    failed = run_sh(top, "--conf", str(conf), "--stage", "5", "--stop-stage", "5")
    assert failed.returncode != 0
    assert "stage 5 (anonymize) FAILED; last lines of exp/driver/log/stage5.anonymize.log" in failed.stderr
    assert "data/missing is not a data dir" in failed.stderr


def test_bare_run_resumes_at_the_first_incomplete_stage(recipe):
    top, conf = recipe
    assert run_sh(top, "--conf", str(conf), "--stage", "2", "--stop-stage", "5").returncode == 0
    mark_done(top, conf, 0, 1)
    assert run_sh(top, "--conf", str(conf), "--stage", "2", "--stop-stage", "5").returncode == 0  # 1 ran: redo 2-5
    complete = run_sh(top, "--conf", str(conf), "--stop-stage", "5")
    assert complete.returncode == 0 and "every stage up to 5 is complete" in complete.stdout, complete.stdout
    (top / "data" / "tiny_driver" / "wav.scp").unlink()
    resumed = run_sh(top, "--conf", str(conf), "--stop-stage", "5")
    assert resumed.returncode == 0 and "resuming at stage 5" in resumed.stdout, resumed.stdout + resumed.stderr
    assert "Stage 4" not in resumed.stdout and (top / "data" / "tiny_driver" / "wav.scp").is_file()


def test_outputs_another_experiment_rewrote_are_not_vouched_for(recipe):
    top, conf = recipe
    conf.write_text(conf.read_text().replace("seed: 1}", "seed: 1, suffix: _shared}"))
    other = top / "other.yaml"
    other.write_text(conf.read_text().replace("exp: driver", "exp: other").replace("seed: 1", "seed: 7"))
    assert run_sh(top, "--conf", str(conf), "--stage", "2", "--stop-stage", "5").returncode == 0
    mark_done(top, conf, 0, 1)
    assert run_sh(top, "--conf", str(conf), "--stage", "2", "--stop-stage", "5").returncode == 0
    refused = run_sh(top, "--conf", str(other), "--stage", "5", "--stop-stage", "5")
    assert refused.returncode != 0 and "another anonymizer config" in refused.stdout + refused.stderr
    forced = run_sh(top, "--conf", str(other), "--stage", "5", "--stop-stage", "5", "--force", "true")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    # Its stage-5 marker no longer vouches for the dir: stage 5 runs again and refuses the other's output
    # (stages 6-8 never score another experiment's anonymization).
    mine = run_sh(top, "--conf", str(conf), "--stop-stage", "8")
    assert "resuming at stage 5" in mine.stdout and mine.returncode != 0
    assert "data/tiny_shared holds output of another anonymizer config" in mine.stderr


def test_bad_conf_and_options_are_refused(recipe):
    top, conf = recipe
    conf.write_text(conf.read_text() + "anonymiser: {}\n")
    bad = run_sh(top, "--conf", str(conf))
    assert bad.returncode != 0 and "unknown section(s) anonymiser" in bad.stderr
    typo = run_sh(top, "--stage", "1", "--stop-stag", "2")
    assert typo.returncode != 0 and "unknown option --stop-stag" in typo.stderr


def test_stage_options_are_checked_and_help_lists_the_stages(recipe):
    top, conf = recipe
    for args, message in ((("--stage", "abc"), "--stage 'abc' is not a stage number 0-8"),
                          (("--stop-stage", "9"), "--stop-stage '9' is not a stage number 0-8"),
                          (("--stage", "5", "--stop-stage", "3"), "--stage 5 is after --stop-stage 3"),
                          (("--nj", "0"), "--nj '0' is not a positive integer")):
        bad = run_sh(top, "--conf", str(conf), *args)
        assert bad.returncode == 1 and message in bad.stderr and "Usage:" in bad.stderr, bad.stderr
    shown = run_sh(top, "--help")
    assert shown.returncode == 0 and "--conf FILE" in shown.stderr and "[conf/mini.yaml]" in shown.stderr
    assert all(f"  {n} {name}" in shown.stderr for n, name in enumerate(("models", "data", "features", "targets")))


def test_seedless_conf_refused_unless_public_seed(recipe):
    top, conf = recipe
    conf.write_text(conf.read_text().replace(", seed: 1", ""))
    refused = run_sh(top, "--conf", str(conf), "--stage", "4", "--stop-stage", "4")
    assert refused.returncode == 1 and "has no anonymizer.seed" in refused.stderr
    allowed = run_sh(top, "--conf", str(conf), "--stage", "4", "--stop-stage", "4", "--public-seed", "true")
    assert allowed.returncode == 0 and "PUBLIC default seed" in allowed.stderr, allowed.stderr


def test_interrupted_rerun_after_a_conf_edit_resumes_without_force(recipe):
    import shutil

    top, conf = recipe
    shutil.copytree(top / "data" / "tiny", top / "data" / "tiny2")
    conf.write_text(conf.read_text().replace("eval_sets: [tiny]", "eval_sets: [tiny, tiny2]"))
    assert run_sh(top, "--conf", str(conf), "--stage", "5", "--stop-stage", "5").returncode == 0
    conf.write_text(conf.read_text().replace("seed: 1", "seed: 2"))
    shutil.move(top / "data" / "tiny2", top / "tiny2.away")  # the stage dies after redoing tiny only
    assert run_sh(top, "--conf", str(conf), "--stage", "5", "--stop-stage", "5").returncode != 0
    shutil.move(top / "tiny2.away", top / "data" / "tiny2")
    resumed = run_sh(top, "--conf", str(conf), "--stage", "5", "--stop-stage", "5")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (top / "exp" / "driver" / ".done" / "stage5").is_file()
    assert not (top / "exp" / "driver" / ".done" / "stage5.overwrite").exists()


def test_wavlm_shards_of_another_split_or_input_are_not_reused(tmp_path, root, tiny_data_dir):
    """steps/make_wavlm.sh (stage 2) after a change of --nj or of the data dir, and with --overwrite."""
    from model_cache import _wavlm

    _wavlm(tmp_path / "wavlm.pt")
    feats = tmp_path / "feats"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXANON_")}

    def make(*opts):
        res = subprocess.run([str(root / "steps" / "make_wavlm.sh"), "--checkpoint", str(tmp_path / "wavlm.pt"),
                              "--device", "cpu", *opts, str(tiny_data_dir), str(feats)],
                             env=env, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr
        utts = [line.split()[0] for line in (feats / "feats.scp").read_text().splitlines()]
        skipped = sum("skipped" in log.read_text() for log in (feats / "log").glob("make_wavlm.*.log"))
        return utts, skipped

    all_utts = sorted((tiny_data_dir / "utt2spk").read_text().split()[::2])
    assert make("--nj", "1") == (all_utts, 0)
    assert make("--nj", "1") == (all_utts, 1)  # resumed: the finished shard is kept
    assert make("--nj", "2")[0] == all_utts  # another split: no shard of the old one (no duplicates)
    assert make("--nj", "2", "--overwrite", "true") == (all_utts, 0)
    (tiny_data_dir / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in all_utts[1:]))
    assert make("--nj", "2")[0] == all_utts[1:]  # another data dir: its own features


def test_any_system_on_the_offline_setup_with_your_data_and_a_changed_dir_is_noticed(recipe, root):
    top, _ = recipe
    mine = own_speech(top.parent / "mine")
    env = {"VOXANON_CACHE": str(root / "models")}  # the packaged models set up for this checkout
    on_vpc = run_sh(top, "--conf", "conf/mcadams.yaml", "--data", str(mine), "--stop-stage", "1", env=env)
    assert on_vpc.returncode == 1 and "add --setup mini" in on_vpc.stderr, on_vpc.stderr
    args = ("--conf", "conf/mcadams.yaml", "--setup", "mini", "--data", str(mine), "--stop-stage", "1")
    first = run_sh(top, *args, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    tag = next(p.name for p in (top / "data").iterdir() if p.name.startswith("mine-"))
    assert (top / "exp" / f"mcadams_mini_{tag}" / "config.yaml").is_file()
    trials = top / "data" / tag / "mini_trials_f" / "wav.scp"
    assert trials.is_file()
    assert "every stage up to 1 is complete" in run_sh(top, *args, env=env).stdout
    shutil.rmtree(mine / "spk7")  # a speaker removed from the folder: stage 1 runs again
    again = run_sh(top, *args, env=env)
    assert again.returncode == 0 and "resuming at stage 1" in again.stdout, again.stdout
    assert "spk7" not in (top / "data" / tag / "mini_train" / "utt2spk").read_text() + trials.read_text()


def test_one_run_per_experiment_while_a_run_or_its_left_over_jobs_hold_the_lock(recipe):
    import fcntl

    top, conf = recipe
    assert run_sh(top, "--conf", str(conf), "--stage", "4", "--stop-stage", "4").returncode == 0
    with open(top / "exp" / "driver" / ".lock", "a") as held:  # as a job of a killed run.sh would
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        busy = run_sh(top, "--conf", str(conf), "--stage", "4", "--stop-stage", "4")
    assert busy.returncode == 1 and "exp/driver is being run by another run.sh or its jobs" in busy.stderr
    assert run_sh(top, "--conf", str(conf), "--stage", "4", "--stop-stage", "4").returncode == 0

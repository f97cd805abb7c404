"""The stage driver: done-markers skip finished stages, a conf change re-runs them, a failing stage
prints its log's tail. Runs run.sh in a throw-away recipe dir that links to this checkout."""
import os
import shutil
import subprocess

import pytest

LINKED = ("run.sh", "path.sh", "cmd.sh", "requirements.txt", "utils", "steps", "local", "pyscripts", "conf", ".venv")


@pytest.fixture
def recipe(tmp_path, root, tiny_data_dir):
    if not (root / ".venv" / ".voxanon-stamp").is_file():
        pytest.skip("needs the set-up .venv (utils/setup_env.sh)")
    top = tmp_path / "recipe"
    top.mkdir()
    for name in LINKED:
        (top / name).symlink_to(root / name)
    shutil.copytree(tiny_data_dir, top / "data" / "tiny")
    conf = top / "t.yaml"
    conf.write_text(
        "exp: driver\n"
        "data: {recipe: mini, eval_sets: [tiny]}\n"
        "anonymizer: {system: mcadams, seed: 1}\n")
    return top, conf


def run_sh(top, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXANON_")}
    return subprocess.run(["./run.sh", "--nj", "1", *args], cwd=top, env=env, capture_output=True, text=True)


def test_skip_rerun_on_conf_change_and_failure_tail(recipe):
    top, conf = recipe
    first = run_sh(top, "--conf", str(conf), "--stage", "5", "--stop-stage", "5")
    assert first.returncode == 0, first.stdout + first.stderr
    wav = top / "data" / "tiny_mcadams" / "wav" / "spkA-u0.wav"
    assert (top / "data" / "tiny_mcadams" / "wav.scp").is_file() and wav.is_file()
    assert (top / "exp" / "driver" / "log" / "stage5.anonymize.log").is_file()
    mtime = wav.stat().st_mtime_ns

    again = run_sh(top, "--conf", str(conf), "--stage", "5", "--stop-stage", "5")
    assert again.returncode == 0 and "stage 5 (anonymize): done already, skipped" in again.stdout
    assert wav.stat().st_mtime_ns == mtime

    conf.write_text(conf.read_text().replace("seed: 1", "seed: 2"))  # the anonymizer section changed
    changed = run_sh(top, "--conf", str(conf), "--stage", "5", "--stop-stage", "5")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "done already" not in changed.stdout and wav.stat().st_mtime_ns != mtime

    conf.write_text(conf.read_text().replace("eval_sets: [tiny]", "eval_sets: [missing]"))
    failed = run_sh(top, "--conf", str(conf), "--stage", "5", "--stop-stage", "5")
    assert failed.returncode != 0
    assert "stage 5 (anonymize) FAILED; last lines of exp/driver/log/stage5.anonymize.log" in failed.stderr
    assert "data/missing is not a data dir" in failed.stderr


def test_bad_conf_and_options_are_refused(recipe):
    top, conf = recipe
    conf.write_text(conf.read_text() + "anonymiser: {}\n")
    bad = run_sh(top, "--conf", str(conf))
    assert bad.returncode != 0 and "unknown section(s) anonymiser" in bad.stderr
    typo = run_sh(top, "--stage", "1", "--stop-stag", "2")
    assert typo.returncode != 0 and "unknown option --stop-stag" in typo.stderr

"""run.sh's bookkeeping: which conf sections each stage reads, what it leaves behind, and the
done-markers that let a bare ``./run.sh`` resume where it stopped.

A marker ``exp/<exp>/.done/stage<N>`` holds the stage's key (the sections of stages 0..N and the
contents of ``--data``) and a signature of each output: a data dir's ``.data_key``, an anonymized
dir's output stamp. A marker vouches for a stage only while the key and every signature still
match, so outputs that another experiment rebuilt or re-anonymized are noticed.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from voxanon.config import ConfigError, fingerprint
from voxanon.experiment import Experiment
from voxanon.fileio import atomic_write_bytes

# The conf section each stage 0-8 of run.sh reads (run.sh names the stages); a stage's key covers
# those of every earlier stage too, so editing a section invalidates the stages from the first one
# that reads it.
SECTIONS = ("models", "data", "features", "targets", "train", "anonymizer", "asv", "eval", "report")
DATA_KEY_FILE = ".data_key"  # in each stage-1 set dir: the data settings it was built with
OUTPUT_STAMP = ".anonymizer.json"  # in each stage-5 output dir (voxanon.anonymize.outdir.STAMP_FILE)


def content_stamp(path: str | Path) -> str:
    """What a user's ``--data`` holds: every file's name, size and mtime, and the bytes of the
    small ones (Kaldi tables), so removing a speaker or replacing a wav changes it."""
    h = hashlib.sha256()
    root = Path(path)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for name in sorted(filenames):
            file = Path(dirpath, name)
            st = file.stat()
            h.update(f"{file.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
            if st.st_size < 1 << 20 and not name.lower().endswith((".wav", ".flac")):
                h.update(file.read_bytes())
    return h.hexdigest()[:16]


def stage_keys(exp: Experiment, user_data: str = "") -> list[str]:
    """One key per stage: ``exp`` and the sections of stages 0..N, from stage 1 on the --data contents."""
    resolved = exp.to_dict()
    contents = content_stamp(user_data) if user_data else ""
    return [fingerprint({"exp": exp.exp, **({"data_contents": contents} if n else {}),
                         **{s: resolved[s] for s in SECTIONS[:n + 1]}}) for n in range(len(SECTIONS))]


def data_key(exp: Experiment, user_data: str, set_dir: str | Path) -> str:
    """What stage-1 set dir ``set_dir`` is stamped with: the corpus recipe and its options, the
    --data contents and the set's name; nothing of the experiment, not even the other sets it
    names, so experiments on the same data share their dirs."""
    data, name = exp.to_dict()["data"], Path(set_dir).name
    # the target pool's settings make the pool's dir only: kNN-VC and McAdams share the others
    options = {k: v for k, v in data["options"].items() if k != "target_pool" or name == data["target_pool"]}
    return fingerprint({"recipe": data["recipe"], "options": options, "set": name,
                        "data_contents": content_stamp(user_data) if user_data else ""})


def outputs(exp: Experiment, stage: int, data_root: str) -> list[str]:
    """Files a finished stage leaves behind."""
    data = exp.data
    if stage == 1:
        return [f"{data_root}/{s}/wav.scp" for s in (*data.anonymized_sets, *([data.target_pool] * exp.uses_targets))]
    if stage == 2 and exp.uses_targets:
        return [f"{exp.features.dir}/{s}/feats.scp" for s in exp.features.sets or (data.target_pool,)]
    if stage == 3 and exp.uses_targets:
        return [f"{exp.targets.dir}/{data.target_pool}/.targets.json"]
    if stage == 4 and "wavlm_conv" in exp.anonymizer.systems:
        return [f"{exp.exp_dir}/converter/final.pt"]
    if stage == 5:
        return [f"{data_root}/{s}{exp.anonymizer.suffix}/wav.scp" for s in data.anonymized_sets]
    if stage == 8:
        return [f"{exp.exp_dir}/report/index.html"]
    return []


def signature(stage: int, output: str) -> str:
    """What must stay the same for a marker to vouch for ``output``: for a data dir its data key,
    for an anonymized dir its output stamp; existence for the rest."""
    name = {1: DATA_KEY_FILE, 5: OUTPUT_STAMP}.get(stage)
    if name is None:
        return "present"
    file = Path(output).parent / name
    return hashlib.sha256(file.read_bytes()).hexdigest()[:16] if file.is_file() else "unstamped"


def marker_path(exp: Experiment, stage: int) -> Path:
    return Path(exp.exp_dir) / ".done" / f"stage{stage}"


def write_marker(exp: Experiment, stage: int, key: str, data_root: str) -> None:
    lines = [key] + [f"{signature(stage, out)} {out}" for out in outputs(exp, stage, data_root)]
    atomic_write_bytes(marker_path(exp, stage), ("\n".join(lines) + "\n").encode())


def stale_reason(exp: Experiment, stage: int, key: str, data_root: str) -> str:
    """Why stage ``stage`` must run ("" = its marker still vouches for it)."""
    path = marker_path(exp, stage)
    if not path.is_file():
        return "not done yet"
    key_line, *lines = path.read_text().splitlines()
    if key_line != key:
        return "the conf (or --data) changed since it ran"
    recorded = dict(reversed(line.split(" ", 1)) for line in lines)
    for out in outputs(exp, stage, data_root):
        if not os.path.exists(out):
            return f"{out} is missing"
        if recorded.get(out) != signature(stage, out):
            return f"{Path(out).parent} was rewritten since (another experiment or run)"
    return ""


def plan(exp: Experiment, user_data: str, data_root: str, from_stage: int) -> int:
    """run.sh's start: write the stage keys and each stage-1 set's data key; return the first stage from
    ``from_stage`` whose marker does not vouch for it (9: none)."""
    keys = stage_keys(exp, user_data)
    done = Path(exp.exp_dir) / ".done"
    done.mkdir(parents=True, exist_ok=True)
    (done / "keys").write_text("\n".join(keys) + "\n")
    (done / "set_keys").write_text("".join(f"{data_key(exp, user_data, Path(out).parent)} {Path(out).parent}\n"
                                           for out in outputs(exp, 1, data_root)))
    return next((n for n in range(from_stage, len(keys)) if stale_reason(exp, n, keys[n], data_root)), len(keys))


def begin(exp: Experiment, n: int, data_root: str, force: bool) -> str:
    """Stage ``n`` starts: 'true' when it must replace earlier outputs (another config made them,
    an overwrite was interrupted, --force), else 'false' (it resumes). Refuses to rebuild a
    data dir another experiment built with other data settings, unless forced."""
    done = Path(exp.exp_dir) / ".done"
    key = (done / "keys").read_text().split()[n]
    marker, pending = done / f"stage{n}", done / f"stage{n}.overwrite"
    overwrite = force or (marker.is_file() and marker.read_text().split("\n", 1)[0] != key) \
        or (pending.is_file() and pending.read_text().strip() == key)
    if n == 1 and not force:
        wanted = _set_keys(done)
        for out in outputs(exp, 1, data_root):
            stamp = Path(out).parent / DATA_KEY_FILE
            if stamp.is_file() and stamp.read_text().strip() != wanted[str(Path(out).parent)] \
                    and not _built_by_us(exp, stamp):
                raise ConfigError(f"{Path(out).parent} was built with other data settings (another experiment's?); "
                                  "re-run with --force true to rebuild it (that experiment's stages then re-run)")
    for m in range(n, len(SECTIONS)):  # later stages read what this one writes
        (done / f"stage{m}").unlink(missing_ok=True)
    if overwrite:
        pending.write_text(key + "\n")
    return "true" if overwrite else "false"


def _set_keys(done: Path) -> dict[str, str]:
    """Each stage-1 set dir's data key, as plan() wrote them: dir -> key."""
    return {d: k for k, d in (line.split(" ", 1) for line in (done / "set_keys").read_text().splitlines())}


def _built_by_us(exp: Experiment, stamp: Path) -> bool:
    """Whether this experiment's last stage 1 built the data dir of ``stamp`` (its --data changed
    since): then rebuilding it takes nothing from another experiment."""
    built = Path(exp.exp_dir) / ".done" / "data_keys"
    return built.is_file() and f"{stamp.read_text().strip()} {stamp.parent}" in built.read_text().splitlines()


def end(exp: Experiment, n: int, data_root: str) -> None:
    done = Path(exp.exp_dir) / ".done"
    keys = (done / "keys").read_text().split()
    key = keys[n]
    if n == 1:
        built = []
        for out in outputs(exp, 1, data_root):
            if Path(out).parent.is_dir():
                key_of_set = _set_keys(done)[str(Path(out).parent)]
                (Path(out).parent / DATA_KEY_FILE).write_text(key_of_set + "\n")
                built.append(f"{key_of_set} {Path(out).parent}")
        (done / "data_keys").write_text("".join(f"{line}\n" for line in built))
    write_marker(exp, n, key, data_root)
    (done / f"stage{n}.overwrite").unlink(missing_ok=True)

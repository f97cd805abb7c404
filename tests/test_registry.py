"""Model registry: resolve, verify, resumable download from a local HTTP server, zip unpacking,
offline listing, and stage 0 on a conf. Nothing leaves 127.0.0.1."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from voxanon.registry import (ChecksumMismatch, ModelError, ModelMissing, ModelsConfig, fetch_model,
                              load_registry, resolve_model)

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = bytes(range(256)) * 4000  # ~1 MB: several read chunks


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files[path]`` with HTTP Range support (unless ``server.honor_range`` is
    False); ``server.truncate`` sends only half the body and drops the connection."""

    def do_GET(self):
        srv = self.server
        srv.seen.append((self.path, self.headers.get("Range")))
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start, rng = 0, self.headers.get("Range")
        if rng and srv.honor_range:
            start = int(rng.split("=")[1].rstrip("-"))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if srv.truncate else body)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.seen, srv.honor_range, srv.truncate = {}, [], True, False
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _registry(tmp_path: Path, url: str, sha: str | None, name: str = "toy.pt", extra: dict | None = None):
    models = {"toy": {"path": f"toys/{name}", "licence": "MIT", "size": "1 MB",
                      "files": [{"name": f"toys/{name}", "url": f"{url}/{name}", "sha256": sha}]}}
    models.update(extra or {})
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"models": models}))
    return load_registry(path)


def test_resolve_local_path_override_and_missing(tmp_path):
    local = tmp_path / "mine.pt"
    local.write_bytes(b"x")
    reg = _registry(tmp_path, "http://127.0.0.1:9", None)
    cfg = ModelsConfig(cache_dir=str(tmp_path / "cache"))
    assert resolve_model(str(local), cfg, reg) == local
    assert resolve_model("toy", ModelsConfig(paths={"toy": str(local)}), reg) == local
    with pytest.raises(ModelMissing) as err:
        resolve_model("toy", cfg, reg)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"toy.pt (model 'toy') expected at {tmp_path / 'cache' / 'toys' / 'toy.pt'}" in msg
    assert "get it from http://127.0.0.1:9/toy.pt" in msg
    with pytest.raises(ModelMissing, match="models.paths gives .*nothere.pt, which does not exist"):
        resolve_model("toy", ModelsConfig(paths={"toy": str(tmp_path / "nothere.pt")}), reg)
    with pytest.raises(ModelMissing, match=r"'nosuch': no such file, and not a name in models.yaml \(known: toy\)"):
        resolve_model("nosuch", cfg, reg)


def test_registry_rejects_invented_looking_checksums_and_bad_keys(tmp_path):
    with pytest.raises(ModelError, match="not a lowercase hex sha256"):
        _registry(tmp_path, "http://x", "abc123")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"models": {"m": {"path": "a", "licence": "MIT", "source": "package:p", "files": [
        {"name": "a", "url": "http://x"}]}}}))
    with pytest.raises(ModelError, match="either 'files'"):
        load_registry(path)


def test_repo_registry_parses_and_pins_only_published_checksums():
    reg = load_registry()
    assert {"wavlm-large", "knnvc-prematch-vocoder", "knnvc-vocoder", "whisper-medium.en", "piper-libritts_r-medium",
            "vpc-asv-orig", "vpc-asr", "vpc-ser", "whisper-base-ct2", "whisper-tiny.en-ct2",
            "piper-joe-medium"} <= set(reg)
    whisper = reg["whisper-medium.en"].files[0]
    assert whisper.sha256 == whisper.url.split("/")[-2]  # openai embeds the sha256 in the URL


def test_preplaced_file_accepted_and_corrupt_one_refused(tmp_path):
    reg = _registry(tmp_path, "http://127.0.0.1:9", _sha(PAYLOAD))
    cfg = ModelsConfig(cache_dir=str(tmp_path / "cache"))
    dest = tmp_path / "cache" / "toys" / "toy.pt"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(PAYLOAD)
    assert fetch_model(reg["toy"], cfg) == dest  # no network needed (port 9 is closed)
    dest.write_bytes(PAYLOAD[:-1] + b"!")
    with pytest.raises(ChecksumMismatch, match="is there but its sha256 differs"):
        fetch_model(reg["toy"], cfg)
    assert dest.read_bytes() == PAYLOAD[:-1] + b"!"  # the user's file is never deleted
    assert not list(dest.parent.glob("*.part"))


def test_download_resumes_a_partial_part_with_range(tmp_path, server):
    server.files["/toy.pt"] = PAYLOAD
    reg = _registry(tmp_path, server.url, _sha(PAYLOAD))
    cfg = ModelsConfig(cache_dir=str(tmp_path / "cache"))
    part = tmp_path / "cache" / "toys" / "toy.pt.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:300_001])
    path = fetch_model(reg["toy"], cfg)
    assert path.read_bytes() == PAYLOAD and not part.exists()
    assert server.seen == [("/toy.pt", "bytes=300001-")]


def test_interrupted_download_keeps_part_and_resumes(tmp_path, server):
    server.files["/toy.pt"] = PAYLOAD
    server.truncate = True
    reg = _registry(tmp_path, server.url, None)  # unpinned: the length check alone catches it
    cfg = ModelsConfig(cache_dir=str(tmp_path / "cache"))
    dest = tmp_path / "cache" / "toys" / "toy.pt"
    with pytest.raises(ModelMissing, match="is kept, run again to resume"):
        fetch_model(reg["toy"], cfg)
    part = dest.with_name("toy.pt.part")
    assert not dest.exists() and part.stat().st_size == len(PAYLOAD) // 2
    server.truncate = False
    assert fetch_model(reg["toy"], cfg).read_bytes() == PAYLOAD
    assert server.seen[-1] == ("/toy.pt", f"bytes={len(PAYLOAD) // 2}-")


def test_server_ignoring_range_restarts_from_zero(tmp_path, server):
    server.files["/toy.pt"] = PAYLOAD
    server.honor_range = False
    reg = _registry(tmp_path, server.url, _sha(PAYLOAD))
    cfg = ModelsConfig(cache_dir=str(tmp_path / "cache"))
    part = tmp_path / "cache" / "toys" / "toy.pt.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"garbage that is not a prefix")
    assert fetch_model(reg["toy"], cfg).read_bytes() == PAYLOAD


def test_checksum_mismatch_on_download_leaves_nothing(tmp_path, server):
    server.files["/toy.pt"] = PAYLOAD
    reg = _registry(tmp_path, server.url, _sha(b"something else"))
    cfg = ModelsConfig(cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ChecksumMismatch, match="deleted the download, nothing was installed"):
        fetch_model(reg["toy"], cfg)
    assert list((tmp_path / "cache" / "toys").iterdir()) == []


def test_zip_unpacked_atomically(tmp_path, server):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("exp/asv_orig/hyperparams.yaml", "a: 1\n")
        z.writestr("exp/asv_orig/CKPT/embedding_model.ckpt", b"\0" * 10)
    server.files["/asv_orig.zip"] = buf.getvalue()
    server.files["/broken.zip"] = b"PK not really a zip"
    extra = {"broken": {"path": "vpc/broken", "licence": "x",
                        "files": [{"name": "vpc/broken.zip", "url": f"{server.url}/broken.zip", "unpack": True}]}}
    reg = _registry(tmp_path, server.url, None, extra={
        "asv": {"path": "vpc/asv_orig", "licence": "GPL-3.0",
                "files": [{"name": "vpc/asv_orig.zip", "url": f"{server.url}/asv_orig.zip",
                           "sha256": _sha(buf.getvalue()), "unpack": True}]}, **extra})
    cfg = ModelsConfig(cache_dir=str(tmp_path / "cache"))
    path = fetch_model(reg["asv"], cfg)
    assert path == tmp_path / "cache" / "vpc" / "asv_orig"
    assert (path / "hyperparams.yaml").read_text() == "a: 1\n" and (path / "CKPT" / "embedding_model.ckpt").is_file()
    with pytest.raises(ModelMissing, match="not a valid zip"):
        fetch_model(reg["broken"], cfg)
    assert sorted(p.name for p in (tmp_path / "cache" / "vpc").iterdir()) == ["asv_orig", "broken.zip"]


def test_offline_reports_one_line_per_missing_file(tmp_path):
    reg = _registry(tmp_path, "http://127.0.0.1:9", None, extra={
        "voice": {"path": "p/v.onnx", "licence": "MIT", "files": [
            {"name": "p/v.onnx", "url": "http://127.0.0.1:9/v.onnx"},
            {"name": "p/v.onnx.json", "url": "http://127.0.0.1:9/v.onnx.json"}]}})
    cfg = ModelsConfig(cache_dir=str(tmp_path / "cache"), offline=True)
    with pytest.raises(ModelMissing) as err:
        fetch_model(reg["voice"], cfg)
    lines = str(err.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"missing: v.onnx (model 'voice') expected at {tmp_path / 'cache' / 'p' / 'v.onnx'}; "
                               "get it from http://127.0.0.1:9/v.onnx")
    assert lines[1].startswith("missing: v.onnx.json (model 'voice')")


def _stage0(conf: Path, cache: Path):
    env = {**os.environ, "VOXANON_CACHE": str(cache)}
    return subprocess.run([str(ROOT / "local" / "download_models.sh"), str(conf)],
                          capture_output=True, text=True, env=env, cwd=ROOT)


def test_stage0_offline_lists_exactly_what_is_missing_then_passes_with_files_placed(tmp_path):
    conf = tmp_path / "knnvc.yaml"
    conf.write_text(yaml.safe_dump({
        "exp": "stage0_test",
        "models": {"offline": True},
        "features": {"checkpoint": "wavlm-large"},
        "data": {"target_pool": "pool"}, "anonymizer": {"system": "knnvc"},
        "asv": {"orig_model": ""}, "eval": {"metrics": ["asv"]},  # no evaluation models to fetch
    }))
    cache = tmp_path / "cache"
    run = _stage0(conf, cache)
    assert run.returncode == 1
    reg = load_registry()
    expected = []
    for name in ("wavlm-large", "knnvc-prematch-vocoder"):
        f = reg[name].files[0]
        expected.append(f"missing: {Path(f.name).name} (model {name!r}) expected at {cache / f.name}; get it from {f.url} "
                        "[models.offline is true]")
    assert run.stdout.splitlines() == expected
    assert "model weights missing" in run.stderr

    for name in ("wavlm-large", "knnvc-prematch-vocoder"):
        dest = cache / reg[name].files[0].name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(name.encode())
    run = _stage0(conf, cache)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"present: wavlm-large -> {cache / 'knnvc' / 'WavLM-Large.pt'}  [knnvc/WavLM-Large.pt sha256 {_sha(b'wavlm-large')} " \
           "(not pinned in conf/models.yaml)]" in run.stdout.splitlines()



def test_list_shows_status_of_a_confs_models(tmp_path, monkeypatch, capsys):
    from voxanon.bin.models import main

    conf = tmp_path / "c.yaml"
    conf.write_text(yaml.safe_dump({"exp": "x", "features": {"checkpoint": "wavlm-large"}, "data": {"target_pool": "p"},
                                    "anonymizer": {"system": "knnvc", "params": {"vocoder": "own/voc.pt"}},
                                    "asv": {"orig_model": ""}, "eval": {"metrics": ["asv"]}}))
    monkeypatch.setenv("VOXANON_CACHE", str(tmp_path / "cache"))
    assert main(["list", "--conf", str(conf)]) == 0
    rows = [line.split()[:2] for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [["wavlm-large", "missing"]]
    dest = tmp_path / "cache" / "knnvc" / "WavLM-Large.pt"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"w")
    assert main(["list", "--conf", str(conf), "--verify"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:2] == ["wavlm-large", "present"] and _sha(b"w") in out[2]


def test_stage0_wants_the_evaluation_models_of_the_metrics_computed():
    """Every conf is evaluated: a vpc2024 conf that leaves eval to its defaults needs the VPC models;
    the offline mini conf (no UAR, its own ASV_orig, Whisper WER) needs none of them."""
    from voxanon.bin.models import needed

    reg = load_registry()
    root = Path(__file__).resolve().parents[1]
    assert {"vpc-asr", "vpc-ser", "vpc-asv-orig"} <= set(needed(str(root / "conf" / "mcadams.yaml"), reg)[1])
    assert not {"vpc-asr", "vpc-ser", "vpc-asv-orig"} & set(needed(str(root / "conf" / "mini.yaml"), reg)[1])

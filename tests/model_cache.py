"""A test model cache: a random-weight stand-in, in the published checkpoint layout, at the cache
path conf/models.yaml gives each registry model, so a shipped conf runs with no download.

``build_model_cache(root)`` returns ``(cache, paths)``: point ``$VOXANON_CACHE`` at ``cache`` and
put ``paths`` under the conf's ``models.paths``. ``paths`` holds the models whose published
sha256 is pinned (a stand-in cannot match it, so it is given as a local path, which stage 0
accepts as the user's own weights). Packaged models (faster-whisper base, Piper joe) are the real
ones, linked from the project's cache.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from asr_tts_helpers import make_piper_voice, make_whisper_checkpoint
from knnvc_helpers import TINY, randomize, tiny_generator
from voxanon.features.wavlm import WavLM, save_wavlm
from voxanon.model_cache import default_cache_dir
from voxanon.packaged import WHISPER_BASE
from voxanon.registry import load_registry
from voxanon.testing.vpc_models import make_vpc_asr, make_vpc_asv_orig, make_vpc_asv_ssl, make_vpc_ser
from voxanon.vocoder.hifigan import save_generator


def _wavlm(dest: Path) -> None:
    """Narrow, but with the 6 layers the confs read their features from."""
    torch.manual_seed(0)
    save_wavlm(randomize(WavLM(replace(TINY, encoder_layers=6))).eval(), dest, "original")


def _piper(dest: Path) -> None:
    onnx = make_piper_voice(dest.parent)
    onnx.rename(dest)
    onnx.with_name(onnx.name + ".json").rename(dest.with_name(dest.name + ".json"))


# registry name -> writes the stand-in at the entry's path in the cache
BUILDERS = {
    "wavlm-large": _wavlm,
    "knnvc-prematch-vocoder": lambda p: save_generator(tiny_generator(), p),
    "knnvc-vocoder": lambda p: save_generator(tiny_generator(1), p),
    "whisper-medium.en": make_whisper_checkpoint,
    "piper-libritts_r-medium": _piper,
    "vpc-asr": make_vpc_asr,
    "vpc-ser": make_vpc_ser,
    "vpc-asv-orig": make_vpc_asv_orig,
    "vpc-asv-ssl": make_vpc_asv_ssl,
}


def build_model_cache(root: Path) -> tuple[Path, dict[str, str]]:
    registry = load_registry()
    unknown = sorted(set(registry) - set(BUILDERS) - {n for n, e in registry.items() if e.package})
    assert not unknown, f"no stand-in for registry model(s) {unknown}: add a builder to tests/model_cache.py"
    cache, paths = root / "cache", {}
    for name, build in BUILDERS.items():
        dest = cache / registry[name].path
        dest.parent.mkdir(parents=True, exist_ok=True)
        build(dest)
        if any(f.sha256 for f in registry[name].files):
            paths[name] = str(dest)
    whisper_base = default_cache_dir() / WHISPER_BASE  # assembled by utils/setup_env.sh
    if not (whisper_base / "model.bin").is_file():
        raise FileNotFoundError(f"{whisper_base} not assembled: run utils/setup_env.sh")
    (cache / WHISPER_BASE).symlink_to(whisper_base)
    return cache, paths

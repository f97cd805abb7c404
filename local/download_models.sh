#!/usr/bin/env bash
# Stage 0: the pretrained weights an experiment needs (names from conf/models.yaml found among its
# resolved values), fetched into the cache ($VOXANON_CACHE, or models.cache_dir) with resumable,
# sha256-verified downloads. Pre-placed files and local paths are accepted; present files are
# re-verified, never re-downloaded (delete one to fetch it again).
# Offline or unreachable: one line per missing file (where it belongs, where to get it), exit 1.
set -euo pipefail
help_message="Usage: $0 <config.yaml>"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] || { echo "$help_message" >&2; exit 1; }
if ! python -m voxanon.bin.models fetch --conf "$1"; then
  echo "$0: model weights missing (see the lines above); fetch them on a machine with internet or place them, then re-run" >&2
  exit 1
fi

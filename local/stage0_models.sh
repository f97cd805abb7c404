#!/usr/bin/env bash
# run.sh stage 0: the pretrained weights this conf needs (names from conf/models.yaml found among
# the conf's values, defaults included), fetched into the cache ($VOXANON_CACHE, or models.cache_dir)
# with resumable, sha256-verified downloads. Pre-placed files and local paths are accepted.
# Offline or unreachable: one line per missing file (where it belongs, where to get it), exit 1.
#   local/stage0_models.sh [--overwrite false] <conf.yaml>
# --overwrite is accepted for run.sh; present files are always re-verified and never re-downloaded
# (delete a file to fetch it again).
set -euo pipefail
overwrite=false
help_message="Usage: $0 [--overwrite false] <conf.yaml>"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] || { echo "$help_message" >&2; exit 1; }
conf=$1
if ! python -m voxanon.bin.models fetch --conf "$conf"; then
  echo "$0: model weights missing (see the lines above); fetch them on a machine with internet or place them, then re-run" >&2
  exit 1
fi

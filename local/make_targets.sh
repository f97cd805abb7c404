#!/usr/bin/env bash
# Stage 3: kNN-VC matching sets of the target pool, from its stage-2 features
# (<features.dir>/<pool>), into <targets.dir>/<pool>; reused when up to date.
set -euo pipefail
overwrite=false
help_message="Usage: $0 [--overwrite false] <config.yaml> <pool-datadir>"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 2 ] || { echo "$help_message" >&2; exit 1; }
config=$1
pool_data=$2
mapfile -t v < <(python -m voxanon.bin.conf get "$config" targets.dir features.dir)
[ ${#v[@]} -eq 2 ] || exit 1
pool=$(basename "$pool_data")
out=${v[0]}/$pool
mkdir -p "$out/log"
python -m voxanon.bin.make_targets --conf "$config" --overwrite "$overwrite" "$pool_data" "${v[1]}/$pool" "$out" \
  2>&1 | tee "$out/log/make_targets.log"

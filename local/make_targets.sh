#!/usr/bin/env bash
# run.sh stage 3: kNN-VC matching sets of the conf's data.target_pool, from its stage-2 features
# (<features.dir>/<pool>), into <targets.dir>/<pool>; reused when up to date. A no-op for systems
# without target speakers.
set -euo pipefail
overwrite=false
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] || { echo "Usage: $0 [--overwrite false] <conf.yaml>" >&2; exit 1; }
conf=$1
data=${VOXANON_DATA:-data}
conf_get() { python -m voxanon.bin.conf get "$conf" "$1"; }
system=$(conf_get anonymizer.system)
case "$system" in
  knnvc|wavlm_conv) ;;
  *) echo "$0: system $system has no kNN-VC target speakers; nothing to do"; exit 0 ;;
esac
pool=$(conf_get data.target_pool)
[ -n "$pool" ] || { echo "$0: system $system needs data.target_pool in $conf" >&2; exit 1; }
out=$(conf_get targets.dir)/$pool
mkdir -p "$out/log"
python -m voxanon.bin.make_targets --conf "$conf" --overwrite "$overwrite" "$data/$pool" "$(conf_get features.dir)/$pool" "$out" \
  2>&1 | tee "$out/log/make_targets.log"

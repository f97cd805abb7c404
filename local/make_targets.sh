#!/usr/bin/env bash
# run.sh stage 3: kNN-VC matching sets of the conf's data.target_pool, from its stage-2 features
# (<features.dir>/<pool>), into <targets.dir>/<pool>; reused when up to date. Runs when a system (or
# an admixture part) is knnvc or wavlm_conv; a no-op otherwise.
set -euo pipefail
overwrite=false
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] || { echo "Usage: $0 [--overwrite false] <conf.yaml>" >&2; exit 1; }
conf=$1
data=${VOXANON_DATA:-data}
eval "$(python -m voxanon.bin.conf vars "$conf" systems=anonymizer.systems pool=data.target_pool \
  targets=targets.dir feats=features.dir)"
case " $systems " in
  *" knnvc "*|*" wavlm_conv "*) ;;
  *) echo "$0: $systems: no kNN-VC target speakers; nothing to do"; exit 0 ;;
esac
out=$targets/$pool
mkdir -p "$out/log"
python -m voxanon.bin.make_targets --conf "$conf" --overwrite "$overwrite" "$data/$pool" "$feats/$pool" "$out" \
  2>&1 | tee "$out/log/make_targets.log"

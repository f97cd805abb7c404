#!/usr/bin/env bash
# run.sh stage 5: anonymize every set the conf names (data.anonymized_sets) into
# $VOXANON_DATA/<set><suffix>, with the anonymizer's device deciding the queue ($cuda_cmd for GPU).
# --allow-pipes / --public-seed / --overwrite go to every steps/anonymize.sh.
set -euo pipefail
overwrite=false
allow_pipes=false
public_seed=false
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] || { echo "Usage: $0 [--overwrite false] [--allow-pipes false] [--public-seed false] <conf.yaml>" >&2; exit 1; }
conf=$1
data=${VOXANON_DATA:-data}
nj=${VOXANON_NJ:-2}
eval "$(python -m voxanon.bin.conf vars "$conf" suffix=anonymizer.out_suffix device=anonymizer.device \
  sets=data.anonymized_sets)"
cmd=${train_cmd:-run.pl}
case "$device" in cuda*|auto) cmd=${cuda_cmd:-$cmd} ;; esac
[ -n "$sets" ] || { echo "$0: the conf names no sets to anonymize (data.eval_sets, asv_train_set, emotion_sets)" >&2; exit 1; }
for set in $sets; do
  steps/anonymize.sh --nj "$nj" --cmd "$cmd" --overwrite "$overwrite" --allow-pipes "$allow_pipes" \
    --public-seed "$public_seed" \
    --record-dir "${VOXANON_EXP:-exp}/anon_records/$set$suffix" "$conf" "$data/$set" "$data/$set$suffix"
done

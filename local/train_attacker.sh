#!/usr/bin/env bash
# run.sh stage 6: ECAPA-TDNN ASV attackers (VPC 2024 recipe, conf section 'asv').
#   asv_orig: on the original data.asv_train_set (ignorant and lazy-informed attackers), unless
#             asv.orig_model names a pretrained one (e.g. the VPC release: vpc-asv-orig);
#   asv_anon: on the anonymized <asv_train_set><suffix> (semi-informed attacker).
# Outputs $VOXANON_EXP/asv_orig, $VOXANON_EXP/asv_anon; logs in $VOXANON_EXP/log. Resumable.
# Several GPUs visible and asv.device auto|cuda: DDP through torchrun.
#   local/train_attacker.sh [--overwrite false] <conf.yaml>
set -euo pipefail
overwrite=false
help_message="Usage: $0 [--overwrite false] <conf.yaml>"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] || { echo "$help_message" >&2; exit 1; }
conf=$1
data=${VOXANON_DATA:-data}
exp=${VOXANON_EXP:-exp/$(python -m voxanon.bin.conf get "$conf" exp)}
conf_get() { python -m voxanon.bin.conf get "$conf" "$1"; }
train_set=$(conf_get data.asv_train_set)
suffix=$(conf_get anonymizer.out_suffix)
device=$(conf_get asv.device)
orig_model=$(conf_get asv.orig_model)
metrics=$(conf_get eval.metrics)
if ! grep -qx asv <<< "$metrics"; then
  echo "$0: eval.metrics has no 'asv': no attackers to train"; exit 0
fi
if [ -z "$train_set" ]; then
  echo "$0: data.asv_train_set is empty: no attackers trained (stage 7 skips the scenarios that need them)"; exit 0
fi

. "$VOXANON_ROOT/utils/select_launcher.sh"
select_launcher "$device" voxanon.bin.train_asv

train() {  # <data dir> <model dir> <name>
  [ -f "$1/wav.scp" ] || { echo "$0: $1: data dir missing (run stages 1 and 5)" >&2; exit 1; }
  [ "$overwrite" = true ] && rm -rf "$2"
  echo "$0: training $3 on $1 -> $2 (log: $exp/log/train_$3.log)"
  $cmd $gpu_opt "$exp/log/train_$3.log" $launcher --conf "$conf" "$1" "$2" \
    || { echo "$0: training $3 failed; see $exp/log/train_$3.log" >&2; exit 1; }
  grep "^train_asv:" "$exp/log/train_$3.log" | tail -n 1 || true
}

if [ -n "$orig_model" ]; then
  python -c 'import sys; from voxanon.registry import resolve_model; print(resolve_model(sys.argv[1]))' "$orig_model" \
    >/dev/null || { echo "$0: asv.orig_model '$orig_model' not found" >&2; exit 1; }
  echo "$0: ASV_orig: using the pretrained model '$orig_model' (asv.orig_model)"
else
  train "$data/$train_set" "$exp/asv_orig" asv_orig
fi
train "$data/$train_set$suffix" "$exp/asv_anon" asv_anon

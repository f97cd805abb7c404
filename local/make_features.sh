#!/usr/bin/env bash
# run.sh stage 2: WavLM layer features (<features.dir>/<set>/feats.scp, default exp/feats) of the sets the conf's system
# needs: features.sets if given, else the data.target_pool for knnvc / wavlm_conv; a no-op otherwise.
set -euo pipefail
overwrite=false
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] || { echo "Usage: $0 [--overwrite false] <conf.yaml>" >&2; exit 1; }
conf=$1
data=${VOXANON_DATA:-data}
nj=${VOXANON_NJ:-2}
conf_get() { python -m voxanon.bin.conf get "$conf" "$1"; }
system=$(conf_get anonymizer.system)
sets=$(conf_get features.sets)
if [ -z "$sets" ]; then
  case "$system" in
    knnvc|wavlm_conv) sets=$(conf_get data.target_pool) ;;
    *) echo "$0: system $system uses no WavLM features; nothing to do"; exit 0 ;;
  esac
  [ -n "$sets" ] || { echo "$0: system $system needs data.target_pool (the target speakers) in $conf" >&2; exit 1; }
fi
device=$(conf_get features.device)
cmd=${train_cmd:-run.pl}
case "$device" in cuda*|auto) cmd=${cuda_cmd:-$cmd} ;; esac
for set in $sets; do
  "$VOXANON_ROOT/steps/make_wavlm.sh" --nj "$nj" --cmd "$cmd" --overwrite "$overwrite" \
    --checkpoint "$(conf_get features.checkpoint)" --layer "$(conf_get features.layer)" --device "$device" \
    --chunk-seconds "$(conf_get features.chunk_seconds)" --context-seconds "$(conf_get features.context_seconds)" \
    --batch-seconds "$(conf_get features.batch_seconds)" "$data/$set" "$(conf_get features.dir)/$set"
done

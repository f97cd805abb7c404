#!/usr/bin/env bash
# run.sh stage 2: WavLM layer features (<features.dir>/<set>/feats.scp, default exp/feats) of the sets
# the conf's systems need: features.sets if given, else data.target_pool when a system (or an
# admixture part) is knnvc or wavlm_conv; a no-op otherwise. conf check has made sure the pool is named.
# Stored as features.dtype; the pool's audio is trimmed of silence (features.pool_vad_trigger_level).
set -euo pipefail
overwrite=false
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] || { echo "Usage: $0 [--overwrite false] <conf.yaml>" >&2; exit 1; }
conf=$1
data=${VOXANON_DATA:-data}
nj=${VOXANON_NJ:-2}
eval "$(python -m voxanon.bin.conf vars "$conf" systems=anonymizer.systems sets=features.sets pool=data.target_pool \
  device=features.device checkpoint=features.checkpoint layer=features.layer chunk=features.chunk_seconds \
  context=features.context_seconds batch=features.batch_seconds dir=features.dir dtype=features.dtype \
  vad=features.pool_vad_trigger_level)"
if [ -z "$sets" ]; then
  case " $systems " in
    *" knnvc "*|*" wavlm_conv "*) sets=$pool ;;
    *) echo "$0: $systems: no kNN-VC / WavLM conversion, no WavLM features needed; nothing to do"; exit 0 ;;
  esac
fi
cmd=${train_cmd:-run.pl}
case "$device" in cuda*|auto) cmd=${cuda_cmd:-$cmd} ;; esac
for set in $sets; do
  # the target pool's audio is trimmed of silence first (kNN-VC matching sets); other sets are not
  set_vad=0; [ "$set" != "$pool" ] || set_vad=$vad
  "$VOXANON_ROOT/steps/make_wavlm.sh" --nj "$nj" --cmd "$cmd" --overwrite "$overwrite" \
    --checkpoint "$checkpoint" --layer "$layer" --device "$device" --dtype "$dtype" --vad-trigger-level "$set_vad" \
    --chunk-seconds "$chunk" --context-seconds "$context" --batch-seconds "$batch" "$data/$set" "$dir/$set"
done

#!/usr/bin/env bash
# Stage 2: WavLM layer features (<features.dir>/<set>/feats.scp) of the sets the experiment's
# systems need: features.sets if given, else data.target_pool. The pool's audio is trimmed of
# silence first (features.pool_vad_trigger_level), as the kNN-VC reference does for matching sets.
set -euo pipefail
nj=2
cmd=run.pl
overwrite=false
help_message="Usage: $0 [--nj 2] [--cmd run.pl] [--overwrite false] <config.yaml> <datadir>"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 2 ] || { echo "$help_message" >&2; exit 1; }
config=$1
datadir=$2
mapfile -t v < <(python -m voxanon.bin.conf get "$config" features.sets data.target_pool features.device \
  features.checkpoint features.layer features.chunk_seconds features.context_seconds features.batch_seconds \
  features.dir features.dtype features.pool_vad_trigger_level)
[ ${#v[@]} -eq 11 ] || exit 1
sets=${v[0]:-${v[1]}}
pool=${v[1]}
for set in $sets; do
  vad=0; [ "$set" != "$pool" ] || vad=${v[10]}  # only the target pool is trimmed
  "$VOXANON_ROOT/steps/make_wavlm.sh" --nj "$nj" --cmd "$cmd" --overwrite "$overwrite" --device "${v[2]}" \
    --checkpoint "${v[3]}" --layer "${v[4]}" --chunk-seconds "${v[5]}" --context-seconds "${v[6]}" \
    --batch-seconds "${v[7]}" --dtype "${v[9]}" --vad-trigger-level "$vad" "$datadir/$set" "${v[8]}/$set"
done

#!/usr/bin/env bash
# run.sh stage 7: privacy (EER, minDCF, Cllr, linkability per attacker scenario and trials file),
# utility (WER, emotion UAR); conf section 'eval'. Writes $VOXANON_EXP/results/{asv,wer,ser}.json,
# score files and caches; a metric without its inputs (text, utt2emo, a model) is skipped with the
# reason. Re-running reuses cached embeddings and transcripts.
#   local/evaluate.sh [--overwrite false] [--metrics asv,wer,ser] <conf.yaml>
set -euo pipefail
overwrite=false
metrics=""
help_message="Usage: $0 [--overwrite false] [--metrics asv,wer,ser] <conf.yaml>"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] || { echo "$help_message" >&2; exit 1; }
conf=$1
data=${VOXANON_DATA:-data}
exp=${VOXANON_EXP:-exp/$(python -m voxanon.bin.conf get "$conf" exp)}
device=$(python -m voxanon.bin.conf get "$conf" eval.device)
cmd=${decode_cmd:-run.pl}
gpu_opt=""
case "$device" in cuda*) cmd=${cuda_cmd:-$cmd}; gpu_opt="--gpu 1" ;; esac
[ "$overwrite" = true ] && rm -rf "$exp/results"
mkdir -p "$exp/log"
echo "$0: evaluating $conf (data $data, results $exp/results, log $exp/log/evaluate.log)"
$cmd $gpu_opt "$exp/log/evaluate.log" \
  python -m voxanon.bin.evaluate --data-root "$data" --exp "$exp" ${metrics:+--metrics "$metrics"} "$conf" \
  || { echo "$0: evaluation failed; see $exp/log/evaluate.log" >&2; tail -n 5 "$exp/log/evaluate.log" >&2; exit 1; }
grep -E " voxanon\.evaluate: " "$exp/log/evaluate.log" | sed 's/^.* voxanon\.evaluate: /  /' | tail -n 60 || true

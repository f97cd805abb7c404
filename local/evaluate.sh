#!/usr/bin/env bash
# Stage 7: privacy (EER, minDCF, Cllr, linkability per attacker scenario and trials list) and
# utility (WER, emotion UAR), conf section 'eval'. Writes <expdir>/results/{asv,wer,ser}.json,
# score files and caches; a metric without its inputs (text, utt2emo, a model) is skipped with the
# reason. Re-running reuses cached embeddings and transcripts.
set -euo pipefail
overwrite=false
metrics=           # comma-separated subset of eval.metrics
help_message="Usage: $0 [--overwrite false] [--metrics asv,wer,ser] <config.yaml> <datadir> <expdir>"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 3 ] || { echo "$help_message" >&2; exit 1; }
config=$1
datadir=$2
expdir=$3
cmd=${decode_cmd:-run.pl}
gpu_opt=""
case "$(python -m voxanon.bin.conf get "$config" eval.device)" in cuda*) cmd=${cuda_cmd:-run.pl}; gpu_opt="--gpu 1" ;; esac
[ "$overwrite" = true ] && rm -rf "$expdir/results"
mkdir -p "$expdir/log"
echo "$0: evaluating $config (data $datadir, results $expdir/results, log $expdir/log/evaluate.log)"
$cmd $gpu_opt "$expdir/log/evaluate.log" \
  python -m voxanon.bin.evaluate --data-root "$datadir" --exp "$expdir" ${metrics:+--metrics "$metrics"} "$config" \
  || { echo "$0: evaluation failed; see $expdir/log/evaluate.log" >&2; tail -n 5 "$expdir/log/evaluate.log" >&2; exit 1; }
grep -E " voxanon\.evaluate: " "$expdir/log/evaluate.log" | sed 's/^.* voxanon\.evaluate: /  /' | tail -n 60 || true

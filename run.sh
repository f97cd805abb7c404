#!/usr/bin/env bash
# voxanon stage driver. With no arguments: the embedded default (conf/mini.yaml), offline, CPU.
#
#   ./run.sh [--conf conf/X.yaml] [--stage N] [--stop-stage M] [--nj N] [--force true] [--data DIR]
#
# Stages (each skips itself when finished with the same conf; --force true re-runs them):
#   0 models      check / fetch the weights the conf needs (conf/models.yaml)
#   1 data        Kaldi data dirs for every set the conf names; validated
#   2 features    WavLM layer-6 features (kNN-VC / WavLM-conversion systems)
#   3 targets     kNN-VC matching sets, pseudo-speakers, k-means units
#   4 train       the WavLM conversion model (wavlm_conv systems)
#   5 anonymize   every set the conf names, utterance by utterance
#   6 attacker    ECAPA-TDNN ASV trained on the anonymized training set (semi-informed)
#   7 evaluate    EER (ignorant / lazy-informed / semi-informed), WER, UAR
#   8 report      results.json, VPC-style summary, plots, HTML page with audio
set -euo pipefail
cd "$(dirname "$0")"

conf=conf/mini.yaml
stage=0
stop_stage=8
nj=2
force=false
data=""
help_message="Usage: $0 [--conf conf/X.yaml] [--stage N] [--stop-stage M] [--nj N] [--force true|false] [--data DIR]
  --data DIR   use your own Kaldi data dir or folder of wavs instead of the generated mini corpus
               (the data recipe of the conf decides how it is split into training/enroll/trials parts)"

. utils/parse_options.sh
[ $# -eq 0 ] || { echo "$0: unexpected argument(s): $*" >&2; echo "$help_message" >&2; exit 1; }

utils/setup_env.sh
. ./path.sh
. ./cmd.sh

python -m voxanon.bin.conf check "$conf" || exit 1
conf_get() { python -m voxanon.bin.conf get "$conf" "$1"; }

exp=$(conf_get exp)
export VOXANON_DATA=data
if [ -n "$data" ]; then
  [ -e "$data" ] || { echo "$0: --data $data: no such file or directory" >&2; exit 1; }
  base=$(basename "$(cd "$data" && pwd)")
  exp=${exp}_${base}
  export VOXANON_USER_DATA=$(cd "$data" && pwd)
  export VOXANON_DATA=data/$base
fi
export VOXANON_EXP=exp/$exp
export VOXANON_CONF=$conf
export VOXANON_NJ=$nj
mkdir -p "$VOXANON_EXP/log" "$VOXANON_EXP/.done"

stage_names=(models data features targets train anonymize attacker evaluate report)
stage_scripts=(
  local/stage0_models.sh
  local/prepare_data.sh
  local/make_features.sh
  local/make_targets.sh
  local/train_converter.sh
  steps/anonymize_sets.sh
  local/train_attacker.sh
  local/evaluate.sh
  local/make_report.sh
)

for n in $(seq "$stage" "$stop_stage"); do
  name=${stage_names[$n]}
  script=${stage_scripts[$n]}
  key=$(python -m voxanon.bin.conf stage-key "$conf" "$n")${data:+-$(echo "$VOXANON_USER_DATA" | sha256sum | cut -c1-8)}
  marker=$VOXANON_EXP/.done/stage$n
  overwrite=$force
  if [ -f "$marker" ]; then
    if [ "$force" != true ] && [ "$(cat "$marker")" = "$key" ]; then
      echo "stage $n ($name): done already, skipped (--force true to re-run)"
      continue
    fi
    # Finished before with another conf: its outputs are stale, replace them.
    [ "$(cat "$marker")" = "$key" ] || overwrite=true
  fi
  log=$VOXANON_EXP/log/stage$n.$name.log
  echo "stage $n ($name): $(date '+%F %T') log: $log"
  rm -f "$marker"
  if ! "$script" --overwrite "$overwrite" "$conf" 2>&1 | tee "$log"; then
    echo "stage $n ($name) FAILED; last lines of $log:" >&2
    tail -n 20 "$log" | sed 's/^/  | /' >&2
    exit 1
  fi
  echo "$key" > "$marker"
done

echo "done: experiment $exp (stages $stage..$stop_stage); outputs in $VOXANON_EXP"

#!/usr/bin/env bash
# voxanon stage driver. With no arguments: the embedded default (conf/mini.yaml), offline, CPU.
# ./run.sh --help lists the options and stages.
set -euo pipefail
cd "$(dirname "$0")"

conf=conf/mini.yaml
stage=0
stop_stage=8
nj=2
force=false
data=""
public_seed=false
allow_pipes=false
stage_names=(models data features targets train anonymize attacker evaluate report)
help_message="Usage: $0 [options]   (defaults in brackets)
  --conf FILE          the experiment conf [$conf]; python -m voxanon.bin.conf show FILE prints it resolved
  --stage N            first stage to run, 0-8 [$stage]
  --stop-stage M       last stage to run, N-8 [$stop_stage]
  --nj N               parallel jobs per step [$nj]
  --force true         re-run the stages even if finished with this conf [$force]
  --data DIR           your own Kaldi data dir or folder of wavs instead of the conf's corpus
                       (the conf's data recipe decides how it is split into training/enroll/trials)
  --public-seed true   allow a conf without anonymizer.seed to use the public default [$public_seed]
  --allow-pipes true   accept wav.scp entries that are commands ('... |') [$allow_pipes]
Stages (a finished stage is skipped while the conf sections it reads are unchanged and its outputs
exist; running a stage clears the done markers of the stages after it):
  0 models      check / fetch the weights the conf needs (conf/models.yaml)
  1 data        Kaldi data dirs for every set the conf names; validated
  2 features    WavLM layer-6 features (systems with kNN-VC / WavLM conversion, admixture parts too)
  3 targets     kNN-VC matching sets of data.target_pool (same systems)
  4 train       the WavLM conversion model (systems with wavlm_conv)
  5 anonymize   every set the conf names, utterance by utterance
  6 attacker    ECAPA-TDNN ASV trained on the anonymized training set (semi-informed)
  7 evaluate    EER (ignorant / lazy-informed / semi-informed), WER, UAR
  8 report      results.json, VPC-style summary, plots, HTML page with audio"

usage_error() { echo "$0: $*" >&2; echo "$help_message" >&2; exit 1; }
. utils/parse_options.sh
[ $# -eq 0 ] || usage_error "unexpected argument(s): $*"
is_stage() { [[ $1 =~ ^[0-8]$ ]]; }
is_stage "$stage" || usage_error "--stage '$stage' is not a stage number 0-8"
is_stage "$stop_stage" || usage_error "--stop-stage '$stop_stage' is not a stage number 0-8"
[ "$stage" -le "$stop_stage" ] || usage_error "--stage $stage is after --stop-stage $stop_stage"
[[ $nj =~ ^[1-9][0-9]*$ ]] || usage_error "--nj '$nj' is not a positive integer"
[ -f "$conf" ] || usage_error "--conf $conf: no such file"

utils/setup_env.sh
. ./path.sh
. ./cmd.sh

export VOXANON_DATA=data
if [ -n "$data" ]; then
  [ -e "$data" ] || usage_error "--data $data: no such file or directory"
  VOXANON_USER_DATA=$(cd "$data" && pwd)
  # Named by the folder and its full path: two folders called alike do not share data or results.
  tag=$(basename "$VOXANON_USER_DATA")-$(printf %s "$VOXANON_USER_DATA" | sha256sum | cut -c1-6)
  export VOXANON_USER_DATA VOXANON_DATA=data/$tag
fi

# One conf read for the whole run: check everything, then exp, seed, stage keys, stage outputs.
vars=$(python -m voxanon.bin.conf driver "$conf" "$VOXANON_DATA" "${tag:+_$tag}") || exit 1
eval "$vars"
# The seed decides the draws of stages 2-5 (targets, systems); stages 6-8 alone (e.g. evaluating
# audio another tool anonymized) need none.
if [ "$seed_given" != true ] && [ "$stage" -le 5 ] && [ "$stop_stage" -ge 2 ]; then
  if [ "$public_seed" != true ]; then
    echo "$0: $conf has no anonymizer.seed: the public default would let anyone who has the output" \
         "recompute every random choice (targets, systems). Set anonymizer.seed to a private number," \
         "or pass --public-seed true for a test or demo run." >&2
    exit 1
  fi
  echo "$0: WARNING: $conf has no anonymizer.seed; using the PUBLIC default seed (--public-seed true)" >&2
fi
export VOXANON_EXP=exp/$exp VOXANON_CONF=$conf VOXANON_NJ=$nj
done_dir=$VOXANON_EXP/.done
mkdir -p "$VOXANON_EXP/log" "$done_dir"

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

# Why a stage marked done must run again ("" = it need not): an output gone, or a data dir that
# another experiment rebuilt with other data settings.
stale_reason() {
  local n=$1 path set stamp
  local -n outputs=outputs_$n
  for path in "${outputs[@]}"; do
    [ -e "$path" ] || { echo "$path is missing"; return; }
  done
  if [ "$n" = 1 ]; then
    for set in "${data_sets[@]}"; do
      stamp=""
      [ -f "$VOXANON_DATA/$set/.data_key" ] && read -r stamp < "$VOXANON_DATA/$set/.data_key"
      [ "$stamp" = "$data_key" ] || { echo "$VOXANON_DATA/$set was built with other data settings"; return; }
    done
  fi
}

for n in $(seq "$stage" "$stop_stage"); do
  name=${stage_names[$n]}
  key_var=key_$n
  key=${!key_var}
  marker=$done_dir/stage$n
  overwrite=$force
  pending=$done_dir/stage$n.overwrite  # an overwrite of this stage that was interrupted
  if [ ! -f "$marker" ] && [ -f "$pending" ] && [ "$(< "$pending")" = "$key" ]; then
    overwrite=true  # finish replacing the old conf's outputs: the sets not yet redone must not be refused
  elif [ -f "$marker" ]; then
    read -r previous < "$marker" || previous=""
    if [ "$previous" != "$key" ]; then
      overwrite=true  # finished before with another conf: its outputs are stale, replace them
    elif [ "$force" != true ]; then
      reason=$(stale_reason "$n")
      if [ -z "$reason" ]; then
        echo "stage $n ($name): done already, skipped (--force true to re-run)"
        continue
      fi
      echo "stage $n ($name): marked done but $reason: re-running it"
      overwrite=true
    fi
  fi
  log=$VOXANON_EXP/log/stage$n.$name.log
  echo "stage $n ($name): $(date '+%F %T') log: $log"
  for m in $(seq "$n" 8); do rm -f "$done_dir/stage$m"; done  # later stages read what this one writes
  [ "$overwrite" != true ] || echo "$key" > "$pending"
  opts=(--overwrite "$overwrite")
  [ "$n" != 5 ] || opts+=(--allow-pipes "$allow_pipes" --public-seed "$public_seed")
  if ! "${stage_scripts[$n]}" "${opts[@]}" "$conf" 2>&1 | tee "$log"; then
    echo "stage $n ($name) FAILED; last lines of $log:" >&2
    tail -n 20 "$log" | sed 's/^/  | /' >&2
    exit 1
  fi
  if [ "$n" = 1 ]; then
    for set in "${data_sets[@]}"; do
      [ ! -d "$VOXANON_DATA/$set" ] || echo "$data_key" > "$VOXANON_DATA/$set/.data_key"
    done
  fi
  echo "$key" > "$marker"
  rm -f "$pending"
done

echo "done: experiment $exp (stages $stage..$stop_stage); outputs in $VOXANON_EXP"

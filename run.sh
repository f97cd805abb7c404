#!/usr/bin/env bash
# voxanon: anonymize the speakers of a corpus and measure privacy and utility (VPC 2024 protocol).
# With no arguments: the embedded default (conf/mini.yaml), offline, CPU. ./run.sh --help for more.
set -euo pipefail
cd "$(dirname "$0")"
log() { echo "$(date '+%F %T') ($(basename "$0")) $*"; }

# General options
stage=           # first stage to run; empty: resume at the first stage not complete for this config
stop_stage=8     # last stage to run
nj=2             # parallel jobs per step
force=false      # true: stages replace their outputs instead of resuming them
# Experiment
conf=conf/mini.yaml  # the experiment conf (its bases composed); exp/<exp>/config.yaml is what stages read
setup=               # mini | vpc2024: run the conf's system on that setup (data, attacker, evaluation)
data=                # your own Kaldi data dir or folder of wavs instead of the conf's corpus (setup mini)
public_seed=false    # true: accept a conf without anonymizer.seed (the public default) for stages 2-5
allow_pipes=false    # true: accept wav.scp entries that are commands ('... |')

help_message="Usage: $0 [options]   (defaults in brackets)
  --stage N            first stage to run, 0-8 [resume: the first stage not complete for this config]
  --stop-stage M       last stage to run, N-8 [$stop_stage]
  --nj N               parallel jobs per step [$nj]
  --force true         stages replace their outputs instead of resuming [$force]
  --conf FILE          the experiment conf [$conf]; python -m voxanon.bin.conf show FILE prints it resolved
  --setup NAME         run the conf's system on setup conf/base/NAME.yaml (mini: offline, small;
                       vpc2024: the challenge's data and models) instead of the conf's own
  --data DIR           your own Kaldi data dir or folder of wavs instead of the conf's corpus (with
                       a conf on the mini setup, or --setup mini)
  --public-seed true   allow a conf without anonymizer.seed to use the public default [$public_seed]
  --allow-pipes true   accept wav.scp entries that are commands ('... |') [$allow_pipes]
A stage you name with --stage runs (resuming its own finished work: cheap, never mixing configs);
without --stage, run.sh resumes at the first stage whose outputs are not complete for this config.
Running a stage makes the later ones run again. Corpus locations: db.sh. Logs: exp/<exp>/log/.
Stages:
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
[ -z "$stage" ] || is_stage "$stage" || usage_error "--stage '$stage' is not a stage number 0-8"
is_stage "$stop_stage" || usage_error "--stop-stage '$stop_stage' is not a stage number 0-8"
[ "${stage:-0}" -le "$stop_stage" ] || usage_error "--stage $stage is after --stop-stage $stop_stage"
[[ $nj =~ ^[1-9][0-9]*$ ]] || usage_error "--nj '$nj' is not a positive integer"
[ -f "$conf" ] || usage_error "--conf $conf: no such file"
[ -z "$setup" ] || [ -f "conf/base/$setup.yaml" ] || usage_error "--setup $setup: no conf/base/$setup.yaml" \
  "($(cd conf/base && ls *.yaml | sed 's/\.yaml$//' | tr '\n' ' '))"

utils/setup_env.sh
. ./path.sh
. ./cmd.sh
. ./db.sh

# --data DIR gets its own data dirs and experiment, named by the folder and its full path.
datadir=data
exp_suffix=
if [ -n "$data" ]; then
  [ -e "$data" ] || usage_error "--data $data: no such file or directory"
  data=$(cd "$data" && pwd)
  tag=$(basename "$data")-$(printf %s "$data" | sha256sum | cut -c1-6)
  datadir=data/$tag
  exp_suffix=_$tag
fi

# The conf, read once: resolved into exp/<exp>/config.yaml, which every stage reads.
plan=$(python -m voxanon.bin.conf setup "$conf" --data-root "$datadir" --exp-suffix "$exp_suffix" \
         ${setup:+--setup "conf/base/$setup.yaml"} --user-data "$data" --from-stage "${stage:-0}") || exit 1
declare -A exp_vars
while IFS='=' read -r key value; do exp_vars[$key]=$value; done <<< "$plan"
expdir=${exp_vars[exp_dir]}
config=${exp_vars[config]}
if [ -z "$stage" ]; then
  stage=${exp_vars[resume]}
  [ "$stage" -le "$stop_stage" ] || { log "every stage up to $stop_stage is complete for $config"; exit 0; }
  [ "$stage" = 0 ] || log "resuming at stage $stage (stages before it are complete for this config)"
fi
# The seed decides the draws of stages 2-5 (targets, systems); stages 6-8 alone need none.
if [ "${exp_vars[seed_given]}" != true ] && [ "$stage" -le 5 ] && [ "$stop_stage" -ge 2 ]; then
  [ "$public_seed" = true ] || { echo "$0: $conf has no anonymizer.seed: the public default would let anyone" \
    "who has the output recompute every random choice (targets, systems). Set anonymizer.seed to a private" \
    "number, or pass --public-seed true for a test or demo run." >&2; exit 1; }
  echo "$0: WARNING: $conf has no anonymizer.seed; using the PUBLIC default seed (--public-seed true)" >&2
fi
mkdir -p "$expdir/log"
# One run.sh per experiment at a time. Every job inherits the lock (run.pl passes its fds on), so
# jobs left running by a killed run.sh hold it until they end: a new run waits for none of them.
exec 8>>"$expdir/.lock"
flock -n 8 || { echo "$0: $expdir is being run by another run.sh or its jobs ($(cat "$expdir/.lock"));" \
  "wait for it or stop it" >&2; exit 1; }
echo "pid $$ on $(hostname) since $(date '+%F %T'): $0 $*" > "$expdir/.lock"

# begin_stage N NAME: clears the done-markers from N on, sets $overwrite and $stage_log.
begin_stage() {
  stage_log=$expdir/log/stage$1.$2.log
  overwrite=$(python -m voxanon.bin.conf begin "$config" "$1" --data-root "$datadir" --force "$force") || exit 1
  log "Stage $1 ($2)$([ "$overwrite" = true ] && echo ", replacing earlier outputs"); log: $stage_log"
  : > "$stage_log"
}
# in_stage N NAME CMD...: runs one step of the stage, its output on the console and in the log.
in_stage() {
  local n=$1 name=$2; shift 2
  if ! "$@" 2>&1 | tee -a "$stage_log"; then
    echo "stage $n ($name) FAILED; last lines of $stage_log:" >&2
    tail -n 20 "$stage_log" | sed 's/^/  | /' >&2
    exit 1
  fi
}
end_stage() { python -m voxanon.bin.conf end "$config" "$1" --data-root "$datadir" || exit 1; }
queue() { case $1 in cuda*|auto) echo "$cuda_cmd" ;; *) echo "$train_cmd" ;; esac; }  # by device

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  begin_stage 0 models
  in_stage 0 models local/download_models.sh "$config"
  end_stage 0
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  begin_stage 1 data
  in_stage 1 data local/prepare_data.sh --nj "$nj" --overwrite "$overwrite" --user-data "$data" \
    --vpc2024-data "$VPC2024_DATA" --vpc2024-audio "$VPC2024_AUDIO" --librispeech "$LIBRISPEECH" \
    --iemocap "$IEMOCAP" --voxceleb1 "$VOXCELEB1" --voxceleb1-meta "$VOXCELEB1_META" "$config" "$datadir"
  end_stage 1
fi

systems=${exp_vars[systems]}

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  begin_stage 2 features
  if [ "${exp_vars[uses_targets]}" = true ]; then
    in_stage 2 features local/make_features.sh --nj "$nj" --cmd "$(queue "${exp_vars[features_device]}")" \
      --overwrite "$overwrite" "$config" "$datadir"
  else
    log "no kNN-VC / WavLM conversion system ($systems): no WavLM features needed"
  fi
  end_stage 2
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  begin_stage 3 targets
  if [ "${exp_vars[uses_targets]}" = true ]; then
    in_stage 3 targets local/make_targets.sh --overwrite "$overwrite" "$config" "$datadir/${exp_vars[target_pool]}"
  else
    log "no kNN-VC / WavLM conversion system ($systems): no matching sets needed"
  fi
  end_stage 3
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  begin_stage 4 train
  if [[ " $systems " == *" wavlm_conv "* ]]; then
    in_stage 4 train local/train_converter.sh --nj "$nj" --overwrite "$overwrite" "$config" "$datadir" "$expdir"
  else
    log "no WavLM conversion system ($systems): no converter to train"
  fi
  end_stage 4
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  begin_stage 5 anonymize
  suffix=${exp_vars[suffix]}
  for set in ${exp_vars[anonymized_sets]}; do
    in_stage 5 anonymize steps/anonymize.sh --nj "$nj" --cmd "$(queue "${exp_vars[anonymizer_device]}")" --overwrite "$overwrite" \
      --allow-pipes "$allow_pipes" --public-seed "$public_seed" --record-dir "$expdir/anon_records/$set$suffix" \
      "$config" "$datadir/$set" "$datadir/$set$suffix"
  done
  end_stage 5
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  begin_stage 6 attacker
  in_stage 6 attacker local/train_attacker.sh --nj "$nj" --overwrite "$overwrite" "$config" "$datadir" "$expdir"
  end_stage 6
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  begin_stage 7 evaluate
  in_stage 7 evaluate local/evaluate.sh --overwrite "$overwrite" "$config" "$datadir" "$expdir"
  end_stage 7
fi

if [ "$stage" -le 8 ] && [ "$stop_stage" -ge 8 ]; then
  begin_stage 8 report
  in_stage 8 report local/make_report.sh --overwrite "$overwrite" "$config" "$datadir" "$expdir"
  end_stage 8
fi
log "done: stages $stage-$stop_stage of $config"

#!/usr/bin/env bash
# Stage 4: the WavLM conversion model of a wavlm_conv system (or admixture part). Reads the
# train section; writes <expdir>/converter:
#   1. pairs/     kNN-VC targets k(w(u), a) for every utterance of train.pairs.train_set (default
#                 data.asv_train_set; its stage-2 features: list it in features.sets) against the
#                 stage-3 matching set of train.pairs.target; JOB=1:nj, resumable
#   2. pairs/     joined, with the target's frames (reconstruction items) and, for the discrete
#                 objective, its k-means units
#   3. converter  checkpoints/, final.pt (used by anonymizer.params.checkpoint), train_log.csv;
#                 resumes from the latest checkpoint after a kill; several GPUs: DDP via torchrun
set -euo pipefail
nj=2
overwrite=false
help_message="Usage: $0 [--nj 2] [--overwrite false] <config.yaml> <datadir> <expdir>"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 3 ] || { echo "$help_message" >&2; exit 1; }
conf=$1
data=$2
exp=$3
mapfile -t v < <(python -m voxanon.bin.conf get "$conf" train.pairs.train_set data.asv_train_set features.dir train.device)
[ ${#v[@]} -eq 4 ] || exit 1
train_set=${v[0]}; asv_train_set=${v[1]}; feat_dir=${v[2]}; device=${v[3]}

train_set=${train_set:-$asv_train_set}
[ -n "$train_set" ] || { echo "$0: name the training set in train.pairs.train_set or data.asv_train_set" >&2; exit 1; }
feats=$feat_dir/$train_set/feats.scp
[ -f "$feats" ] || { echo "$0: $feats missing: list $train_set in features.sets and run stage 2" >&2; exit 1; }
[ -f "$data/$train_set/utt2spk" ] || { echo "$0: $data/$train_set: data dir missing (run stage 1)" >&2; exit 1; }

dir=$exp/converter
[ "$overwrite" = true ] && rm -rf "$dir"
mkdir -p "$dir/log"

. "$VOXANON_ROOT/utils/select_launcher.sh"
select_launcher "$device" voxanon.bin.train_converter

if [ ! -f "$dir/pairs/targets.scp" ]; then
  echo "$0: training pairs for $train_set ($nj jobs; logs $dir/log/pairs.*.log)"
  $cmd ${gpu_opt:+--gpu 1} JOB=1:"$nj" "$dir/log/pairs.JOB.log" \
    python -m voxanon.bin.train_converter pairs --conf "$conf" --feats "$feats" --pairs-dir "$dir/pairs" \
      --job JOB --nj "$nj" --device "$device" || { tail -n 5 "$dir"/log/pairs.*.log >&2; exit 1; }
  python -m voxanon.bin.train_converter finalize --conf "$conf" --feats "$feats" --data "$data/$train_set" \
    --pairs-dir "$dir/pairs" --nj "$nj" 2>&1 | tee "$dir/log/pairs_finalize.log"
fi

echo "$0: training the converter in $dir (log: $dir/log/train.log)"
$cmd $gpu_opt "$dir/log/train.log" \
  $launcher train --conf "$conf" --pairs-dir "$dir/pairs" --out-dir "$dir" --device "$device" \
  || { tail -n 20 "$dir/log/train.log" >&2; exit 1; }
tail -n 3 "$dir/log/train.log"

#!/usr/bin/env bash
# run.sh stage 4: the WavLM conversion model when the system (or an admixture part) is wavlm_conv
# (a one-line no-op otherwise). Reads the conf's train section; writes $VOXANON_EXP/converter:
#   1. pairs/     kNN-VC targets k(w(u), a) for every utterance of train.pairs.train_set (default
#                 data.asv_train_set; its stage-2 features: list it in features.sets) against the
#                 stage-3 matching set of train.pairs.target; JOB=1:nj, resumable
#   2. pairs/     joined, with the target's frames (reconstruction items) and, for the discrete
#                 objective, its k-means units
#   3. converter  checkpoints/, final.pt (used by anonymizer.params.checkpoint), train_log.csv;
#                 resumes from the latest checkpoint after a kill; several GPUs: DDP via torchrun
#   local/train_converter.sh [--overwrite false] <conf.yaml>
set -euo pipefail
overwrite=false
help_message="Usage: $0 [--overwrite false] <conf.yaml>"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] || { echo "$help_message" >&2; exit 1; }
conf=$1
data=${VOXANON_DATA:-data}
nj=${VOXANON_NJ:-2}
eval "$(python -m voxanon.bin.conf vars "$conf" exp_name=exp systems=anonymizer.systems train_set=train.pairs.train_set \
  asv_train_set=data.asv_train_set feat_dir=features.dir device=train.device)"
exp=${VOXANON_EXP:-exp/$exp_name}
case " $systems " in
  *" wavlm_conv "*) ;;
  *) echo "$0: $systems: no WavLM conversion model to train; nothing to do"; exit 0 ;;
esac

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

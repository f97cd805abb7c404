#!/usr/bin/env bash
# Stage 6: ECAPA-TDNN ASV attackers (VPC 2024 recipe, conf section 'asv').
#   asv_orig: on the original data.asv_train_set (ignorant and lazy-informed attackers), unless
#             asv.orig_model names a pretrained one (e.g. the VPC release: vpc-asv-orig);
#   asv_anon: on the anonymized <asv_train_set><suffix> (semi-informed attacker);
#   asv_anon_ft: with the opt-in scenario semi-informed-finetuned, ASV_orig fine-tuned on the
#             anonymized set for asv.finetuned_epochs (0: asv.epochs): a stronger semi-informed attacker.
# An admixture with the 'mixture-aware' scenario also gets the mixture-aware attacker and
# training-set filtering (voxanon.eval.mixture_attack): <asv_train_set> anonymized by each part
# alone into <asv_train_set><suffix>_part<i>, an ASV per part (mixture/asv_part<i>), the component
# classifier (mixture/classifier.json) and an ASV per cluster of the mixed training set.
# Writes <expdir>/asv_orig, asv_anon, asv_anon_ft, mixture; logs in <expdir>/log. Resumable.
# Each model's asv.json has its validation EER per epoch; an attacker that had not converged is warned about.
# Several GPUs visible and asv.device auto|cuda: DDP through torchrun.
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
mapfile -t v < <(python -m voxanon.bin.conf get "$conf" data.asv_train_set anonymizer.suffix asv.device \
  asv.orig_model eval.metrics anonymizer.system eval.scenarios anonymizer.device asv.epochs asv.finetuned_epochs \
  asv.part_models)
[ ${#v[@]} -eq 11 ] || exit 1
train_set=${v[0]}; suffix=${v[1]}; device=${v[2]}; orig_model=${v[3]}; metrics=" ${v[4]} "
system=${v[5]}; scenarios=" ${v[6]} "; anon_device=${v[7]}; epochs=${v[8]}; ft_epochs=${v[9]}
part_models=${v[10]}
if [[ $metrics != *" asv "* ]]; then
  echo "$0: eval.metrics has no 'asv': no attackers to train"; exit 0
fi
if [ -z "$train_set" ]; then
  echo "$0: data.asv_train_set is empty: no attackers trained (stage 7 skips the scenarios that need them)"; exit 0
fi

. "$VOXANON_ROOT/utils/select_launcher.sh"
select_launcher "$device" voxanon.bin.train_asv

train() {  # <data dir> <model dir> <name> [--set key=value ...]
  [ -f "$1/wav.scp" ] || { echo "$0: $1: data dir missing (run stages 1 and 5)" >&2; exit 1; }
  [ "$overwrite" = true ] && rm -rf "$2"
  echo "$0: training $3 on $1 -> $2 (log: $exp/log/train_$3.log)"
  $cmd $gpu_opt "$exp/log/train_$3.log" $launcher --conf "$conf" "${@:4}" "$1" "$2" \
    || { echo "$0: training $3 failed; see $exp/log/train_$3.log" >&2; exit 1; }
  grep "^train_asv:" "$exp/log/train_$3.log" || true  # its summary, and the convergence warning
}

if [ -n "$orig_model" ]; then
  python -c 'import sys; from voxanon.registry import resolve_model; print(resolve_model(sys.argv[1]))' "$orig_model" \
    >/dev/null || { echo "$0: asv.orig_model '$orig_model' not found" >&2; exit 1; }
  echo "$0: ASV_orig: using the pretrained model '$orig_model' (asv.orig_model)"
else
  train "$data/$train_set" "$exp/asv_orig" asv_orig
fi
train "$data/$train_set$suffix" "$exp/asv_anon" asv_anon
if [[ $scenarios == *" semi-informed-finetuned "* ]]; then
  init=${orig_model:-$exp/asv_orig}
  [ "$ft_epochs" -gt 0 ] || ft_epochs=$epochs
  echo "$0: semi-informed-finetuned: ASV_orig ($init) fine-tuned on $train_set$suffix for $ft_epochs epoch(s)"
  train "$data/$train_set$suffix" "$exp/asv_anon_ft" asv_anon_ft --set "init_model=$init" --set "epochs=$ft_epochs"
fi

if [ "$system" = admixture ] && [[ $scenarios != *" mixture-aware "* ]]; then
  echo "$0: admixture without the mixture-aware attacker (add mixture-aware to eval.scenarios for it:" \
       "an attacker that knows the parts; the semi-informed EER alone can overstate privacy)"
fi
if [ "$system" = admixture ] && [[ $scenarios == *" mixture-aware "* ]]; then
  mix=$exp/mixture
  mkdir -p "$mix"
  anon_cmd=${train_cmd:-run.pl}
  case "$anon_device" in cuda*|auto) anon_cmd=${cuda_cmd:-$anon_cmd} ;; esac
  echo "$0: mixture-aware attacker: $train_set anonymized by each part of the admixture alone"
  python -m voxanon.bin.mixture_attack confs "$conf" --exp "$exp" > "$mix/parts.tsv"
  while IFS=$'\t' read -r i part_conf; do
    part=$train_set${suffix}_part$i
    # the conf's own seed (checked by run.sh): the attacker runs the system, it never sees the draws
    "$VOXANON_ROOT/steps/anonymize.sh" --nj "$nj" --cmd "$anon_cmd" --overwrite "$overwrite" \
      --public-seed true --record-dir "$exp/anon_records/$part" "$part_conf" "$data/$train_set" "$data/$part" < /dev/null
    if [ -n "$part_models" ]; then  # another experiment's (the sweep: the same part outputs for every p)
      [ -f "$part_models/asv_part$i/embedding_model.ckpt" ] || { echo "$0: asv.part_models: no trained" \
        "$part_models/asv_part$i (run the experiment that trains it first)" >&2; exit 1; }
      echo "$0: asv_part$i: $part_models/asv_part$i (asv.part_models)"
    else
      train "$data/$part" "$mix/asv_part$i" "asv_part$i" < /dev/null
    fi
  done < "$mix/parts.tsv"
  echo "$0: component classifier on the parts' outputs; clusters of $train_set$suffix (log: $exp/log/mixture_classifier.log)"
  python -m voxanon.bin.mixture_attack classifier "$conf" --exp "$exp" --data-root "$data" \
    > "$mix/clusters.tsv" 2> "$exp/log/mixture_classifier.log" \
    || { echo "$0: component classifier failed; see $exp/log/mixture_classifier.log" >&2; tail -n 5 "$exp/log/mixture_classifier.log" >&2; exit 1; }
  grep "component classifier" "$exp/log/mixture_classifier.log" || true
  while IFS=$'\t' read -r i dir; do
    if [ "$dir" = - ]; then
      echo "$0: cluster $i of $train_set$suffix has fewer than 2 speakers: no ASV for it"
    else
      train "$dir" "$mix/asv_cluster$i" "asv_cluster$i" < /dev/null
    fi
  done < "$mix/clusters.tsv"
fi

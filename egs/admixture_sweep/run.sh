#!/usr/bin/env bash
# The admixture sweep (the paper's Figure 4): one experiment per mixing probability p, then the plot.
#
#   egs/admixture_sweep/run.sh [--base-conf conf/admixture_p0.4.yaml] [--p "0 0.1 0.2 0.325 0.4 0.5 0.75 1"]
#                              [--setup-conf CONF] [--dir DIR] [--stage 1] [--stop-stage 3] [--run-opts "..."]
#
# Stages:
#   1  DIR/conf/p<p>.yaml: the base admixture conf (2 systems) with p for the second system (the
#      cascade in the paper's confs) and 1 - p for the first; p = 0 and p = 1 are the pure systems
#   2  ./run.sh --conf DIR/conf/p<p>.yaml $run_opts for each p; a failed p is reported, the others go on
#   3  DIR/sweep.png: EER against UAR and against WER (the paper's Figure 4), each point labelled by
#      p, two curves: the VPC's semi-informed attacker and the mixture-aware one (an ASV per part,
#      chosen per utterance by a component classifier; run.sh stages 6-7 train and score it for
#      every admixture), with the straight line between p = 0 and p = 1 (linear mixing) for
#      comparison; DIR/sweep.csv: the averages (EER per attacker, UAR, WER)
#
# Offline, on the small embedded corpus (McAdams + the offline cascade, packaged models only):
#   egs/admixture_sweep/run.sh --base-conf conf/admixture_offline.yaml --setup-conf conf/mini.yaml
set -euo pipefail
cd "$(dirname "$0")/../.."

base_conf=conf/admixture_p0.4.yaml
p="0 0.1 0.2 0.325 0.4 0.5 0.75 1"
setup_conf=""
dir=exp/admixture_sweep
stage=1
stop_stage=3
run_opts=""
help_message="Usage: $0 [--base-conf CONF] [--p \"P1 P2 ...\"] [--setup-conf CONF] [--dir DIR] [--stage N] [--stop-stage M] [--run-opts \"OPTS\"]
  --base-conf CONF   an admixture conf of 2 systems; p is the second one's share (default conf/admixture_p0.4.yaml)
  --p \"...\"          the probabilities (default \"0 0.1 0.2 0.325 0.4 0.5 0.75 1\")
  --setup-conf CONF  take the data/models/asv/eval/report sections from CONF (e.g. conf/mini.yaml)
  --dir DIR          the study's folder: generated confs, plot, csv (default exp/admixture_sweep)
  --run-opts OPTS    passed to every ./run.sh call (e.g. \"--nj 8\")"

. ./path.sh
. utils/parse_options.sh
[ $# -eq 0 ] || { echo "$help_message" >&2; exit 1; }
mkdir -p "$dir/log"
name=$(basename "$dir")

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  echo "$0: stage 1: confs for p in {$p} from $base_conf into $dir/conf"
  python -m voxanon.studies.sweep confs --base-conf "$base_conf" --p "$p" --setup-conf "$setup_conf" \
    --name "$name" --dir "$dir" > "$dir/confs.tsv"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  [ -f "$dir/confs.tsv" ] || { echo "$0: $dir/confs.tsv missing: run stage 1 first" >&2; exit 1; }
  failed=()
  while IFS=$'\t' read -r pv conf; do
    log=$dir/log/p$pv.log
    echo "$0: stage 2: p=$pv: ./run.sh --conf $conf $run_opts (log: $log)"
    # shellcheck disable=SC2086  # run_opts is a list of options
    if ! ./run.sh --conf "$conf" $run_opts < /dev/null > "$log" 2>&1; then
      echo "$0: p=$pv FAILED; last lines of $log:" >&2
      tail -n 5 "$log" | sed 's/^/  | /' >&2
      failed+=("$pv")
    fi
  done < "$dir/confs.tsv"
  if ((${#failed[@]})); then
    echo "$0: ${#failed[@]} experiment(s) failed: p = ${failed[*]}; the plot leaves them out" >&2
  fi
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  python -m voxanon.studies.sweep plot --dir "$dir"
  echo "$0: plot in $dir/sweep.png, averages in $dir/sweep.csv"
fi
if [ -n "${failed[*]:-}" ]; then exit 1; fi

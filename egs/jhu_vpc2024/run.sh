#!/usr/bin/env bash
# The paper's Table 1: run every row's experiment through run.sh, then assemble the table.
#
#   egs/jhu_vpc2024/run.sh [--rows FILE] [--conf-dir conf] [--setup-conf CONF] [--dir DIR]
#                          [--stage 1] [--stop-stage 3] [--run-opts "..."] [--scenario semi-informed]
#
# Stages:
#   1  write one experiment conf per row of --rows into DIR/conf/ (DIR/experiments.tsv lists them)
#   2  ./run.sh --conf DIR/conf/<row>.yaml $run_opts for each row, in order; a failed row is reported
#      and the others go on. Work that rows have in common (data dirs, WavLM features, matching
#      sets, the attacker on original data) is written once to shared places by the stage scripts
#      and skipped by later rows; the rows are ordered so the kNN-VC rows build it first.
#   3  DIR/table1.{txt,csv,md}: EER per trials set (--scenario attacker), UAR per emotion set, WER
#      per set, averages, and the paper's averages for comparison; the "original" row comes from
#      the original-data results of the first experiment that has them.
#
# The full run uses the paper's confs (conf/knnvc.yaml ... conf/admixture_p0.4.yaml) and the VPC
# 2024 data. Offline, on the small embedded corpus (packaged models only):
#   egs/jhu_vpc2024/run.sh --rows egs/jhu_vpc2024/rows_offline.tsv --setup-conf conf/mini.yaml
# (--setup-conf moves every row onto that conf's data and evaluation sections).
set -euo pipefail
cd "$(dirname "$0")/../.."

rows=egs/jhu_vpc2024/rows.tsv
conf_dir=conf
setup_conf=""
dir=exp/jhu_vpc2024
stage=1
stop_stage=3
run_opts=""
scenario=semi-informed
help_message="Usage: $0 [--rows FILE] [--conf-dir DIR] [--setup-conf CONF] [--dir DIR] [--stage N] [--stop-stage M] [--run-opts \"OPTS\"] [--scenario NAME]
  --rows FILE        tab-separated rows: id, label, conf name ('-' = original data), paper's averages
                     (default egs/jhu_vpc2024/rows.tsv; offline: egs/jhu_vpc2024/rows_offline.tsv)
  --conf-dir DIR     where the rows' confs are (default conf)
  --setup-conf CONF  take the data/models/asv/eval/report sections from CONF (e.g. conf/mini.yaml)
  --dir DIR          the study's folder: generated confs, experiments.tsv, the table (default exp/jhu_vpc2024)
  --run-opts OPTS    passed to every ./run.sh call (e.g. \"--nj 8 --stop-stage 8\")
  --scenario NAME    attacker whose EERs the table shows (default semi-informed)"

. ./path.sh
. utils/parse_options.sh
[ $# -eq 0 ] || { echo "$help_message" >&2; exit 1; }
mkdir -p "$dir/log"

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  echo "$0: stage 1: experiment confs from $rows into $dir/conf"
  python -m voxanon.studies.table1 confs --rows "$rows" --conf-dir "$conf_dir" \
    --setup-conf "$setup_conf" --dir "$dir" > "$dir/confs.tsv"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  [ -f "$dir/confs.tsv" ] || { echo "$0: $dir/confs.tsv missing: run stage 1 first" >&2; exit 1; }
  failed=()
  while IFS=$'\t' read -r id conf; do
    [ "$conf" != "-" ] || continue
    log=$dir/log/$(basename "$conf" .yaml).log
    echo "$0: stage 2: row $id: ./run.sh --conf $conf $run_opts (log: $log)"
    # shellcheck disable=SC2086  # run_opts is a list of options
    if ! ./run.sh --conf "$conf" $run_opts < /dev/null > "$log" 2>&1; then
      echo "$0: row $id FAILED; last lines of $log:" >&2
      tail -n 5 "$log" | sed 's/^/  | /' >&2
      failed+=("$id:$(basename "$conf" .yaml)")
    fi
  done < "$dir/confs.tsv"
  if ((${#failed[@]})); then
    echo "$0: ${#failed[@]} row(s) failed: ${failed[*]}; the table shows '-' for them" >&2
  fi
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  python -m voxanon.studies.table1 table --dir "$dir" --scenario "$scenario"
  echo "$0: table in $dir/table1.txt, $dir/table1.csv, $dir/table1.md"
fi
if [ -n "${failed[*]:-}" ]; then exit 1; fi

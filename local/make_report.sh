#!/usr/bin/env bash
# run.sh stage 8: $VOXANON_EXP/results/results.json, results/result_for_rank (VPC 2024 layout),
# and the HTML report $VOXANON_EXP/report/index.html (tables, DET curves, histograms, audio).
#   local/make_report.sh [--overwrite false] <conf.yaml>
set -euo pipefail
overwrite=false
help_message="Usage: $0 [--overwrite false] <conf.yaml>"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] || { echo "$help_message" >&2; exit 1; }
conf=$1
exp=${VOXANON_EXP:-exp/$(python -m voxanon.bin.conf get "$conf" exp)}
[ "$overwrite" = true ] && rm -rf "$exp/report"
python -m voxanon.bin.make_report --data-root "${VOXANON_DATA:-data}" --exp "$exp" "$conf"

#!/usr/bin/env bash
# Stage 8: <expdir>/results/results.json, results/result_for_rank (VPC 2024 layout), and the HTML
# report <expdir>/report/index.html (tables, DET curves, histograms, audio).
set -euo pipefail
overwrite=false
help_message="Usage: $0 [--overwrite false] <config.yaml> <datadir> <expdir>"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 3 ] || { echo "$help_message" >&2; exit 1; }
[ "$overwrite" = true ] && rm -rf "$3/report"
python -m voxanon.bin.make_report --data-root "$2" --exp "$3" "$1"

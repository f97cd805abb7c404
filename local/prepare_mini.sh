#!/usr/bin/env bash
# Stage 1, recipe "mini": the embedded default corpus (offline synthetic voices), or your own speech
# when run.sh got --data DIR ($VOXANON_USER_DATA), split into mini_train / mini_enrolls /
# mini_trials_f / mini_trials_m under $VOXANON_DATA. See pyscripts/voxanon/corpora/mini.py.
#   local/prepare_mini.sh [--overwrite false] <conf.yaml>
set -euo pipefail
overwrite=false
help_message="Usage: $0 [--overwrite false] <conf.yaml>"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] || { echo "$help_message" >&2; exit 1; }
conf=$1
python -m voxanon.bin.prepare_mini --conf "$conf" --data-root "${VOXANON_DATA:-data}" \
  ${VOXANON_USER_DATA:+--user-data "$VOXANON_USER_DATA"} --nj "${VOXANON_NJ:-2}" --overwrite "$overwrite"

#!/usr/bin/env bash
# run.sh stage 1: Kaldi data dirs for every set the conf names, built by the conf's corpus recipe
# (data.recipe -> local/prepare_<recipe>.sh; data.options holds that recipe's settings) into
# $VOXANON_DATA (default data/). Each dir is validated.
#   local/prepare_data.sh [--overwrite false] <conf.yaml>
set -euo pipefail
overwrite=false
help_message="Usage: $0 [--overwrite false] <conf.yaml>
  --overwrite true   rebuild dirs that already exist and are valid"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] || { echo "$help_message" >&2; exit 1; }
conf=$1
recipe=$(python -m voxanon.bin.conf get "$conf" data.recipe)
script=$VOXANON_ROOT/local/prepare_${recipe}.sh
if [ ! -x "$script" ]; then
  known=$(cd "$VOXANON_ROOT/local" && ls prepare_*.sh | grep -v '^prepare_data.sh$' | sed 's/^prepare_//; s/\.sh$//' | tr '\n' ' ')
  echo "$0: data.recipe '$recipe' has no script $script (recipes: $known)" >&2
  exit 1
fi
exec "$script" --overwrite "$overwrite" "$conf"

#!/usr/bin/env bash
# Stage 1: Kaldi data dirs for every set the experiment names, built by its corpus recipe
# (data.recipe -> local/prepare_<recipe>.sh; data.options holds that recipe's settings) under
# <datadir>. Each dir is validated. Corpus locations come from db.sh through run.sh.
set -euo pipefail
nj=2
overwrite=false     # true: rebuild dirs that already exist and are valid
user_data=          # run.sh --data: your own Kaldi dir or folder of wavs (recipe mini)
vpc2024_data=; vpc2024_audio=; librispeech=; iemocap=; voxceleb1=; voxceleb1_meta=  # db.sh
help_message="Usage: $0 [--nj 2] [--overwrite false] [--user-data DIR] [--librispeech DIR ...] <config.yaml> <datadir>"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 2 ] || { echo "$help_message" >&2; exit 1; }
config=$1
datadir=$2
recipe=$(python -m voxanon.bin.conf get "$config" data.recipe)
case $recipe in
  mini)
    python -m voxanon.bin.prepare_mini --conf "$config" --data-root "$datadir" ${user_data:+--user-data "$user_data"} \
      --nj "$nj" --overwrite "$overwrite" ;;
  vpc2024)
    flags=(); [ "$overwrite" = true ] && flags+=(--overwrite)
    python -m voxanon.bin.prepare vpc2024 "$config" "$datadir" "${flags[@]}" --vpc-data-dir "$vpc2024_data" \
      --vpc-audio-dir "$vpc2024_audio" --librispeech-root "$librispeech" --iemocap-root "$iemocap" \
      --voxceleb-root "$voxceleb1" --voxceleb-meta "$voxceleb1_meta" ;;
esac

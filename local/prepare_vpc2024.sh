#!/usr/bin/env bash
# Stage 1 for data.recipe vpc2024: the VPC 2024 evaluation sets (release lists + organizers' audio),
# a LibriSpeech subset as the attacker's training set, IEMOCAP_dev/test, and the kNN-VC target
# pool, as named in the conf's data section (paths in data.options; see
# voxanon.corpora.vpc2024.Vpc2024Options). Writes $VOXANON_DATA/<set> (default data/), validated;
# set sizes differing from the published ones are reported as warnings.
#   local/prepare_vpc2024.sh [--overwrite false] <conf.yaml>
set -euo pipefail
overwrite=false
help_message="Usage: $0 [--overwrite false] <conf.yaml>
  --overwrite true   rebuild dirs that already exist and are valid"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] || { echo "$help_message" >&2; exit 1; }
conf=$1
flags=()
[ "$overwrite" = true ] && flags+=(--overwrite)
python -m voxanon.bin.prepare vpc2024 "$conf" "${VOXANON_DATA:-data}" "${flags[@]}"

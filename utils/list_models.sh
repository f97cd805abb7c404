#!/usr/bin/env bash
# List the weights of conf/models.yaml (or only those a conf needs) with their status:
# present / missing / mismatch (sha256 differs) / packaged, size, licence and path or source.
#   utils/list_models.sh [--conf conf/knnvc.yaml] [--verify true]
# --verify true reads every present file and checks (or, unpinned, prints) its sha256.
set -euo pipefail
conf=""
verify=false
help_message="Usage: $0 [--conf CONF] [--verify true|false]"
. "$(dirname "$0")/../path.sh"
. "$VOXANON_ROOT/utils/parse_options.sh"
args=(list)
[ -n "$conf" ] && args+=(--conf "$conf")
[ "$verify" = true ] && args+=(--verify)
exec python -m voxanon.bin.models "${args[@]}"

#!/usr/bin/env bash
# Kaldi's subset_data_dir.sh: part of a dir, every file filtered to match.
#   subset_data_dir.sh [--speakers|--shortest|--first|--last|--per-spk] <data> <N> <out>
#   subset_data_dir.sh [--spk-list F | --utt-list F] <data> <out>
# Implemented in pyscripts/voxanon/bin/subset_data_dir.py; --help lists the options.
# readlink -f: works from any directory and through a symlinked utils/ (another recipe's).
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m voxanon.bin.subset_data_dir "$@"

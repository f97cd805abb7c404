#!/usr/bin/env bash
# Kaldi's split_data.sh: <data>/split<N>/{1..N}, each speaker in one part (--per-utt: split<N>utt,
# speakers ignored); not redone when the split is newer than the dir.
#   split_data.sh [--per-utt] <data> <N>
# Implemented in pyscripts/voxanon/bin/split_data.py; --help lists the options.
# readlink -f: works from any directory and through a symlinked utils/ (another recipe's).
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m voxanon.bin.split_data "$@"

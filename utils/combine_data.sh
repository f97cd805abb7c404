#!/usr/bin/env bash
# Kaldi's combine_data.sh: <out> replaced by the inputs' files combined, then fix_data_dir.sh.
#   combine_data.sh [--extra-files "f1 f2"] [--skip-fix true|false] <out> <data1> <data2> ...
# Implemented in pyscripts/voxanon/bin/combine_data.py; --help lists the options.
# readlink -f: works from any directory and through a symlinked utils/ (another recipe's).
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m voxanon.bin.combine_data "$@"

#!/usr/bin/env bash
# Combine data dirs into one (duplicate utterance ids are an error; enrolls and trials merged).
#   combine_data.sh <out> <data1> <data2> ...
# Implemented in pyscripts/voxanon/bin/datadir.py; --help lists the options.
. "$(dirname "$0")/../path.sh"
exec python -m voxanon.bin.datadir combine "$@"

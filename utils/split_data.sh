#!/usr/bin/env bash
# Split a data dir into N parts of about equal size: <data>/split<N>/{1..N} (rebuilt on every call).
#   split_data.sh [--per-spk] <data> <N>
# --per-spk keeps each speaker's utterances together (disjoint speakers). Tables, enrolls, trials follow.
# Implemented in pyscripts/voxanon/bin/datadir.py; --help lists the options.
. "$(dirname "$0")/../path.sh"
exec python -m voxanon.bin.datadir split "$@"

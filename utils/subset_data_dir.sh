#!/usr/bin/env bash
# Copy part of a data dir (tables, enrolls, trials filtered to match; wav paths kept valid).
#   subset_data_dir.sh (--utt-list F | --spk-list F | --first N | --random N [--seed S]) <data> <out>
# Implemented in pyscripts/voxanon/bin/datadir.py; --help lists the options.
. "$(dirname "$0")/../path.sh"
exec python -m voxanon.bin.datadir subset "$@"

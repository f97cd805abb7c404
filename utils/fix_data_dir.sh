#!/usr/bin/env bash
# Make a data dir consistent in place: keep utterances present in wav.scp, utt2spk and every per-utterance
# table, filter speaker tables / enrolls / trials to them, sort, regenerate spk2utt.
#   fix_data_dir.sh <data>
# What was dropped and why is appended to <data>/fix_data_dir.log; the originals go to <data>/.backup/.
# Implemented in pyscripts/voxanon/bin/datadir.py; --help lists the options.
. "$(dirname "$0")/../path.sh"
exec python -m voxanon.bin.datadir fix "$@"

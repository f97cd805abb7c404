#!/usr/bin/env bash
# Check a Kaldi data dir; list every problem with the offending ids and files, exit 1 if any.
#   validate_data_dir.sh [--no-audio] [--sample-rate 16000] [--allow-pipes] <data>
# Checks: sorted files, duplicate ids, wav.scp/utt2spk/spk2utt agreement, optional tables (text, utt2emo,
# utt2dur, spk2gender, spk2fold), enrolls and trials ids; audio readable, non-empty, at the sample rate.
# Implemented in pyscripts/voxanon/bin/datadir.py; --help lists the options.
. "$(dirname "$0")/../path.sh"
exec python -m voxanon.bin.datadir validate "$@"

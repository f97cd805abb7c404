#!/usr/bin/env bash
# Kaldi's validate_data_dir.sh: the same flags and checks (every problem listed, not just the first),
# plus voxanon's: audio readable at --sample-rate (unless --no-audio), utt2emo/spk2fold/enrolls/trials ids.
#   validate_data_dir.sh [--no-feats] [--no-text] [--non-print] [--no-wav] [--no-spk-sort] <data>
# Implemented in pyscripts/voxanon/bin/validate_data_dir.py; --help lists the options.
# readlink -f: works from any directory and through a symlinked utils/ (another recipe's).
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m voxanon.bin.validate_data_dir "$@"

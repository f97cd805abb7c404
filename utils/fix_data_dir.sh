#!/usr/bin/env bash
# Kaldi's fix_data_dir.sh: sorts and filters the dir in place to the utterances present in every
# file that must list them; the same output files, byte for byte. Originals in <data>/.backup/.
#   fix_data_dir.sh [--utt-extra-files "f1 f2"] [--spk-extra-files "f1 f2"] <data>
# Implemented in pyscripts/voxanon/bin/fix_data_dir.py; --help lists the options.
# readlink -f: works from any directory and through a symlinked utils/ (another recipe's).
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m voxanon.bin.fix_data_dir "$@"

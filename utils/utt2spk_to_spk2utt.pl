#!/usr/bin/env bash
# Kaldi's utt2spk_to_spk2utt.pl (kept under Kaldi's name): utt2spk (file or stdin) to spk2utt on stdout.
# Implemented in pyscripts/voxanon/bin/scp_tools.py; --help for usage.
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m voxanon.bin.scp_tools spk2utt "$@"

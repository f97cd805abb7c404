#!/usr/bin/env bash
# Kaldi's spk2utt_to_utt2spk.pl (kept under Kaldi's name): spk2utt (file or stdin) to utt2spk on stdout.
# Implemented in pyscripts/voxanon/bin/scp_tools.py; --help for usage.
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m voxanon.bin.scp_tools utt2spk "$@"

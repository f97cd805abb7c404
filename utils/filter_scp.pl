#!/usr/bin/env bash
# Kaldi's filter_scp.pl (kept under Kaldi's name): [--exclude] [-f N] <id-list> [<file>].
# Implemented in pyscripts/voxanon/bin/scp_tools.py; --help for usage.
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m voxanon.bin.scp_tools filter-scp "$@"

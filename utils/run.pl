#!/usr/bin/env bash
# Kaldi-style local job runner (kept under Kaldi's name run.pl):
#   run.pl [--max-jobs-run N] [--gpu N] [--mem X] ... JOB=1:N exp/log/x.JOB.log prog args-with-JOB
# Implemented in pyscripts/voxanon/jobs/local.py; --help for usage.
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m voxanon.jobs.local "$@"

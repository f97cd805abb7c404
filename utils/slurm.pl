#!/usr/bin/env bash
# Kaldi-style Slurm job runner (kept under Kaldi's name slurm.pl):
#   slurm.pl [--max-jobs-run N] [--gpu N] [--mem X] ... JOB=1:N exp/log/x.JOB.log prog args-with-JOB
# Implemented in pyscripts/voxanon/jobs/slurm.py; --help for usage.
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m voxanon.jobs.slurm "$@"

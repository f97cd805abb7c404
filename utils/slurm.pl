#!/usr/bin/env python3
# Kaldi-style Slurm job runner (Python, named slurm.pl after Kaldi's convention):
#   slurm.pl [--max-jobs-run N] [--gpu N] [--mem X] ... JOB=1:N exp/log/x.JOB.log prog args-with-JOB
# See pyscripts/voxanon/jobs/slurm.py or `slurm.pl --help`.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pyscripts"))
from voxanon.jobs.slurm import main  # noqa: E402

sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
# Kaldi-style local job runner (Python, named run.pl after Kaldi's convention):
#   run.pl [--max-jobs-run N] [--gpu N] [--mem X] ... JOB=1:N exp/log/x.JOB.log prog args-with-JOB
# See pyscripts/voxanon/jobs/local.py or `run.pl --help`.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pyscripts"))
from voxanon.jobs.local import main  # noqa: E402

sys.exit(main(sys.argv[1:]))

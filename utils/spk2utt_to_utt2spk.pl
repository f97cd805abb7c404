#!/usr/bin/env python3
# Kaldi-style spk2utt_to_utt2spk (Python, named after Kaldi's tool); --help for usage.
# Implemented in pyscripts/voxanon/bin/datadir.py.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pyscripts"))
from voxanon.bin.datadir import main  # noqa: E402

sys.exit(main(["utt2spk", *sys.argv[1:]]))

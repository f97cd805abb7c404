"""Corpus preparation: corpora in their published layouts -> Kaldi data dirs.

One module per corpus or recipe (librispeech, vpc2024, iemocap, voxceleb, mini, ...); ``common``
holds the shared checks. The ``prepare_*`` functions return a ``DataDir`` (nothing written);
``common.finish`` writes and validates it.
"""

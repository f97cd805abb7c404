"""Corpus preparation: real corpora in their published layouts -> Kaldi data dirs.

One module per corpus (librispeech, vpc2024, iemocap, voxceleb); ``common`` holds the shared
checks. Each ``prepare_*`` function returns a ``DataDir`` (nothing written); ``common.finish``
writes and validates it.
"""

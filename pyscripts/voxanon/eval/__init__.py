"""Evaluation of anonymized speech by the VoicePrivacy protocol: ASV attackers and EER (privacy),
WER and emotion UAR (utility), results and the report."""

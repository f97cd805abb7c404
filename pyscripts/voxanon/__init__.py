"""voxanon: speaker anonymization recipes and VoicePrivacy 2024 evaluation."""

__version__ = "0.1.0"

"""A minimal anonymization system for testing the generic runner: scales the audio by a gain and
fails on purpose for utterance ids containing ``fail_on``."""
from dataclasses import dataclass

from voxanon.anonymize.base import BuildContext, Converted, Utterance
from voxanon.audio import Audio


@dataclass(frozen=True)
class Params:
    gain: float = 0.5
    fail_on: str = "broken"


def build(params: Params, ctx: BuildContext):
    def anonymize(utt: Utterance) -> Converted:
        if params.fail_on in utt.id:
            raise RuntimeError("deliberate failure")
        return Converted(Audio(utt.audio.samples * params.gain, utt.audio.sample_rate), {"gain": params.gain})

    return anonymize

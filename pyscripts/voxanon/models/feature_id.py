"""Which WavLM features a converter was trained on, so inference can refuse any others.

The identity is ``{"wavlm": <hash>, "layer": L}``: a hash of the weights that make layer-L
features (the WavLM truncated at L, as ``load_wavlm(max_layer=L)`` gives it), not of the file,
so the same weights in the original or the torchaudio layout match, and another checkpoint or
layer does not. Stage 4 records it from the features dir's ``.wavlm.json`` (steps/make_wavlm.sh)
in the pairs dir and in every checkpoint; stage 5 compares it with its own WavLM and layer.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from voxanon.features.config import FEATS_STAMP
from voxanon.features.wavlm import WavLM, load_wavlm, original_state_dict
from voxanon.registry import resolve_model

def wavlm_identity(model: WavLM, layer: int) -> dict:
    h = hashlib.sha256()
    # the original layout's names (no mask_emb), as in the identities recorded before the torchaudio model
    for name, tensor in sorted(original_state_dict(model).items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return {"wavlm": h.hexdigest()[:16], "layer": layer}


def features_identity(feats_scp: str | Path) -> dict:
    """The identity of the WavLM that wrote ``feats_scp``, from its dir's ``.wavlm.json``."""
    stamp_path = Path(feats_scp).parent / FEATS_STAMP
    if not stamp_path.is_file():
        raise FileNotFoundError(f"{stamp_path} missing: the training features must come from steps/make_wavlm.sh "
                                "(it records the WavLM checkpoint and layer the converter is then tied to)")
    stamp = json.loads(stamp_path.read_text())
    layer = int(stamp["layer"])
    return wavlm_identity(load_wavlm(resolve_model(stamp["checkpoint"]), "cpu", max_layer=layer), layer)


def check_features(trained: dict | None, used: dict, converter: str | Path, wavlm: str) -> None:
    """Raise unless the converter was trained on features of the WavLM weights and layer ``used``."""
    if trained is None:
        raise ValueError(f"{converter}: records no training-feature identity (made before it was kept); "
                         "retrain it with run.sh stage 4")
    if dict(trained) != used:
        raise ValueError(f"{converter} was trained on layer-{trained['layer']} features of WavLM weights "
                         f"{trained['wavlm']}, but anonymizer.params asks for layer {used['layer']} of {wavlm} "
                         f"(weights {used['wavlm']}): use the features.checkpoint and features.layer it was "
                         "trained with")

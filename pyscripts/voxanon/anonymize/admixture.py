"""Random admixture: each utterance is anonymized by one of several systems, drawn at random.

The paper's headline system mixes kNN-VC with the ASR→TTS cascade (probability p for the
cascade): an attacker who cannot tell which system produced an utterance has to model both, so
privacy rises faster than utility falls. The draw depends only on the seed and the utterance id
(``utt_rng(seed, utt, "admixture")``), so it is reproducible and the same whatever job or order
processes the utterance; it applies to every set, the attacker's training set included.

Conf (``anonymizer.params``)::

    systems:
      - {system: knnvc, p: 0.6, params: {...}}
      - {system: asr_tts, p: 0.4, params: {...}}

Sub-systems are built only when first drawn, each with its own seed derived from the conf's seed
and its position. The record of an utterance is ``{"system", "component", "sub": sub-record}``:
it says which system (and target) produced the utterance and so undoes the mixing; the runner
keeps it in an owner-only record dir outside the data dir. Anyone who knows the conf's seed can
recompute the draws too: for a real release, use a private seed.

With ``cache_dir`` set, each part's output of each utterance is kept there (keyed on the part's
system, params and seed and on the input audio). The draws are nested across p (one uniform number
per utterance), so admixtures that differ only in p reuse each other's outputs: the sweep
(egs/admixture_sweep) anonymizes each set with each part once, not once per p.

A batch of utterances is drawn utterance by utterance, then each part converts the utterances
drawn for it as one batch (in batches of its own ``batch_size`` when it batches).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from urllib.parse import quote

import numpy as np
import soundfile as sf

from voxanon.anonymize.base import (Anonymizer, BuildContext, BuildError, Converted, Utterance, convert_all,
                                    system_module)
from voxanon.anonymize.params import AdmixtureParams as Params
from voxanon.anonymize.config import parse_params
from voxanon.audio import Audio
from voxanon.config import fingerprint
from voxanon.fileio import atomic_path, atomic_write_text
from voxanon.rng import utt_rng


class PartCache:
    """One part's outputs: ``<utt>.wav`` (float, as the part returned it) and ``<utt>.json`` (the
    input audio's sha256 and the part's record), owner-only like the records: they undo the mixing."""

    def __init__(self, root: Path, key: str):
        self.dir = root / key
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)

    def _paths(self, utt: str) -> tuple[Path, Path]:
        name = quote(utt, safe="")
        return self.dir / f"{name}.wav", self.dir / f"{name}.json"

    def get(self, utt: str, digest: str) -> Converted | None:
        wav, meta = self._paths(utt)
        try:
            entry = json.loads(meta.read_text(encoding="utf-8"))
            if entry.get("audio_sha256") != digest:
                return None
            samples, rate = sf.read(wav, dtype="float32")
        except (OSError, ValueError, RuntimeError):
            return None
        return Converted(Audio(samples, rate), entry["record"])

    def put(self, utt: str, digest: str, result: Converted) -> None:
        wav, meta = self._paths(utt)
        with atomic_path(wav) as tmp:
            sf.write(tmp, result.audio.samples, result.audio.sample_rate, subtype="FLOAT", format="WAV")
        atomic_write_text(meta, json.dumps({"audio_sha256": digest, "record": result.record}) + "\n")


def derived_seed(seed: int, index: int) -> int:
    """The seed of component ``index``: independent of the draw and of the other components."""
    return int(np.random.SeedSequence([seed, index, 0xAD]).generate_state(1)[0])


class Admixture:
    def __init__(self, params: Params, ctx: BuildContext):
        self.components = params.systems
        # Parse every component's params now, so a typo fails before the first utterance.
        self.sub_params = [parse_params(c.system, c.params, f"anonymizer.params.systems[{i}].params")
                           for i, c in enumerate(self.components)]
        cum = np.cumsum([c.p for c in self.components])
        cum[-1] = 1.0  # rounding must not leave a gap at the top
        self.cum = cum
        self.ctx = ctx
        self.built: dict[int, Anonymizer] = {}
        self.batch_size = max(getattr(sp, "batch_size", 1) for sp in self.sub_params)
        self.bucket = max(getattr(sp, "bucket", 1) for sp in self.sub_params)
        self.caches = [PartCache(Path(params.cache_dir), fingerprint(
            {"system": c.system, "params": sp, "seed": derived_seed(ctx.seed, i)}))
            for i, (c, sp) in enumerate(zip(self.components, self.sub_params))] if params.cache_dir else None

    def choose(self, utt_id: str) -> int:
        """Index of the component that anonymizes utterance ``utt_id``."""
        u = utt_rng(self.ctx.seed, utt_id, "admixture").random()
        return int(np.searchsorted(self.cum, u, side="right"))

    def system(self, index: int) -> Anonymizer:
        if index not in self.built:
            c = self.components[index]
            sub_ctx = BuildContext(derived_seed(self.ctx.seed, index), self.ctx.device,
                                   self.ctx.work_dir / f"{index}_{c.system}", self.ctx.features)
            sub_ctx.work_dir.mkdir(parents=True, exist_ok=True)
            try:
                self.built[index] = system_module(c.system).build(self.sub_params[index], sub_ctx)
            except Exception as err:  # fail the job once, not every utterance drawn for this part
                first = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise BuildError(f"anonymizer.params.systems[{index}] ({c.system}) cannot be built: {first}") from err
        return self.built[index]

    def convert_batch(self, utts: list[Utterance]) -> list[Converted | Exception]:
        drawn = [self.choose(u.id) for u in utts]
        results: list[Converted | Exception | None] = [None] * len(utts)
        digests: dict[int, str] = {}
        if self.caches is not None:
            for i, (utt, index) in enumerate(zip(utts, drawn)):
                digests[i] = hashlib.sha256(np.ascontiguousarray(utt.audio.samples).tobytes()).hexdigest()
                results[i] = self.caches[index].get(utt.id, digests[i])
        for index in sorted(set(drawn)):
            todo = [i for i, d in enumerate(drawn) if d == index and results[i] is None]
            if not todo:
                continue
            part = self.system(index)
            size = getattr(part, "batch_size", 1)
            for start in range(0, len(todo), size):
                batch = todo[start:start + size]
                for i, result in zip(batch, convert_all(part, [utts[i] for i in batch])):
                    if self.caches is not None and isinstance(result, Converted):
                        self.caches[index].put(utts[i].id, digests[i], result)
                    results[i] = result
        return [r if isinstance(r, Exception) else
                Converted(r.audio, {"system": self.components[index].system, "component": index, "sub": r.record})
                for r, index in zip(results, drawn)]

    def __call__(self, utt: Utterance) -> Converted:
        result = self.convert_batch([utt])[0]
        if isinstance(result, Exception):
            raise result
        return result


def build(params: Params, ctx: BuildContext) -> Admixture:
    return Admixture(params, ctx)

"""Batched anonymization: kNN-VC, WavLM conversion and admixture give in batches what
they give one utterance at a time (random tiny models in the published layouts), per-utterance
draws do not depend on the batch, and the runner's batches keep resume and one-bad-utterance
behaviour. Tolerance: |batched - single| <= 1e-4 on outputs loudness-normalized to -16 LUFS
(float rounding of padded vs. unpadded matrix products; the padding itself is masked)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from knnvc_helpers import tiny_generator, tiny_wavlm, voiced, one_torch_thread  # noqa: F401
from test_knnvc_anonymize import prepared, system  # noqa: F401 (module fixture)
from voxanon.anonymize import knnvc as knnvc_mod
from voxanon.anonymize.base import BuildContext, Utterance, build_system, convert_all
from voxanon.anonymize.wavlm_conv import Params as ConvParams
from voxanon.anonymize.wavlm_conv import WavLMConversion
from voxanon.audio import Audio, AudioError
from voxanon.bin import anonymize as cli
from voxanon.data.kaldi import DataDir, load_data_dir, write_data_dir
from voxanon.features.config import FeaturesConfig
from voxanon.features.wavlm import save_wavlm
from voxanon.models.config import ModelConfig
from voxanon.models.converter import Converter
from voxanon.vocoder.hifigan import vocode, vocode_batch

ATOL = 1e-4


def utts(n: int = 5) -> list[Utterance]:
    """Different lengths (0.25 to 0.85 s) so the batch is padded."""
    return [Utterance(f"u{i}", "src", Audio(voiced(0.25 + 0.15 * i, 150 + 20 * i, i), 16000)) for i in range(n)]


def assert_same(batched, single):
    assert len(batched) == len(single)
    for b, s in zip(batched, single):
        assert b.record == s.record
        assert len(b.audio.samples) == len(s.audio.samples)
        np.testing.assert_allclose(b.audio.samples, s.audio.samples, rtol=0, atol=ATOL)


@pytest.mark.parametrize("params", [
    {},
    {"targets_per_utt": 2, "target_weights": "random"},
    {"targets_per_utt": 3, "length_variation": True},
    {"length_variation": True, "length_method": "features"},
    {"feature_noise": True},
], ids=["plain", "pooled-random", "pooled-speed", "frames", "noise"])
def test_knnvc_batch_equals_one_at_a_time(prepared, params):  # noqa: F811
    sys_ = system(prepared, **params)
    batch = utts()
    single = [sys_(u) for u in batch]
    assert_same(sys_.convert_batch(batch), single)
    # A batch in another order and of other company draws the same for each utterance.
    assert_same(sys_.convert_batch(batch[::-1][:3]), single[::-1][:3])


def test_vocoder_batch_equals_single_including_chunks():
    gen = tiny_generator(seed=3)
    feats = [torch.randn(n, 64) for n in (45, 17, 3, 33)]
    single = [vocode(gen, f, -20.0).samples for f in feats]
    for chunk in (1500, 10):  # whole, and chunked with context (the long-input path)
        out = vocode_batch(gen, feats, -20.0, chunk_frames=chunk, context_frames=16, batch_frames=10_000)
        for a, b in zip(single, out):
            np.testing.assert_allclose(b.samples, a, rtol=0, atol=ATOL)


def test_wavlm_conversion_batch_equals_one_at_a_time(tmp_path):
    torch.manual_seed(0)
    conv = WavLMConversion.__new__(WavLMConversion)  # the models without a training run
    conv.p, conv.ctx, conv.device = ConvParams(checkpoint="unused", layer=3), BuildContext(0, "cpu", tmp_path), "cpu"
    conv.wavlm, conv.vocoder, conv.target = tiny_wavlm(), tiny_generator(), "t1"
    conv.converter = Converter(ModelConfig(feat_dim=64, hidden=32, heads=2, ffn_dim=64, ffn_kernels=(3, 3),
                                           encoder_layers=1, decoder_layers=1, dropout=0.0)).eval()
    conv.batch_size, conv.bucket = 4, 2
    batch = utts(4)
    assert_same(conv.convert_batch(batch), [conv(u) for u in batch])


def test_admixture_batch_draws_per_utterance(prepared, tmp_path):  # noqa: F811
    knn = {"matching_sets": str(prepared / "targets" / "pool"), "vocoder": str(prepared / "models" / "prematch_g.pt"),
           "batch_size": 3}
    params = {"systems": [{"system": "knnvc", "p": 0.5, "params": knn}, {"system": "mcadams", "p": 0.5}]}
    mix = build_system("admixture", params, BuildContext(1986, "cpu", tmp_path / "work"))
    assert mix.batch_size == 3
    batch = utts(6)
    batched, single = mix.convert_batch(batch), [mix(u) for u in batch]
    assert {r.record["system"] for r in single} == {"knnvc", "mcadams"}
    assert_same(batched, single)


def test_one_bad_utterance_in_a_batch_fails_alone(prepared):  # noqa: F811
    sys_ = system(prepared)
    batch = utts(3)
    short = Utterance("short1", "s", Audio(np.zeros(300, np.float32), 16000))
    results = convert_all(sys_, [batch[0], short, *batch[1:]])
    assert isinstance(results[1], AudioError) and "short1" in str(results[1])
    assert_same([results[0], *results[2:]], [sys_(u) for u in batch])


def test_runner_batches_resume_and_a_broken_wav(prepared, tmp_path):  # noqa: F811
    """steps' job runner with batch_size 2: a NaN wav fails alone with its id, the rest equal a
    one-at-a-time run; a re-run, with other batching too, redoes only the fixed one."""
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    wav_scp, utt2spk = {}, {}
    for u in utts(5):
        sf.write(wavs / f"{u.id}.wav", u.audio.samples, 16000, subtype="FLOAT")
        wav_scp[u.id], utt2spk[u.id] = str(wavs / f"{u.id}.wav"), "src"
    sf.write(wavs / "u2.wav", np.full(4000, np.nan, np.float32), 16000, subtype="FLOAT")
    write_data_dir(DataDir(wav_scp, utt2spk), tmp_path / "src")

    def run(out: str, batch_size: int) -> int:
        conf = tmp_path / f"{out}.yaml"
        conf.write_text(json.dumps({"exp": "t", "features": {"chunk_seconds": 20.0}, "anonymizer": {
            "system": "knnvc", "device": "cpu", "seed": 5, "params": {
                "matching_sets": str(prepared / "targets" / "pool"), "batch_size": batch_size, "bucket": 2,
                "vocoder": str(prepared / "models" / "prematch_g.pt")}}}))
        return cli.main(["job", "--conf", str(conf), "--record-dir", str(tmp_path / f"rec_{out}"), str(tmp_path / "src"),
                            str(tmp_path / out)])

    assert run("batched", 2) == 1
    assert (tmp_path / "batched" / "log" / "failed.1").read_text() == "u2\n"
    assert run("single", 1) == 1
    for u in ("u0", "u1", "u3", "u4"):
        a, b = (sf.read(tmp_path / d / "wav" / f"{u}.wav")[0] for d in ("batched", "single"))
        np.testing.assert_allclose(a, b, atol=2 / 32768)  # 16-bit wavs: one step of rounding apart
    done = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "batched" / "wav").iterdir()}
    sf.write(wavs / "u2.wav", voiced(0.5, 170, 2), 16000)  # fixed: only it is redone
    assert run("batched", 2) == 0
    assert {n: (tmp_path / "batched" / "wav" / n).stat().st_mtime_ns for n in done} == done
    assert run("batched", 3) == 0  # other batching is the same config: nothing is redone
    assert {n: (tmp_path / "batched" / "wav" / n).stat().st_mtime_ns for n in done} == done
    assert len(load_data_dir(tmp_path / "src").utts) == len(list((tmp_path / "batched" / ".done").iterdir()))


def test_source_features_follow_the_conf(prepared, monkeypatch, tmp_path):  # noqa: F811
    seen = []
    real = knnvc_mod.extract_tensors

    def spy(model, audios, layer, chunk, context, batch_seconds, names):
        seen.append((chunk, context, batch_seconds))
        return real(model, audios, layer, chunk, context, batch_seconds, names)

    monkeypatch.setattr(knnvc_mod, "extract_tensors", spy)
    ctx = BuildContext(1986, "cpu", tmp_path, FeaturesConfig(chunk_seconds=2.0, context_seconds=0.5, batch_seconds=9))
    base = {"matching_sets": str(prepared / "targets" / "pool"), "vocoder": str(prepared / "models" / "prematch_g.pt")}
    build_system("knnvc", base, ctx)(utts(1)[0])
    assert seen == [(2.0, 0.5, 9)]
    conf = tmp_path / "c.yaml"
    conf.write_text("features: {chunk_seconds: 12, context_seconds: 2}\n")
    assert cli.load_conf(str(conf), True)[1].features == FeaturesConfig(chunk_seconds=12, context_seconds=2)


def test_knnvc_refuses_a_wavlm_other_than_the_matching_sets(prepared, tmp_path):  # noqa: F811
    same = tmp_path / "same_original_layout.pt"
    save_wavlm(tiny_wavlm(), same, "original")  # the sets were made with these weights (torchaudio layout)
    assert system(prepared, wavlm=str(same)).layer == 3
    other = tmp_path / "other.pt"
    save_wavlm(tiny_wavlm(seed=1), other)
    with pytest.raises(ValueError, match=r"holds layer-3 features of .*wavlm_torchaudio.pt, but "
                                         r"anonymizer.params.wavlm is .*other.pt, other weights"):
        system(prepared, wavlm=str(other))


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_half_precision_stages_stay_close_to_float32(prepared, precision, tmp_path):  # noqa: F811
    """WavLM features and the vocoder's output in half precision (the matcher's: test_knnvc_matcher);
    the whole system runs. Tiny random models are chaotic, so end-to-end closeness is the bench's."""
    ctx = BuildContext(0, "cpu", tmp_path)
    model, batch = tiny_wavlm(), utts(2)
    exact = knnvc_mod.source_features(model, [u.audio for u in batch], batch, 3, ctx, "float32")
    half = knnvc_mod.source_features(model, [u.audio for u in batch], batch, 3, ctx, precision)
    for e, h in zip(exact, half):
        assert h.dtype == torch.float32 and float((h - e).norm() / e.norm()) < 0.05
    gen = tiny_generator()
    with torch.no_grad():  # HiFi-GAN's init gives a 1e-4 signal, below bfloat16's rounding; x3 gains: 1e-3
        for name, param in gen.named_parameters():
            if name.endswith("weight_g"):
                param.mul_(3.0)
    ref = knnvc_mod.vocode_all(gen, exact, -16.0, 2, "float32", "cpu")
    for r, h in zip(ref, knnvc_mod.vocode_all(gen, exact, -16.0, 2, precision, "cpu")):
        assert np.corrcoef(r.samples, h.samples)[0, 1] > 0.95
    out = system(prepared, wavlm_precision=precision, matcher_precision=precision,
                 vocoder_precision=precision)(batch[0]).audio.samples
    assert len(out) == len(system(prepared)(batch[0]).audio.samples) and np.isfinite(out).all()

"""The VPC 2024 evaluation models, proven equal to speechbrain's interfaces as the VPC calls them.

Random-weight stand-ins in the release layouts (``voxanon.testing.vpc_models``) are scored by voxanon and by
the reference path the VPC's own scripts take (``EncoderASR.transcribe_batch`` on its sorted,
padded batches of 8 + ``ErrorRateStats``; ``foreign_class(custom_interface.py).classify_batch`` per
utterance + sklearn per spk2fold row; ``EncoderClassifier.encode_batch``), on the same audio.
The ASR reference re-creates speechbrain 0.5.16's ``transcribe_batch`` (the release's version,
``release_transcribe_batch``): the wav2vec2 lobe runs on the padded batch without lengths.
"""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from voxanon.asr import AsrConfig, load_asr
from voxanon.audio import Audio, AudioError
from voxanon.data.kaldi import load_data_dir, read_table
from voxanon.eval.asv_model import load_asv
from voxanon.eval.ser import evaluate_uar
from voxanon.eval.wer import asr_sets, wer_of_set
from voxanon.testing.datadirs import iemocap_dir, make_dir, speaker_wave
from voxanon.testing.vpc_models import EMOTIONS, make_vpc_asr, make_vpc_asv_orig, make_vpc_ser

RATE = 16000


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("vpc_models")
    return {"asr": make_vpc_asr(root / "asr"), "ser": make_vpc_ser(root / "ser"),
            "asv": make_vpc_asv_orig(root / "asv_orig")}


def load_like_torchaudio(path):
    """(channels, samples) float32 and the rate, as the VPC's torchaudio.load (soundfile backend)
    returns them (torchaudio 2.9 itself needs torchcodec, which is not installed)."""
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    return torch.from_numpy(x.T.copy()), sr


def encoder_asr(model_dir):
    from speechbrain.inference.ASR import EncoderASR

    return EncoderASR.from_hparams(source=str(model_dir), savedir=str(model_dir),
                                   overrides={"pretrained_path": str(model_dir)})


def release_encode_batch(asr, wavs):
    """``EncoderASR.encode_batch`` under speechbrain 0.5.16: its LengthsCapableSequential passes
    lengths only to a ``forward`` argument named ``lengths``; the wav2vec2 lobe's is ``wav_lens``,
    and the other layers take none, so every layer is called on the batch alone."""
    enc = asr.mods.encoder
    return enc.log_softmax(enc.ctc_lin(enc.enc(enc.wav2vec2(wavs.float()))))


def release_transcribe_batch(asr, wavs, lens) -> tuple[list[str], None]:
    """``EncoderASR.transcribe_batch`` under speechbrain 0.5.16: greedy CTC on the relative lengths."""
    tokens = asr.decoding_function(release_encode_batch(asr, wavs), lens)
    return ["".join(asr.tokenizer.decode_ndim(t)) for t in tokens], None


def vpc_reference_transcripts(model_dir, data_dir) -> dict[str, str]:
    """What the VPC's evaluate_asr does: wav.scp sorted by id, audio_normalizer, sorted by length
    (longest first), DataLoader batches of 8 padded with zeros, EncoderASR.transcribe_batch
    (speechbrain 0.5.16)."""
    asr = encoder_asr(model_dir)
    items = []
    for utt, wav in sorted(read_table(data_dir / "wav.scp").items()):
        signal, sr = load_like_torchaudio(data_dir / wav)
        w = asr.audio_normalizer(signal.squeeze(), sr)
        items.append((utt, w, len(w.squeeze())))
    items.sort(key=lambda x: x[2], reverse=True)
    hyps = {}
    for i in range(0, len(items), 8):
        batch = items[i:i + 8]
        wavs = torch.nn.utils.rnn.pad_sequence([b[1] for b in batch], batch_first=True, padding_value=0.0)
        lens = torch.Tensor([b[2] for b in batch]) / wavs.shape[1]
        words, _ = release_transcribe_batch(asr, wavs, lens)
        hyps.update({b[0]: str(w) for b, w in zip(batch, words)})
    return hyps


def vpc_reference_wer(refs: dict[str, str], hyps: dict[str, str]) -> float:
    from speechbrain.utils.metric_stats import ErrorRateStats

    # the VPC's data prep: , ! ? . -> space, spaces squeezed, upper-case
    refs = {u: re.sub(r" +", " ", re.sub(r"[,!?.]", " ", t)).upper() for u, t in refs.items()}
    stats = ErrorRateStats()
    stats.append(ids=list(refs), predict=[hyps[u].strip().split(" ") for u in refs],
                 target=[refs[u].strip().split(" ") for u in refs])
    return stats.summarize("error_rate")


def test_asr_equals_encoder_asr_transcribe_batch(models, tmp_path):
    data_dir = make_dir(tmp_path / "libri_dev_trials_f", n_spk=2, n_utt=6, text=True, seconds=(0.4, 2.0))
    text = read_table(data_dir / "text")
    text[sorted(text)[0]] = "Hello, world!  It's done? yes."  # punctuation the VPC's data prep removes
    (data_dir / "text").write_text("".join(f"{u} {t}\n" for u, t in text.items()))
    data = load_data_dir(data_dir)
    asr = load_asr(AsrConfig(backend="speechbrain", model=str(models["asr"]), batch_size=8))
    res = wer_of_set("libri_dev_asr", data, data.table("text"), asr, "vpc", 8, tmp_path / "hyp")
    ours = read_table(tmp_path / "hyp" / "libri_dev_asr" / "text")
    ref = vpc_reference_transcripts(models["asr"], data_dir)
    assert ours == {u: h.strip() for u, h in ref.items()} and len(ours) == 12  # Kaldi text keeps no edge spaces
    assert len({h.count(" ") for h in ours.values()}) > 1  # real word sequences, not one token each
    assert res["wer"] == pytest.approx(vpc_reference_wer(data.table("text"), ref), abs=1e-9)
    assert res["n_utts"] == 12 and not res["partial"]
    assert asr_sets(["libri_dev_trials_f", "libri_dev_trials_m", "timit"]) == {
        "libri_dev_asr": ["libri_dev_trials_f", "libri_dev_trials_m"], "timit": ["timit"]}


def padded_batch(seconds: list[float]) -> tuple[list[Audio], torch.Tensor, torch.Tensor]:
    """Audio of the given lengths, and the batch the VPC's collate function makes of them."""
    audios = [Audio(speaker_wave(i, 0, s), RATE) for i, s in enumerate(seconds)]
    wavs = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(a.samples) for a in audios], batch_first=True)
    return audios, wavs, torch.tensor([len(a.samples) for a in audios]) / wavs.shape[1]


def test_asr_runs_wav2vec2_without_padding_mask_as_the_release(models):
    audios, wavs, lens = padded_batch([1.6, 0.7, 1.1])
    release = load_asr(AsrConfig(backend="speechbrain", model=str(models["asr"])))
    masked = load_asr(AsrConfig(backend="speechbrain", model=str(models["asr"]), wav2vec2_padding_mask=True))
    reference = encoder_asr(models["asr"])
    with torch.no_grad():
        out = release.model.encode_batch(wavs, lens)
        ref = release_encode_batch(reference, wavs)
        out_masked = masked.model.encode_batch(wavs, lens)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(out_masked[0], ref[0], rtol=0, atol=1e-5)  # the longest: no padding
    for i in (1, 2):  # padded utterances: the mask changes the wav2vec2 output
        assert (out_masked[i] - ref[i]).abs().max() > 1e-3
    assert release.transcribe_batch(audios) == release_transcribe_batch(reference, wavs, lens)[0]
    assert masked.transcribe_batch(audios) == reference.transcribe_batch(wavs, lens)[0]


def test_asr_is_strict_and_cache_follows_the_audio(models, tmp_path):
    data_dir = make_dir(tmp_path / "d", n_spk=1, n_utt=3, text=True)
    data = load_data_dir(data_dir)
    asr = load_asr(AsrConfig(backend="speechbrain", model=str(models["asr"])))
    refs = {**data.table("text"), "spk00-u09": "NOT THERE"}
    with pytest.raises(AudioError, match="spk00-u09"):
        wer_of_set("d", data, refs, asr, "vpc", 8, tmp_path / "hyp")
    partial = wer_of_set("d", data, refs, asr, "vpc", 8, tmp_path / "hyp", allow_partial=True)
    assert partial["partial"] and partial["n_utts"] == 3 and "spk00-u09" in partial["failed"][0]
    (data_dir / "wav" / "spk00-u01.wav").write_bytes(b"broken")
    with pytest.raises(AudioError, match="spk00-u01"):
        wer_of_set("d", data, data.table("text"), asr, "vpc", 8, tmp_path / "hyp")
    # replaced audio under the same set name is transcribed again, the rest comes from the cache
    sf.write(data_dir / "wav" / "spk00-u01.wav", speaker_wave(5, 1, 1.3), RATE)
    calls = []
    orig = asr.transcribe_batch
    asr.transcribe_batch = lambda audios: calls.append(len(audios)) or orig(audios)
    wer_of_set("d", data, data.table("text"), asr, "vpc", 1, tmp_path / "hyp")
    assert calls == [1]


def vpc_reference_uar(ser_root, data_dir) -> dict:
    """What the VPC's evaluate_ser does: per spk2fold row, foreign_class(custom_interface.py)
    .classify_batch on each utterance (torchaudio.load), sklearn macro recall, mean over rows."""
    from sklearn.metrics import accuracy_score, recall_score
    from speechbrain.inference.interfaces import foreign_class

    utt2emo, utt2spk = read_table(data_dir / "utt2emo"), read_table(data_dir / "utt2spk")
    wavs = read_table(data_dir / "wav.scp")
    rows, preds = [], {}
    for spk, fold in read_table(data_dir / "spk2fold").items():
        d = ser_root / f"fold_{fold}" / "CKPT+1"
        clf = foreign_class(source=str(d), savedir=str(d), classname="CustomEncoderWav2vec2Classifier",
                            pymodule_file="custom_interface.py", overrides={"pretrained_path": str(d)})
        clf.hparams.label_encoder.ignore_len()
        lab2ind = clf.hparams.label_encoder.lab2ind
        hyp, ref, per = [], [], {}
        for utt in sorted(u for u in wavs if utt2spk[u] == spk):
            wav, _ = load_like_torchaudio(data_dir / wavs[utt])
            _, _, _, text_lab = clf.classify_batch(wav)
            preds[utt] = text_lab[0]
            hyp.append(lab2ind[text_lab[0]])
            ref.append(lab2ind[utt2emo[utt]])
            per.setdefault(utt2emo[utt], ([], []))
            per[utt2emo[utt]][0].append(ref[-1])
            per[utt2emo[utt]][1].append(hyp[-1])
        rows.append({"uar": recall_score(ref, hyp, average="macro") * 100,
                     **{e: accuracy_score(r, h) * 100 for e, (r, h) in per.items()}})
    return {"preds": preds, "uar": np.mean([r["uar"] for r in rows]),
            "acc": {e: np.mean([r[e] for r in rows if e in r]) for e in EMOTIONS}}


def test_ser_equals_vpc_classifier_interface(models, tmp_path):
    orig = iemocap_dir(tmp_path / "IEMOCAP_dev")
    anon_dir = tmp_path / "IEMOCAP_dev_x"
    shutil.copytree(orig.path, anon_dir)
    for utt in orig.utts[:5]:  # the "anonymized" audio differs for some utterances
        sf.write(anon_dir / orig.wav_scp[utt], speaker_wave(9, int(utt[-2:]), 0.9, 3), RATE)
    res = evaluate_uar(orig, load_data_dir(anon_dir), models["ser"], tmp_path / "cache")
    for side, d in (("original", orig.path), ("anon", anon_dir)):
        ref = vpc_reference_uar(models["ser"], d)
        assert res[side]["uar"] == pytest.approx(ref["uar"], abs=1e-9)
        assert res[side]["per_class"] == pytest.approx(ref["acc"], abs=1e-9)
        assert len(res[side]["rows"]) == 4 and not res[side]["partial"]
    assert sorted(res["folds"]) == ["1", "2"]
    # cached posteriors are reused; an utterance the fold model cannot label stops with its id
    again = evaluate_uar(orig, None, models["ser"], tmp_path / "cache")
    assert again["original"]["uar"] == res["original"]["uar"] and "anon" not in again
    (orig.path / "utt2emo").write_text((orig.path / "utt2emo").read_text().replace("spk01-u01 hap", "spk01-u01 fru"))
    with pytest.raises(ValueError, match="spk01-u01=fru"):
        evaluate_uar(load_data_dir(orig.path), None, models["ser"], tmp_path / "cache")


def test_asv_orig_equals_encoder_classifier(models):
    from speechbrain.inference.speaker import EncoderClassifier

    ref = EncoderClassifier.from_hparams(source=str(models["asv"]), savedir=str(models["asv"]))
    ours = load_asv(models["asv"])
    wav = np.concatenate([np.zeros(800), speaker_wave(3, 1, 1.5), np.zeros(300)]).astype(np.float32)
    # the VPC's extract_vector: trim exact zeros, encode_batch on a batch of one
    expected = ref.encode_batch(wavs=torch.tensor(np.trim_zeros(wav)).unsqueeze(0)).squeeze().numpy()
    np.testing.assert_allclose(ours.embed(wav), expected, rtol=1e-4, atol=1e-5)

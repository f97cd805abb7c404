"""VPC 2026 Track 1's asv_ssl: voxanon's embeddings against an exact re-creation of the 2026
repository's scorer (``ecapa_model_wavlm_24layer.ECAPA_TDNN_test`` + ``speechbrain_vectors``
``extract_vector``; its WavLM is the original code, for which torchaudio's independent port stands
in) on the same random weights in the release layout; the two embedding normalizations."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from speechbrain.lobes.features import Fbank
from speechbrain.lobes.models.ECAPA_TDNN import (AttentiveStatisticsPooling, BatchNorm1d, Conv1d, SERes2NetBlock,
                                                 TDNNBlock)
from speechbrain.processing.features import InputNormalization
from torch import nn

from corpora_fakes import speechlike
from voxanon.eval.asv_model import load_asv
from voxanon.eval.asv_ssl import resample_frames
from voxanon.eval.scoring import cosine_scores, normalize_embedding, preprocess
from voxanon.features.wavlm import _parse_conv_layers, load_wavlm, save_wavlm
from voxanon.testing.vpc_models import make_vpc_asv_ssl


# ---- the 2026 repository's code, re-created line by line (its behaviour, not voxanon's) ----

def ref_resample_tensor(tensor, target_length):
    B, D, T = tensor.shape
    if T == target_length:
        return tensor
    if T > target_length:
        base_bin, extra = T // target_length, T % target_length
        outputs, idx = [], 0
        for _ in range(target_length - extra):
            outputs.append(tensor[:, :, idx:idx + base_bin].mean(dim=2, keepdim=True))
            idx += base_bin
        for _ in range(extra):
            outputs.append(tensor[:, :, idx:idx + base_bin + 1].mean(dim=2, keepdim=True))
            idx += base_bin + 1
        return torch.cat(outputs, dim=2)
    return torch.cat([tensor.repeat(1, 1, target_length // T), tensor[:, :, :target_length % T]], dim=2)


class RefWeightedLayerSum(nn.Module):
    def __init__(self, num_layers=24):
        super().__init__()
        self.num_layers = num_layers
        self.layer_weights = nn.Parameter(torch.ones(num_layers))

    def forward(self, layer_results):
        w = nn.functional.softmax(self.layer_weights, dim=0)
        return (layer_results * w.view((self.num_layers,) + (1,) * (layer_results.dim() - 1))).sum(dim=0)


class RefEcapaTdnnTest(nn.Module):
    def __init__(self, input_size=80, lin_neurons=192, channels=(1024, 1024, 1024, 1024, 3072),
                 kernel_sizes=(5, 3, 3, 3, 1), dilations=(1, 2, 3, 4, 1), attention_channels=128, dropout=0.3):
        super().__init__()
        self.blocks = nn.ModuleList([TDNNBlock(input_size, channels[0], kernel_sizes[0], dilations[0], nn.ReLU, 1,
                                               dropout)])
        for i in range(1, len(channels) - 1):
            self.blocks.append(SERes2NetBlock(channels[i - 1], channels[i], res2net_scale=8, se_channels=128,
                                              kernel_size=kernel_sizes[i], dilation=dilations[i], activation=nn.ReLU,
                                              groups=1, dropout=dropout))
        self.blocks_features = nn.ModuleList(
            SERes2NetBlock(channels[i], channels[i], res2net_scale=8, se_channels=128, kernel_size=kernel_sizes[i],
                           dilation=dilations[i], activation=nn.ReLU, groups=1, dropout=dropout)
            for i in range(len(channels) - 1))
        self.mfa = TDNNBlock(channels[-2] * (len(channels) - 2), channels[-1], kernel_sizes[-1], dilations[-1],
                             nn.ReLU, groups=1, dropout=dropout)
        self.weighted_sum = RefWeightedLayerSum()
        self.asp = AttentiveStatisticsPooling(channels[-1], attention_channels=attention_channels, global_context=True)
        self.asp_bn = BatchNorm1d(input_size=channels[-1] * 2)
        self.fc = Conv1d(in_channels=channels[-1] * 2, out_channels=lin_neurons, kernel_size=1)

    def forward(self, x, features=None):
        features = self.weighted_sum(features.permute(1, 2, 0, 3))
        x = x.transpose(1, 2)
        features = features.transpose(0, 1).transpose(1, 2)
        xl, xl_features = [], []
        for layer in self.blocks:
            x = layer(x)
            xl.append(x)
        for layer in self.blocks_features:
            features = layer(features)
            xl_features.append(features)
        x_cat = torch.cat(xl[1:], dim=1)
        x_feature_cat = ref_resample_tensor(torch.cat(xl_features[1:], dim=1), len(x_cat[0][0]))
        x_mfa = self.mfa(torch.mul(x_feature_cat, x_cat))
        return self.fc(self.asp_bn(self.asp(x_mfa))).transpose(1, 2)


def ref_wavlm_layers(wavlm_pt, tmp_path, wav_path):
    """``WavLMFeatureExtractor.extract_features([wav_path])``: (1, 24, T, C), layer_norm on the input."""
    from torchaudio.models import wavlm_model

    ours = load_wavlm(wavlm_pt)
    cfg = ours.cfg
    ta = wavlm_model("layer_norm", _parse_conv_layers(cfg.conv_feature_layers), False, cfg.encoder_embed_dim, 0.0,
                     cfg.conv_pos, cfg.conv_pos_groups, cfg.encoder_layers, cfg.encoder_attention_heads,
                     cfg.num_buckets, cfg.max_distance, 0.0, cfg.encoder_ffn_embed_dim, 0.0, 0.0, True, 0.0, None)
    save_wavlm(ours, tmp_path / "ta.pt", "torchaudio")
    ta.load_state_dict(torch.load(tmp_path / "ta.pt", weights_only=True))
    audio = torch.from_numpy(sf.read(wav_path)[0]).float()
    audio = F.layer_norm(audio, audio.shape)  # the checkpoint's cfg says normalize
    with torch.no_grad():
        layers = ta.eval().extract_features(audio.unsqueeze(0), num_layers=cfg.encoder_layers)[0]
    return torch.stack([x.transpose(0, 1) for x in layers]).permute(2, 0, 1, 3)  # (T, B, C) per layer, as there


def ref_extract_vector(model_dir, tmp_path, wav_path, dim):
    ckpt = torch.load(model_dir / "embedding_model.ckpt", map_location="cpu")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in ckpt.get("state_dict", ckpt).items()}
    c = state["blocks.0.conv.conv.weight"].shape[0]
    extractor = RefEcapaTdnnTest(channels=(c, c, c, c, 3 * c), attention_channels=state["asp.tdnn.conv.conv.weight"].shape[0])
    extractor.load_state_dict(state, strict=True)
    extractor.eval()
    signal = sf.read(wav_path, dtype="float32")[0]
    audio = torch.tensor(np.trim_zeros(preprocess(signal, -30.0, 1.0)))  # normalize_wave, then trim_zeros
    wavs = audio.unsqueeze(0)
    fbank = InputNormalization(norm_type="sentence", std_norm=False).eval()(Fbank(n_mels=80).eval()(wavs), torch.ones(1))
    with torch.no_grad():
        vec = extractor(fbank, ref_wavlm_layers(model_dir / "WavLM-Large.pt", tmp_path, wav_path))
    return F.normalize(vec, dim=dim).squeeze().numpy()


# ---- the tests ----

@pytest.fixture(scope="module")
def asv_ssl(tmp_path_factory):
    return make_vpc_asv_ssl(tmp_path_factory.mktemp("asv_ssl"))


def utterance(tmp_path, seed):
    x = np.concatenate([np.zeros(800, np.float32), speechlike(1.2, seed), np.zeros(500, np.float32)])
    sf.write(tmp_path / f"u{seed}.wav", x, 16000, subtype="FLOAT")
    return tmp_path / f"u{seed}.wav", x


@pytest.mark.parametrize("norm, dim", [("l2", -1), ("sign", 1)])
def test_embeddings_equal_the_2026_scorer(asv_ssl, tmp_path, norm, dim):
    """Zero-padded file: the fbank branch sees the trimmed, normalized signal, WavLM the whole file."""
    model = load_asv(asv_ssl)
    for seed in (1, 2):
        path, x = utterance(tmp_path, seed)
        ours = normalize_embedding(model.embed(preprocess(x, -30.0, 1.0), raw=x), norm)
        np.testing.assert_allclose(ours, ref_extract_vector(asv_ssl, tmp_path, path, dim), rtol=1e-4, atol=1e-5)


def test_sign_bug_changes_the_scores(asv_ssl, tmp_path):
    """dim=1 on (1, 1, 192) leaves every value's sign only; its cosine scores differ from L2's."""
    model = load_asv(asv_ssl)
    raw = {s: utterance(tmp_path, s)[1] for s in (1, 2, 3)}
    emb = {s: model.embed(preprocess(x, -30.0, 1.0), raw=x) for s, x in raw.items()}
    signs = normalize_embedding(emb[1], "sign")
    assert set(np.unique(np.abs(signs)).round(6)) == {1.0}
    from voxanon.data.kaldi import Trial

    trials = (Trial("a", "2", True), Trial("a", "3", False))
    spk = {"a": emb[1]}
    scores = {n: cosine_scores(trials, {"a": normalize_embedding(spk["a"], n)},
                               {u: normalize_embedding(emb[int(u)], n) for u in ("2", "3")}) for n in ("l2", "sign")}
    assert not np.allclose(scores["l2"], scores["sign"])


@pytest.mark.parametrize("t", [7, 9, 10, 23, 40])
def test_resample_frames_equals_the_loop(t):
    x = torch.randn(2, 3, t)
    torch.testing.assert_close(resample_frames(x, 10), ref_resample_tensor(x, 10))

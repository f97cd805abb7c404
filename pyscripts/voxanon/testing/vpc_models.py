"""Random-weight stand-ins for the VPC 2024 evaluation models, in the release layouts.

The release zips (``asr.zip``, ``ser.zip``, ``asv_orig.zip``) cannot be fetched here, so tests build
tiny models of the same kinds, loaded by the same speechbrain interfaces:

``make_vpc_asr(dir: Path, size="tiny") -> Path``
    An ``EncoderASR`` dir like speechbrain's asr-wav2vec2-librispeech (what the VPC's ``exp/asr``
    holds): ``hyperparams.yaml`` (HF wav2vec2 lobe -> VanillaNN -> CTC linear -> log-softmax,
    greedy CTC decoding, ``CTCTextEncoder`` of A-Z, apostrophe and space), ``wav2vec2.ckpt``,
    ``asr.ckpt``, ``tokenizer.ckpt`` and ``wav2vec2_hf/`` (a local HF-format wav2vec2 config +
    random weights, which the hyperparams name instead of a hub id).
``make_vpc_ser(dir: Path, size="tiny", folds=5) -> Path``
    ``dir/fold_<k>/CKPT+1/`` for k = 1..5, each like speechbrain's emotion-recognition-wav2vec2-
    IEMOCAP: ``hyperparams.yaml`` (wav2vec2 lobe, mean pooling, linear to 4 classes, softmax,
    ``CategoricalEncoder``), ``custom_interface.py`` (the ``CustomEncoderWav2vec2Classifier`` the
    VPC loads with ``foreign_class``), ``wav2vec2.ckpt``, ``model.ckpt``, ``label_encoder.txt``
    (ang hap neu sad), ``wav2vec2_hf/``. Each fold has its own random weights.
``make_vpc_asv_orig(dir: Path) -> Path``
    ``dir/hyperparams.yaml`` (the VPC's ECAPA inference config, small channels) and
    ``dir/embedding_model.ckpt``: loadable by speechbrain's ``EncoderClassifier`` and by voxanon.

``make_vpc_asv_ssl(dir: Path, channels=32) -> Path``
    The VPC 2026 ``exp/asv_ssl`` layout: ``embedding_model.ckpt`` (the fused ECAPA-TDNN state dict
    under ``state_dict`` with DataParallel's ``module.`` prefixes) and ``WavLM-Large.pt`` (the
    original ``cfg`` + ``model`` layout, 24 layers, ``normalize`` on) of width ``channels``.

Each returns ``dir``. Paths inside the hyperparams are relative to ``pretrained_path``, which the
loaders (voxanon's and the tests' speechbrain calls) set to the model dir, so the dirs can be
copied or moved. Nothing is downloaded.
"""
from __future__ import annotations

from pathlib import Path

import torch

EMOTIONS = ("ang", "hap", "neu", "sad")
CHARS = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ' ")
# wav2vec2 sizes: "tiny" for tests; the releases' sizes for throughput benches (random weights):
# ASR_eval is wav2vec2-large-960h-lv60-self, the SER folds are wav2vec2-base.
WAV2VEC2_SIZES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 conv_dim=(32, 32, 32), conv_kernel=(10, 4, 4), conv_stride=(5, 4, 4),
                 num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}

_WAV2VEC2 = """wav2vec2: !new:speechbrain.lobes.models.huggingface_transformers.wav2vec2.Wav2Vec2
    source: !ref <pretrained_path>/wav2vec2_hf
    output_norm: True
    freeze: True
    save_path: !ref <pretrained_path>/wav2vec2_checkpoint
"""

ASR_HPARAMS = f"""# VPC 2024 ASR_eval stand-in (random weights): wav2vec2 + CTC, speechbrain EncoderASR
pretrained_path: speechbrain/asr-wav2vec2-librispeech
sample_rate: 16000
dnn_neurons: {{dnn}}
output_neurons: {len(CHARS) + 1}
blank_index: 0

{_WAV2VEC2}
enc: !new:speechbrain.lobes.models.VanillaNN.VanillaNN
    input_shape: [null, null, {{hidden}}]
    activation: !name:torch.nn.LeakyReLU
    dnn_blocks: 1
    dnn_neurons: !ref <dnn_neurons>

ctc_lin: !new:speechbrain.nnet.linear.Linear
    input_size: !ref <dnn_neurons>
    n_neurons: !ref <output_neurons>

log_softmax: !new:speechbrain.nnet.activations.Softmax
    apply_log: True

asr_model: !new:torch.nn.ModuleList
    - [!ref <enc>, !ref <ctc_lin>]

tokenizer: !new:speechbrain.dataio.encoder.CTCTextEncoder

encoder: !new:speechbrain.nnet.containers.LengthsCapableSequential
    wav2vec2: !ref <wav2vec2>
    enc: !ref <enc>
    ctc_lin: !ref <ctc_lin>
    log_softmax: !ref <log_softmax>

decoding_function: !name:speechbrain.decoders.ctc_greedy_decode
    blank_id: !ref <blank_index>

modules:
    encoder: !ref <encoder>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        wav2vec2: !ref <wav2vec2>
        asr: !ref <asr_model>
        tokenizer: !ref <tokenizer>
    paths:
        wav2vec2: !ref <pretrained_path>/wav2vec2.ckpt
        asr: !ref <pretrained_path>/asr.ckpt
        tokenizer: !ref <pretrained_path>/tokenizer.ckpt
"""

SER_HPARAMS = f"""# VPC 2024 SER stand-in (random weights): wav2vec2 + mean pooling + linear, 4 emotions
pretrained_path: speechbrain/emotion-recognition-wav2vec2-IEMOCAP
encoder_dim: {{hidden}}
out_n_neurons: {len(EMOTIONS)}

{_WAV2VEC2}
avg_pool: !new:speechbrain.nnet.pooling.StatisticsPooling
    return_std: False

output_mlp: !new:speechbrain.nnet.linear.Linear
    input_size: !ref <encoder_dim>
    n_neurons: !ref <out_n_neurons>
    bias: False

model: !new:torch.nn.ModuleList
    - [!ref <output_mlp>]

modules:
    wav2vec2: !ref <wav2vec2>
    output_mlp: !ref <output_mlp>
    avg_pool: !ref <avg_pool>

softmax: !new:speechbrain.nnet.activations.Softmax

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        wav2vec2: !ref <wav2vec2>
        model: !ref <model>
        label_encoder: !ref <label_encoder>
    paths:
        wav2vec2: !ref <pretrained_path>/wav2vec2.ckpt
        model: !ref <pretrained_path>/model.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""

# The classifier interface shipped next to each VPC fold model (speechbrain's IEMOCAP recipe).
CUSTOM_INTERFACE = '''import torch
from speechbrain.inference.interfaces import Pretrained


class CustomEncoderWav2vec2Classifier(Pretrained):
    def encode_batch(self, wavs, wav_lens=None, normalize=False):
        if len(wavs.shape) == 1:
            wavs = wavs.unsqueeze(0)
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0], device=self.device)
        wavs, wav_lens = wavs.to(self.device), wav_lens.to(self.device)
        outputs = self.mods.wav2vec2(wavs.float())
        outputs = self.mods.avg_pool(outputs, wav_lens)
        return outputs.view(outputs.shape[0], -1)

    def classify_batch(self, wavs, wav_lens=None):
        outputs = self.mods.output_mlp(self.encode_batch(wavs, wav_lens))
        out_prob = self.hparams.softmax(outputs)
        score, index = torch.max(out_prob, dim=-1)
        text_lab = self.hparams.label_encoder.decode_torch(index)
        return out_prob, score, index, text_lab
'''

ASV_HPARAMS = """# VPC 2024 ASV_orig stand-in (random weights): the VPC's ECAPA inference config, {c} channels
n_mels: 80

compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [{c}, {c}, {c}, {c}, {c3}]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: {att}
    lin_neurons: {emb}

classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: {emb}
    out_neurons: 8

modules:
    compute_features: !ref <compute_features>
    embedding_model: !ref <embedding_model>
    mean_var_norm: !ref <mean_var_norm>
    classifier: !ref <classifier>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
"""


def wav2vec2_config(size: str):
    """The HF ``Wav2Vec2Config`` of the stand-ins (layer-norm extractor, stable layer norm)."""
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(**WAV2VEC2_SIZES[size], feat_extract_norm="layer", do_stable_layer_norm=True,
                          vocab_size=len(CHARS) + 1)


def _hf_wav2vec2(out: Path, seed: int, size: str) -> None:
    """An HF-format wav2vec2 (config, feature-extractor config, random weights) in ``out``."""
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(seed)
    Wav2Vec2Model(wav2vec2_config(size)).save_pretrained(out)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True).save_pretrained(out)


def _build(model_dir: Path, hparams_text: str) -> dict:
    """Write the hyperparams and instantiate them (random modules, nothing loaded yet)."""
    from hyperpyyaml import load_hyperpyyaml

    (model_dir / "hyperparams.yaml").write_text(hparams_text)
    with open(model_dir / "hyperparams.yaml") as f:
        return load_hyperpyyaml(f, {"pretrained_path": str(model_dir)}, overrides_must_match=False)


def make_vpc_asr(dir: Path, size: str = "tiny") -> Path:
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    _hf_wav2vec2(dir / "wav2vec2_hf", seed=11, size=size)
    torch.manual_seed(12)
    hidden = WAV2VEC2_SIZES[size]["hidden_size"]
    hp = _build(dir, ASR_HPARAMS.format(hidden=hidden, dnn=32 if size == "tiny" else 1024))
    tok = hp["tokenizer"]
    tok.insert_blank(index=0)
    tok.update_from_iterable(CHARS, sequence_input=False)
    tok.save(dir / "tokenizer.ckpt")
    with torch.no_grad():  # favour the space a little, so that random outputs have several words
        hp["ctc_lin"].w.bias[tok.lab2ind[" "]] += 1.0
    torch.save(hp["wav2vec2"].state_dict(), dir / "wav2vec2.ckpt")
    torch.save(hp["asr_model"].state_dict(), dir / "asr.ckpt")
    return dir


def make_vpc_ser(dir: Path, size: str = "tiny", folds: int = 5) -> Path:
    dir = Path(dir)
    for k in range(1, folds + 1):
        fold = dir / f"fold_{k}" / "CKPT+1"
        fold.mkdir(parents=True, exist_ok=True)
        _hf_wav2vec2(fold / "wav2vec2_hf", seed=20 + k, size=size)
        torch.manual_seed(30 + k)
        hp = _build(fold, SER_HPARAMS.format(hidden=WAV2VEC2_SIZES[size]["hidden_size"]))
        (fold / "custom_interface.py").write_text(CUSTOM_INTERFACE)
        enc = hp["label_encoder"]
        enc.update_from_iterable(EMOTIONS, sequence_input=False)
        enc.save(fold / "label_encoder.txt")
        torch.save(hp["wav2vec2"].state_dict(), fold / "wav2vec2.ckpt")
        torch.save(hp["model"].state_dict(), fold / "model.ckpt")
    return dir


def make_vpc_asv_orig(dir: Path, channels: int = 32, attention: int = 16, emb: int = 24, seed: int = 40) -> Path:
    """The release layout (hyperparams.yaml, embedding_model.ckpt); VPC 2024's sizes: 512, 128, 192."""
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    hp = _build(dir, ASV_HPARAMS.format(c=channels, c3=3 * channels, att=attention, emb=emb))
    torch.save(hp["embedding_model"].state_dict(), dir / "embedding_model.ckpt")
    return dir


def make_vpc_asv_ssl(dir: Path, channels: int = 32) -> Path:
    from voxanon.eval.asv_ssl import WAVLM_FILE, SslEcapa, SslShape
    from voxanon.features.wavlm import WavLM, WavLMConfig, save_wavlm

    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(41)
    cfg = WavLMConfig(conv_feature_layers="[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2", encoder_layers=24,
                      encoder_embed_dim=channels, encoder_ffn_embed_dim=2 * channels, encoder_attention_heads=4,
                      conv_pos=16, conv_pos_groups=4, num_buckets=32, max_distance=800)
    save_wavlm(WavLM(cfg).eval(), dir / WAVLM_FILE)
    ecapa = SslEcapa(SslShape(channels=channels, attention_channels=8, layers=24))
    with torch.no_grad():
        ecapa.weighted_sum.layer_weights.normal_()  # a non-uniform layer mix
    state = {f"module.{k}": v for k, v in ecapa.state_dict().items()}
    torch.save({"state_dict": state}, dir / "embedding_model.ckpt")
    return dir

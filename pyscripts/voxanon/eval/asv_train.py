"""Train an ECAPA-TDNN speaker-verification attacker on a Kaldi data dir (VPC 2024 ``eval_post``).

Epoch plan as the VPC's ``libri_prepare`` + ``asv_dataset``: utterances are split 90/10 (seeded)
into train and valid; each utterance gives one *row* per whole ``chunk_s`` chunk (floor(dur /
chunk_s) rows; utterances shorter than one chunk give none, and a chunk whose mean |x| is under
``min_amplitude`` is dropped), and every epoch each row is a ``chunk_s`` crop at a random place in
its utterance, rows in a permutation drawn from (seed, epoch), so an interrupted epoch resumes at
the same batch. Loss: AAM-softmax (speechbrain ``AdditiveAngularMargin`` on the cosine
``Classifier``); Adam with the triangular cyclic learning rate, which speechbrain steps before
each batch's update (batch n trains with lr(n)). After each epoch the valid rows are classified
(classification error, as the VPC's checkpointer ``min_keys=["ErrorRate"]``) and the best epoch's
model is the one kept. After each epoch the validation EER is measured too
(``voxanon.eval.convergence``: held-out utterances of the training speakers), to show convergence.

Fine-tuning (``init_model``: a model dir or registry name, e.g. ASV_orig or the VPC 2026
``asv_ssl``): the ECAPA-TDNN starts from that model's weights, in its architecture, with a new
classifier for the training speakers. An asv_ssl model keeps its WavLM frozen (eval mode, no
gradient); its WavLM branch sees a ``wavlm_crop_s`` crop of the whole utterance at a random place
(zero-padded when shorter), its fbank branch the row's chunk. ``augment`` (VPC 2026): the
chunks are augmented before the fbank branch (``voxanon.eval.asv_augment``).

Output dir::

    checkpoint.pt          training state (model, classifier, optimizer, epoch, batch, best); resumable
    best.pt                ECAPA-TDNN and classifier state dicts of the best-valid epoch so far
    embedding_model.ckpt   ECAPA-TDNN state dict of the best epoch, written when training ends
    classifier.ckpt        speaker classifier state dict (same epoch)
    rows.json              training rows and samples per utterance (the epoch plan's input)
    asv.json               settings, speakers, per-epoch loss / valid error / valid EER, best epoch,
                           convergence
    WavLM-Large.pt         asv_ssl fine-tuning: the frozen WavLM, linked from the initial model
    feats/                 fbank ark/scp when features: precomputed

Several GPUs: start with ``torchrun --nproc_per_node N -m voxanon.bin.train_asv ...``. As the VPC's
DataParallel, every global batch of ``batch_size`` rows is split over the N processes (each loss
weighted by its share, DistributedDataParallel averages the gradients), so the optimizer takes
the same steps with the same learning rates as on one GPU; rank 0 validates and writes.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from speechbrain.lobes.models.ECAPA_TDNN import Classifier
from speechbrain.nnet.losses import AdditiveAngularMargin, LogSoftmaxWrapper

from voxanon.audio import SAMPLE_RATE, AudioError
from voxanon.config import fingerprint
from voxanon.data.features import load_scp, shard_paths, write_shard
from voxanon.data.kaldi import DataDir
from voxanon.device import resolve_device
from voxanon.distributed import setup_dist
from voxanon.eval.asv_model import (CLASSIFIER_FILE, EMBEDDING_FILE, INFO_FILE, AsvModel, EcapaShape,
                                    find_embedding_ckpt, load_asv, model_tag, normalize_feats)
from voxanon.eval.asv_augment import augment_batch, vpc2026_augmenter
from voxanon.eval.asv_ssl import WAVLM_FILE, AsvSslModel
from voxanon.eval.config import AsvConfig
from voxanon.eval.convergence import convergence, validation_eer, warning
from voxanon.fileio import atomic_torch_save, atomic_write_text
from voxanon.progress import Progress
from voxanon.registry import resolve_model

log = logging.getLogger("voxanon.asv_train")
FRAMES_PER_SECOND = 100  # fbank hop: 10 ms
# settings that do not change the weights (epochs neither: raising it continues a finished run)
NOT_IN_KEY = ("device", "num_workers", "checkpoint_minutes", "epochs", "valid_eer_utts", "convergence_margin",
              "convergence_epochs", "finetuned_epochs", "part_models")


def split_utts(utts: list[str], valid_share: float, seed: int) -> tuple[list[str], list[str]]:
    """Seeded utterance-level split into (train, valid). The training share is rounded down as
    the VPC's ``libri_prepare`` does (``int(0.01 * 90 * n)`` utterances for a 10 % valid share)."""
    rng = np.random.default_rng(seed)
    order = [utts[i] for i in rng.permutation(len(utts))]
    n_train = int((1.0 - valid_share) * len(utts))
    return sorted(order[:n_train]), sorted(order[n_train:])


def fit_length(x: np.ndarray, length: int, offset: int) -> np.ndarray:
    """A window of ``length`` along axis 0 starting at ``offset``; short input is tiled first
    (precomputed fbank of an utterance of exactly one chunk has a few frames less than a chunk)."""
    if len(x) < length:
        return np.concatenate([x] * math.ceil(length / max(len(x), 1)))[:length]
    return x[offset:offset + length]


def chunk_rows(samples: np.ndarray, chunk: int, min_amplitude: float) -> int:
    """Training rows of one utterance: its whole ``chunk``-sample chunks loud enough on average."""
    n = len(samples) // chunk
    return sum(float(np.mean(np.abs(samples[i * chunk:(i + 1) * chunk]))) >= min_amplitude for i in range(n))


def count_rows(data: DataDir, utts: list[str], chunk: int, min_amplitude: float,
               allow_pipes: bool) -> dict[str, tuple[int, int]]:
    """(rows, samples) per utterance (rows as VPC ``prepare_csv`` without ``random_segment``);
    unreadable audio names its utt."""
    rows, errors = {}, []
    prog = Progress(len(utts), "training rows")
    for utt in utts:
        try:
            samples = data.audio(utt, allow_pipes).samples
            rows[utt] = (chunk_rows(samples, chunk, min_amplitude), len(samples))
        except AudioError as err:
            errors.append(f"{utt}: {err}")
        prog.step()
    if errors:
        raise AudioError(f"{len(errors)} training utterance(s) unreadable: " + "; ".join(errors[:5]))
    return rows


def crop_start(n: int, length: int, rel: float) -> int:
    """Start of a ``length`` crop at relative place ``rel`` in [0, 1) of ``n`` items: every start
    equally likely, both ends included; 0 when ``n`` is shorter."""
    return int(rel * (max(n - length, 0) + 1))


class ChunkSet(torch.utils.data.Dataset):
    """Item i of an epoch plan -> (chunk, WavLM crop, speaker index). Chunks are waveforms (online)
    or fbank frames (precomputed); the plan fixes which utterance and where the crop starts. The
    WavLM crop (``raw_len`` samples, asv_ssl fine-tuning; else empty) starts at ``raw_starts[i]``.
    Online, with the utterances' lengths known (``samples``), only the crops are decoded from the
    file (the same samples as cropping the whole utterance)."""

    def __init__(self, data: DataDir, utts: list[str], spk_index: dict[str, int], chunk: int,
                 feats_scp, allow_pipes: bool, raw_len: int = 0, samples: dict[str, int] | None = None):
        self.data, self.utts, self.spk_index, self.chunk = data, utts, spk_index, chunk
        self.feats_scp, self.allow_pipes, self.raw_len = feats_scp, allow_pipes, raw_len
        self.samples = samples if feats_scp is None else None
        self.plan: list[tuple[int, float]] = []  # (utt index, relative start in [0, 1))
        self.raw_starts: list[float] = []  # relative start of each item's WavLM crop

    def __len__(self) -> int:
        return len(self.plan)

    def load(self, utt: str) -> np.ndarray:
        if self.feats_scp is not None:
            return self.feats_scp[utt]
        return self.data.audio(utt, self.allow_pipes).samples

    def __getitem__(self, i: int):
        ui, rel = self.plan[i]
        utt = self.utts[ui]
        whole = None if self.samples else self.load(utt)
        n = self.samples[utt] if whole is None else len(whole)

        def crop(length: int, at: float) -> np.ndarray:
            start = crop_start(n, length, at)
            if whole is None:
                return self.data.audio_window(utt, start, length, self.allow_pipes)
            return whole[start:start + length]

        chunk = fit_length(crop(self.chunk, rel), self.chunk, 0)  # a short utterance is tiled
        raw = np.zeros(0)
        if self.raw_len:
            raw = crop(self.raw_len, self.raw_starts[i])
            raw = np.pad(raw, (0, self.raw_len - len(raw)))
        return torch.from_numpy(np.array(chunk, dtype=np.float32)), \
            torch.from_numpy(np.array(raw, dtype=np.float32)), self.spk_index[self.data.utt2spk[utt]]


def epoch_plan(row_utts: list[int], seed: int, epoch: int, stream: int = 0) -> list[tuple[int, float]]:
    """The epoch's rows in a seeded random order, each with a random crop position."""
    rng = np.random.default_rng([seed, epoch, stream])
    order = rng.permutation(len(row_utts))
    return [(row_utts[i], float(r)) for i, r in zip(order, rng.random(len(row_utts)))]


def crop_starts(n: int, seed: int, epoch: int, stream: int = 0) -> list[float]:
    """The epoch's relative WavLM crop places (a stream of their own: the epoch plan is unchanged)."""
    return np.random.default_rng([seed, epoch, stream, 1]).random(n).tolist()


def global_batches(n_items: int, batch_size: int, start: int = 0, drop_last: bool = False) -> list[list[int]]:
    """The epoch's batches from batch ``start`` on; ``drop_last`` leaves out a last, smaller one."""
    end = n_items - n_items % batch_size if drop_last else n_items
    return [list(range(i, min(i + batch_size, n_items))) for i in range(start * batch_size, end, batch_size)]


def make_optimizer(cfg: AsvConfig, params) -> torch.optim.Optimizer:
    """Adam (VPC 2024) or AdamW (VPC 2026), at ``base_lr`` until the cyclic schedule sets it."""
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.base_lr, weight_decay=cfg.weight_decay)


def rank_slice(batch: list[int], rank: int, world: int) -> list[int]:
    """This process's contiguous share of a global batch (DataParallel's scatter)."""
    return [int(i) for i in np.array_split(np.asarray(batch), world)[rank]]


def cyclic_lr(iteration: int, base_lr: float, max_lr: float, step_size: int) -> float:
    """Triangular cyclic learning rate after ``iteration`` batches (speechbrain CyclicLRScheduler)."""
    cycle = math.floor(1 + iteration / (2 * step_size))
    x = abs(iteration / step_size - 2 * cycle + 1)
    return base_lr + (max_lr - base_lr) * max(0.0, 1 - x)


def precompute_fbank(data: DataDir, utts: list[str], out_dir: Path, n_mels: int, allow_pipes: bool) -> Path:
    """Fbank (frames, n_mels) of every utterance into ``out_dir/fbank.1.ark|scp`` (done once; an
    existing complete scp is reused). Returns the scp path."""
    from voxanon.eval.asv_model import Frontend

    scp = shard_paths(out_dir, "fbank", 1)[1]
    if scp.is_file() and set(utts) <= set(load_scp(scp).keys()):
        return scp
    fbank = Frontend(n_mels).fbank
    errors: list[str] = []
    prog = Progress(len(utts), "fbank")

    def items():
        for utt in utts:
            try:
                wav = data.audio(utt, allow_pipes).samples
            except AudioError as err:
                errors.append(f"{utt}: {err}")
                continue
            finally:
                prog.step()
            with torch.no_grad():
                yield utt, fbank(torch.from_numpy(wav).unsqueeze(0))[0].numpy()

    write_shard(out_dir, "fbank", 1, items())
    if errors:
        scp.unlink()
        raise AudioError(f"{len(errors)} training utterance(s) unreadable: " + "; ".join(errors[:5]))
    return scp


class Trainer:
    def __init__(self, cfg: AsvConfig, data: DataDir, out_dir: Path, allow_pipes: bool = False):
        self.cfg, self.data, self.out = cfg, data, Path(out_dir)
        self.dist, device = setup_dist(resolve_device(cfg.device))
        self.rank, self.world, self.device = self.dist.rank, self.dist.world, torch.device(device)
        utts = data.utts
        if cfg.max_utts and len(utts) > cfg.max_utts:
            rng = np.random.default_rng(cfg.seed)
            utts = sorted(rng.choice(utts, cfg.max_utts, replace=False).tolist())
        self.train_utts, self.valid_utts = split_utts(utts, cfg.valid_share, cfg.seed)
        self.speakers = sorted({data.utt2spk[u] for u in utts})
        spk_index = {s: i for i, s in enumerate(self.speakers)}
        self.init_dir = resolve_model(cfg.init_model) if cfg.init_model else None
        # what the weights depend on (not where or how fast they are computed)
        # (epochs is left out: raising it continues a finished run)
        recipe = {k: v for k, v in asdict(cfg).items() if k not in NOT_IN_KEY}
        key = {"cfg": recipe, "train": self.train_utts, "spk": self.speakers}
        if self.init_dir:  # the initial weights too (training from scratch keeps its key)
            key["init"] = model_tag(self.init_dir)
        self.key = fingerprint(key)
        self.out.mkdir(parents=True, exist_ok=True)
        rows, samples = self._rows(utts, allow_pipes)
        feats_scp = None
        torch.manual_seed(cfg.seed)
        shape = EcapaShape(cfg.n_mels, cfg.channels, cfg.attention_channels, cfg.emb_dim)
        self.model = (load_asv(self.init_dir) if self.init_dir else AsvModel(shape)).to(self.device)
        self.ssl = isinstance(self.model, AsvSslModel)
        if self.ssl and cfg.features == "precomputed":
            raise ValueError("asv.features: precomputed cannot fine-tune an asv_ssl model (its WavLM needs the audio)")
        if cfg.augment and cfg.features == "precomputed":
            raise ValueError("asv.augment needs asv.features: online (it augments the waveform before the fbank)")
        self.augmenter = vpc2026_augmenter() if cfg.augment else None
        if cfg.features == "precomputed":
            if self.rank == 0:
                precompute_fbank(data, utts, self.out / "feats", cfg.n_mels, allow_pipes)
            self.dist.barrier()
            feats_scp = load_scp(shard_paths(self.out / "feats", "fbank", 1)[1])
            chunk = int(cfg.chunk_s * FRAMES_PER_SECOND)
        else:
            chunk = int(cfg.chunk_s * SAMPLE_RATE)
        raw_len = int(cfg.wavlm_crop_s * SAMPLE_RATE) if self.ssl else 0
        self.train_set = ChunkSet(data, self.train_utts, spk_index, chunk, feats_scp, allow_pipes, raw_len, samples)
        self.valid_set = ChunkSet(data, self.valid_utts, spk_index, chunk, feats_scp, allow_pipes, raw_len, samples)
        rng = np.random.default_rng(cfg.seed)
        self.eer_utts = sorted(rng.permutation(self.valid_utts)[:cfg.valid_eer_utts].tolist())
        self.train_rows = [i for i, u in enumerate(self.train_utts) for _ in range(rows[u])]
        self.valid_rows = [i for i, u in enumerate(self.valid_utts) for _ in range(rows[u])]
        if not self.train_rows:
            raise ValueError(f"{data.path}: no training rows (every utterance is shorter than {cfg.chunk_s} s "
                             f"or quieter than mean |x| {cfg.min_amplitude})")

        self.classifier = Classifier(self.model.shape.emb_dim, out_neurons=len(self.speakers)).to(self.device)
        self.loss_fn = LogSoftmaxWrapper(AdditiveAngularMargin(margin=cfg.margin, scale=cfg.scale))
        params = list(self.model.ecapa.parameters()) + list(self.classifier.parameters())
        self.opt = make_optimizer(cfg, params)
        self.ecapa, self.classifier_ddp = self.model.ecapa, self.classifier
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ecapa = torch.nn.parallel.DistributedDataParallel(self.model.ecapa, device_ids=ids)
            self.classifier_ddp = torch.nn.parallel.DistributedDataParallel(self.classifier, device_ids=ids)
        self.epoch, self.batch, self.iteration, self.history = 0, 0, 0, []
        self.best: dict = {}  # {"epoch", "valid_error"} of the kept model

    def _rows(self, utts: list[str], allow_pipes: bool) -> tuple[dict[str, int], dict[str, int]]:
        """Rows and samples per utterance, counted once by rank 0 into rows.json (reused while the
        key holds)."""
        path = self.out / "rows.json"
        if self.rank == 0:
            saved = json.loads(path.read_text()) if path.is_file() else {}
            if saved.get("key") != self.key or "samples" not in saved:
                counted = count_rows(self.data, utts, int(self.cfg.chunk_s * SAMPLE_RATE), self.cfg.min_amplitude,
                                     allow_pipes)
                atomic_write_text(path, json.dumps({"key": self.key, "rows": {u: r for u, (r, _) in counted.items()},
                                                    "samples": {u: n for u, (_, n) in counted.items()}}) + "\n")
        self.dist.barrier()
        saved = json.loads(path.read_text())
        return saved["rows"], saved["samples"]

    # -- checkpoints -------------------------------------------------------------------------
    def _save(self, state: dict, name: str) -> None:
        atomic_torch_save(state, self.out / name)

    def _weights(self) -> dict:
        return {"model": {k: v.cpu() for k, v in self.model.ecapa.state_dict().items()},
                "classifier": {k: v.cpu() for k, v in self.classifier.state_dict().items()}}

    def save_checkpoint(self) -> None:
        if self.rank == 0:
            self._save({"key": self.key, "epoch": self.epoch, "batch": self.batch, "iteration": self.iteration,
                        "history": json.dumps(self.history), "best": json.dumps(self.best),
                        "optimizer": self.opt.state_dict(), **self._weights()}, "checkpoint.pt")

    def resume(self) -> bool:
        path = self.out / "checkpoint.pt"
        if not path.is_file():
            return False
        state = torch.load(path, map_location=self.device, weights_only=True)
        if state.get("key") != self.key:
            log.warning("%s: checkpoint is from other settings or data; starting afresh", path)
            return False
        self.model.ecapa.load_state_dict(state["model"])
        self.classifier.load_state_dict(state["classifier"])
        self.opt.load_state_dict(state["optimizer"])
        self.epoch, self.batch, self.iteration = state["epoch"], state["batch"], state["iteration"]
        self.history, self.best = json.loads(state["history"]), json.loads(state["best"])
        log.info("resumed from %s: epoch %d, batch %d", path, self.epoch + 1, self.batch)
        return True

    # -- training ----------------------------------------------------------------------------
    def embed_rows(self, ecapa, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """A batch of rows (chunks, and WavLM crops for asv_ssl) -> embeddings (B, 1, emb_dim)."""
        if self.ssl:
            return ecapa(self.model.frontend(x), self.model.wavlm_layers(raw))
        return ecapa(self.model.frontend(x) if self.cfg.features == "online" else normalize_feats(x))

    def set_plan(self, dataset: ChunkSet, rows: list[int], stream: int) -> None:
        dataset.plan = epoch_plan(rows, self.cfg.seed, self.epoch, stream)
        dataset.raw_starts = crop_starts(len(rows), self.cfg.seed, self.epoch, stream) if dataset.raw_len else []

    def loader(self, dataset: ChunkSet, batches: list[list[int]]):
        workers = self.cfg.num_workers if self.cfg.features == "online" else 0
        return torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=workers,
                                           pin_memory=self.device.type == "cuda")  # faster host-to-GPU copies

    def train_batches(self) -> tuple[list[list[int]], list[int]]:
        """This rank's slices of the epoch's global batches from ``self.batch`` on, and the global sizes.

        A last global batch with fewer than two rows per process is left out: BatchNorm after the
        ECAPA pooling cannot train on one row (speechbrain raises), and a process needs rows."""
        batches = [b for b in global_batches(len(self.train_rows), self.cfg.batch_size, self.batch, self.cfg.drop_last)
                   if len(b) >= 2 * self.world]
        return [rank_slice(b, self.rank, self.world) for b in batches], [len(b) for b in batches]

    def run(self) -> dict:
        self.resume()
        cfg = self.cfg
        n_batches = len(global_batches(len(self.train_rows), cfg.batch_size))
        log.info("ASV training: %d train / %d valid utterances (%d / %d rows of %.1f s), %d speakers, "
                 "%d epochs x %d batches, device %s, %d process(es)", len(self.train_utts), len(self.valid_utts),
                 len(self.train_rows), len(self.valid_rows), cfg.chunk_s, len(self.speakers), cfg.epochs,
                 n_batches, self.device, self.world)
        while self.epoch < cfg.epochs:
            self.set_plan(self.train_set, self.train_rows, 0)
            self.model.train(), self.classifier.train()
            total, count = 0.0, 0
            last_save = time.monotonic()
            mine, sizes = self.train_batches()
            prog = Progress(len(mine), f"epoch {self.epoch + 1}/{cfg.epochs}")
            for (x, raw, y), n_global in zip(self.loader(self.train_set, mine), sizes):
                x, raw, y = x.to(self.device), raw.to(self.device), y.to(self.device)
                if self.augmenter is not None:
                    x = augment_batch(self.augmenter, x, cfg.seed, self.epoch, self.batch)
                self.iteration += 1  # speechbrain steps the cyclic lr before the update
                for group in self.opt.param_groups:
                    group["lr"] = cyclic_lr(self.iteration, cfg.base_lr, cfg.lr, cfg.step_size)
                loss = self.loss_fn(self.classifier_ddp(self.embed_rows(self.ecapa, x, raw)), y.unsqueeze(1))
                # DDP averages gradients over processes: weight each share so the sum is the global mean
                (loss * (len(y) * self.world / n_global)).backward()
                self.opt.step()
                self.opt.zero_grad()
                self.batch += 1
                total, count = total + loss.item(), count + 1
                prog.step()
                if time.monotonic() - last_save > 60 * cfg.checkpoint_minutes:
                    self.save_checkpoint()
                    last_save = time.monotonic()
            self.end_epoch(total / max(count, 1))
        return self.finish()

    def end_epoch(self, loss: float) -> None:
        valid_err, valid_eer = self.validate(), self.validation_eer()
        self.history.append({"epoch": self.epoch + 1, "loss": loss, "valid_error": valid_err, "valid_eer": valid_eer,
                             "lr": cyclic_lr(self.iteration, self.cfg.base_lr, self.cfg.lr, self.cfg.step_size)})
        log.info("epoch %d: train loss %.4f, valid error %s, valid EER %s", self.epoch + 1, loss,
                 "n/a" if valid_err is None else f"{100 * valid_err:.2f} %",
                 "n/a" if valid_eer is None else f"{valid_eer:.2f} %")
        # the kept model: the lowest valid error (the earliest on ties); without valid rows, the last
        if valid_err is None or not self.best or valid_err < self.best["valid_error"]:
            self.best = {"epoch": self.epoch + 1, "valid_error": valid_err}
            if self.rank == 0:
                self._save(self._weights(), "best.pt")
        self.epoch, self.batch = self.epoch + 1, 0
        self.save_checkpoint()

    @torch.no_grad()
    def validate(self) -> float | None:
        """Classification error on the valid rows (random crops, seeded per epoch); rank 0 only."""
        if not self.valid_rows or self.rank != 0:
            return None
        self.model.eval(), self.classifier.eval()
        self.set_plan(self.valid_set, self.valid_rows, 1)
        batches = global_batches(len(self.valid_rows), self.cfg.batch_size)
        wrong = 0
        for x, raw, y in self.loader(self.valid_set, batches):
            emb = self.embed_rows(self.model.ecapa, x.to(self.device), raw.to(self.device))
            pred = self.classifier(emb).squeeze(1).argmax(-1).cpu()
            wrong += int((pred != y).sum())
        return wrong / len(self.valid_rows)

    @torch.no_grad()
    def validation_eer(self) -> float | None:
        """EER % of the validation trials (``voxanon.eval.convergence``) on whole valid utterances,
        embedded as in training (no loudness normalization); rank 0 only."""
        if not self.eer_utts or self.rank != 0:
            return None
        self.model.eval()
        emb = {}
        for utt in self.eer_utts:
            if self.train_set.feats_scp is not None:
                feats = torch.from_numpy(np.array(self.train_set.feats_scp[utt], dtype=np.float32))[None].to(self.device)
                emb[utt] = self.model.ecapa(normalize_feats(feats))[0, 0].cpu().numpy()
            else:
                emb[utt] = self.model.embed(self.data.audio(utt, self.train_set.allow_pipes).samples)
        return validation_eer(emb, self.data.utt2spk)

    def finish(self) -> dict:
        conv = convergence(self.history, self.cfg.convergence_margin, self.cfg.convergence_epochs)
        info = {
            "key": self.key, "settings": asdict(self.cfg), "data": str(self.data.path), "speakers": self.speakers,
            "init_model": str(self.init_dir or ""), "train_utts": len(self.train_utts),
            "valid_utts": len(self.valid_utts), "train_rows": len(self.train_rows), "valid_rows": len(self.valid_rows),
            "steps": self.iteration, "history": self.history, "best": self.best, "convergence": conv,
        }
        if self.rank == 0:
            best = torch.load(self.out / "best.pt", map_location="cpu", weights_only=True)
            self._save(best["model"], EMBEDDING_FILE)
            self._save(best["classifier"], CLASSIFIER_FILE)
            if self.ssl:
                link_wavlm(find_embedding_ckpt(self.init_dir).parent / WAVLM_FILE, self.out / WAVLM_FILE)
            if warning(str(self.out), conv):
                log.warning("%s", warning(str(self.out), conv))
            atomic_write_text(self.out / INFO_FILE, json.dumps(info, indent=1) + "\n")
        self.dist.barrier()
        self.dist.close()
        return info


def link_wavlm(src: Path, dst: Path) -> None:
    """The frozen WavLM beside the fine-tuned weights (a hard link; a copy across file systems)."""
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def train_asv(cfg: AsvConfig, data: DataDir, out_dir: str | Path, allow_pipes: bool = False) -> dict:
    """Train (or resume) and write the model dir; returns the training summary. A finished model
    with the same settings and data is kept as it is."""
    if len(set(data.utt2spk.values())) < 2:
        raise ValueError(f"{data.path}: ASV training needs at least 2 speakers")
    trainer = Trainer(cfg, data, Path(out_dir), allow_pipes)
    info_file = Path(out_dir) / INFO_FILE
    if (Path(out_dir) / EMBEDDING_FILE).is_file() and info_file.is_file():
        info = json.loads(info_file.read_text())
        if info.get("key") == trainer.key and len(info.get("history", [])) >= cfg.epochs:
            log.info("%s: trained already with these settings; kept", out_dir)
            return info
    return trainer.run()

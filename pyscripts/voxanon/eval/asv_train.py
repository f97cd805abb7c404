"""Train an ECAPA-TDNN speaker-verification attacker on a Kaldi data dir (VPC 2024 recipe).

Utterances are split 90/10 (seeded) into train and valid; every epoch visits each training
utterance once as a random ``chunk_s`` chunk (shorter utterances are repeated to that length), in
a permutation drawn from (seed, epoch), so an interrupted epoch resumes at the same batch. Loss:
AAM-softmax (speechbrain ``AdditiveAngularMargin`` on the cosine ``Classifier``); Adam with the
triangular cyclic learning rate stepped per batch.

Output dir::

    checkpoint.pt          training state (model, classifier, optimizer, epoch, batch); resumable
    embedding_model.ckpt   ECAPA-TDNN state dict, written when training ends (what load_asv reads)
    classifier.ckpt        speaker classifier state dict
    asv.json               settings, speakers, per-epoch loss / valid error
    feats/                 fbank ark/scp when features: precomputed

Several GPUs: start with ``torchrun --nproc_per_node N -m voxanon.bin.train_asv ...``; each rank
takes every N-th batch of the same permutation (DistributedDataParallel), rank 0 writes.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from speechbrain.lobes.models.ECAPA_TDNN import Classifier
from speechbrain.nnet.losses import AdditiveAngularMargin, LogSoftmaxWrapper

from voxanon.anonymize.base import resolve_device
from voxanon.audio import SAMPLE_RATE, AudioError, load_16k
from voxanon.config import fingerprint
from voxanon.data.features import load_scp, shard_paths, write_shard
from voxanon.data.kaldi import DataDir, atomic_write_text, resolve_wav
from voxanon.eval.asv_model import (CLASSIFIER_FILE, EMBEDDING_FILE, INFO_FILE, AsvModel, EcapaShape,
                                    normalize_feats)
from voxanon.eval.config import AsvConfig
from voxanon.progress import Progress

log = logging.getLogger("voxanon.asv_train")
FRAMES_PER_SECOND = 100  # fbank hop: 10 ms


def split_utts(utts: list[str], valid_share: float, seed: int) -> tuple[list[str], list[str]]:
    """Seeded utterance-level split into (train, valid)."""
    rng = np.random.default_rng(seed)
    order = [utts[i] for i in rng.permutation(len(utts))]
    n_valid = int(round(len(utts) * valid_share))
    return sorted(order[n_valid:]), sorted(order[:n_valid])


def fit_length(x: np.ndarray, length: int, offset: int) -> np.ndarray:
    """A window of ``length`` along axis 0 starting at ``offset``; short input is tiled first."""
    if len(x) < length:
        x = np.concatenate([x] * math.ceil(length / max(len(x), 1)))[:length]
        return x
    return x[offset:offset + length]


class ChunkSet(torch.utils.data.Dataset):
    """Item i of an epoch plan -> (chunk, speaker index). Chunks are waveforms (online) or fbank
    frames (precomputed); the plan fixes which utterance and where the chunk starts."""

    def __init__(self, data: DataDir, utts: list[str], spk_index: dict[str, int], chunk: int,
                 feats_scp, allow_pipes: bool):
        self.data, self.utts, self.spk_index, self.chunk = data, utts, spk_index, chunk
        self.feats_scp, self.allow_pipes = feats_scp, allow_pipes
        self.plan: list[tuple[int, float]] = []  # (utt index, relative start in [0, 1))

    def __len__(self) -> int:
        return len(self.plan)

    def load(self, utt: str) -> np.ndarray:
        if self.feats_scp is not None:
            return self.feats_scp[utt]
        return load_16k(resolve_wav(self.data, utt), self.data.path, self.allow_pipes).samples

    def __getitem__(self, i: int):
        ui, rel = self.plan[i]
        utt = self.utts[ui]
        x = self.load(utt)
        offset = int(rel * max(len(x) - self.chunk, 0))
        return torch.from_numpy(np.array(fit_length(x, self.chunk, offset), dtype=np.float32)), \
            self.spk_index[self.data.utt2spk[utt]]


def epoch_plan(n_utts: int, seed: int, epoch: int) -> list[tuple[int, float]]:
    rng = np.random.default_rng([seed, epoch])
    return [(int(u), float(r)) for u, r in zip(rng.permutation(n_utts), rng.random(n_utts))]


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
                wav = load_16k(resolve_wav(data, utt), data.path, allow_pipes).samples
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
        self.rank = int(os.environ.get("RANK", 0))
        self.world = int(os.environ.get("WORLD_SIZE", 1))
        self.device = self._setup_device()
        utts = data.utts
        if cfg.max_utts and len(utts) > cfg.max_utts:
            rng = np.random.default_rng(cfg.seed)
            utts = sorted(rng.choice(utts, cfg.max_utts, replace=False).tolist())
        self.train_utts, self.valid_utts = split_utts(utts, cfg.valid_share, cfg.seed)
        self.speakers = sorted({data.utt2spk[u] for u in utts})
        spk_index = {s: i for i, s in enumerate(self.speakers)}
        feats_scp = None
        if cfg.features == "precomputed":
            if self.rank == 0:
                precompute_fbank(data, utts, self.out / "feats", cfg.n_mels, allow_pipes)
            self._barrier()
            feats_scp = load_scp(shard_paths(self.out / "feats", "fbank", 1)[1])
            chunk = int(cfg.chunk_s * FRAMES_PER_SECOND)
        else:
            chunk = int(cfg.chunk_s * SAMPLE_RATE)
        self.train_set = ChunkSet(data, self.train_utts, spk_index, chunk, feats_scp, allow_pipes)
        self.valid_set = ChunkSet(data, self.valid_utts, spk_index, chunk, feats_scp, allow_pipes)
        self.valid_set.plan = [(i, 0.5) for i in range(len(self.valid_utts))]  # centre chunks

        torch.manual_seed(cfg.seed)
        shape = EcapaShape(cfg.n_mels, cfg.channels, cfg.attention_channels, cfg.emb_dim)
        self.model = AsvModel(shape).to(self.device)
        self.classifier = Classifier(cfg.emb_dim, out_neurons=len(self.speakers)).to(self.device)
        self.loss_fn = LogSoftmaxWrapper(AdditiveAngularMargin(margin=cfg.margin, scale=cfg.scale))
        params = list(self.model.ecapa.parameters()) + list(self.classifier.parameters())
        self.opt = torch.optim.Adam(params, lr=cfg.base_lr, weight_decay=cfg.weight_decay)
        self.ecapa = self.model.ecapa
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ecapa = torch.nn.parallel.DistributedDataParallel(self.model.ecapa, device_ids=ids)
            self.classifier_ddp = torch.nn.parallel.DistributedDataParallel(self.classifier, device_ids=ids)
        else:
            self.classifier_ddp = self.classifier
        # what the weights depend on (not where or how fast they are computed)
        # (epochs is left out: raising it continues a finished run)
        recipe = {k: v for k, v in asdict(cfg).items()
                  if k not in ("device", "num_workers", "checkpoint_minutes", "epochs")}
        self.key = fingerprint({"cfg": recipe, "train": self.train_utts, "spk": self.speakers})
        self.epoch, self.batch, self.iteration, self.history = 0, 0, 0, []

    def _setup_device(self) -> torch.device:
        if self.world > 1:
            backend = "nccl" if torch.cuda.is_available() and self.cfg.device != "cpu" else "gloo"
            if not dist.is_initialized():
                dist.init_process_group(backend)
            if backend == "nccl":
                local = int(os.environ.get("LOCAL_RANK", 0))
                torch.cuda.set_device(local)
                return torch.device("cuda", local)
            return torch.device("cpu")
        return torch.device(resolve_device(self.cfg.device))

    def _barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    # -- checkpoints -------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        if self.rank != 0:
            return
        state = {
            "key": self.key, "epoch": self.epoch, "batch": self.batch, "iteration": self.iteration,
            "history": json.dumps(self.history), "model": self.model.ecapa.state_dict(),
            "classifier": self.classifier.state_dict(), "optimizer": self.opt.state_dict(),
        }
        tmp = self.out / "checkpoint.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.out / "checkpoint.pt")

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
        self.history = json.loads(state["history"])
        log.info("resumed from %s: epoch %d, batch %d", path, self.epoch + 1, self.batch)
        return True

    # -- training ----------------------------------------------------------------------------
    def embed_batch(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.model.frontend(x) if self.cfg.features == "online" else normalize_feats(x)
        return self.ecapa(feats)  # (batch, 1, emb_dim)

    def loader(self, dataset: ChunkSet, start_batch: int = 0):
        bs = self.cfg.batch_size
        indices = list(range(len(dataset)))
        batches = [indices[i:i + bs] for i in range(0, len(indices), bs)][start_batch:]
        if self.world > 1:  # equal batch counts on every rank (else the last allreduce waits forever)
            batches = batches[:len(batches) - len(batches) % self.world]
        mine = batches[self.rank::self.world]
        workers = self.cfg.num_workers if self.cfg.features == "online" else 0
        return torch.utils.data.DataLoader(dataset, batch_sampler=mine, num_workers=workers)

    def run(self) -> dict:
        self.out.mkdir(parents=True, exist_ok=True)
        self.resume()
        cfg = self.cfg
        n_batches = math.ceil(len(self.train_utts) / cfg.batch_size)
        n_batches -= n_batches % self.world  # see loader()
        log.info("ASV training: %d train / %d valid utterances, %d speakers, %d epochs x %d batches, device %s, "
                 "%d process(es)", len(self.train_utts), len(self.valid_utts), len(self.speakers), cfg.epochs,
                 n_batches, self.device, self.world)
        while self.epoch < cfg.epochs:
            self.train_set.plan = epoch_plan(len(self.train_utts), cfg.seed, self.epoch)
            self.model.train(), self.classifier.train()
            total, count = 0.0, 0
            last_save = time.monotonic()
            prog = Progress(n_batches - self.batch, f"epoch {self.epoch + 1}/{cfg.epochs}")
            for x, y in self.loader(self.train_set, self.batch):
                x, y = x.to(self.device), y.to(self.device)
                for group in self.opt.param_groups:
                    group["lr"] = cyclic_lr(self.iteration, cfg.base_lr, cfg.lr, cfg.step_size)
                logits = self.classifier_ddp(self.embed_batch(x))
                loss = self.loss_fn(logits, y.unsqueeze(1))
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
                self.iteration += 1
                self.batch += self.world
                total, count = total + loss.item(), count + 1
                prog.step(self.world)
                if time.monotonic() - last_save > 60 * cfg.checkpoint_minutes:
                    self.save_checkpoint()
                    last_save = time.monotonic()
            valid_err = self.validate()
            self.history.append({"epoch": self.epoch + 1, "loss": total / max(count, 1), "valid_error": valid_err,
                                 "lr": cyclic_lr(self.iteration, cfg.base_lr, cfg.lr, cfg.step_size)})
            log.info("epoch %d: train loss %.4f, valid error %s", self.epoch + 1, total / max(count, 1),
                     "n/a" if valid_err is None else f"{100 * valid_err:.2f} %")
            self.epoch, self.batch = self.epoch + 1, 0
            self.save_checkpoint()
        return self.finish()

    @torch.no_grad()
    def validate(self) -> float | None:
        if not self.valid_utts or self.rank != 0:
            return None
        self.model.eval(), self.classifier.eval()
        wrong = 0
        for x, y in torch.utils.data.DataLoader(self.valid_set, batch_size=self.cfg.batch_size):
            feats = self.model.frontend(x.to(self.device)) if self.cfg.features == "online" \
                else normalize_feats(x.to(self.device))
            pred = self.classifier(self.model.ecapa(feats)).squeeze(1).argmax(-1).cpu()
            wrong += int((pred != y).sum())
        return wrong / len(self.valid_utts)

    def finish(self) -> dict:
        info = {
            "key": self.key, "settings": asdict(self.cfg), "data": str(self.data.path), "speakers": self.speakers,
            "train_utts": len(self.train_utts), "valid_utts": len(self.valid_utts), "history": self.history,
        }
        if self.rank == 0:
            for name, module in ((EMBEDDING_FILE, self.model.ecapa), (CLASSIFIER_FILE, self.classifier)):
                tmp = self.out / f"{name}.tmp"
                torch.save({k: v.cpu() for k, v in module.state_dict().items()}, tmp)
                os.replace(tmp, self.out / name)
            atomic_write_text(self.out / INFO_FILE, json.dumps(info, indent=1) + "\n")
        self._barrier()
        if self.world > 1:
            dist.destroy_process_group()
        return info


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

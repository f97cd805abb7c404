"""The converter training loop: single process or torch DDP (torchrun), AMP on GPU, resumable.

Writes under ``out_dir``: ``checkpoints/step_N.pt`` (every ``checkpoint_every`` steps and at the
end; the last ``keep_checkpoints`` kept), ``final.pt`` (converter only, for inference),
``train_log.csv`` (train and validation rows). A killed run restarts from the latest checkpoint
with the same step, optimizer, scheduler and RNG states; batches are a function of the step
(voxanon.models.dataset), so it continues exactly (with DDP, ranks other than 0 take rank 0's
dropout RNG state on resume). A non-finite loss stops training with the step
and the batch's utterance ids; the checkpoints written before it stay.
"""
from __future__ import annotations

import contextlib
import csv
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from voxanon.config import to_dict
from voxanon.models.checkpoint import (checkpoint_path, list_checkpoints, load_for_resume, prune, save_atomic)
from voxanon.models.config import TrainConfig
from voxanon.models.dataset import PairIndex, StepBatches, recon_chunks, valid_batches
from voxanon.models.objectives import ConverterObjectives

log = logging.getLogger("voxanon.train")
CSV_FIELDS = ("step", "split", "loss", "l1", "l2", "adv", "adv_acc", "ctc", "lr", "steps_per_s")


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN/inf loss."""


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_dist(device: str) -> tuple[Dist, str]:
    """Join the torchrun process group when launched by torchrun; pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(), device
    d = Dist(int(os.environ["RANK"]), world, int(os.environ["LOCAL_RANK"]))
    if device.startswith("cuda"):
        device = f"cuda:{d.local_rank}"
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return d, device


def _lr_factor(warmup: int):
    return lambda step: min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0


def amp_autocast(device: str, amp: bool):
    """(context, needs GradScaler): bf16 where the GPU has it, else fp16 with loss scaling."""
    if not (amp and device.startswith("cuda")):
        return contextlib.nullcontext(), False
    bf16 = torch.cuda.is_bf16_supported()
    return torch.autocast("cuda", dtype=torch.bfloat16 if bf16 else torch.float16), not bf16


class CsvLog:
    """train_log.csv; on resume, rows past the resumed step (from the killed run) are dropped."""

    def __init__(self, path: Path, resume_step: int):
        self.path = path
        rows = []
        if path.is_file():
            with open(path, newline="", encoding="utf-8") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, CSV_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        self.tb = None
        try:  # optional: only when tensorboard happens to be installed
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(path.parent / "tensorboard"))
        except ImportError:
            pass

    def write(self, step: int, split: str, values: dict[str, float]) -> None:
        row = {"step": step, "split": split, **{k: f"{v:.6g}" for k, v in values.items() if k in CSV_FIELDS}}
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, CSV_FIELDS).writerow(row)
        if self.tb is not None:
            for key, value in values.items():
                self.tb.add_scalar(f"{split}/{key}", value, step)


def _mean_parts(parts: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    return {k: float(torch.stack([p[k].float() for p in parts]).mean()) for k in parts[0]}


def train(cfg: TrainConfig, pairs_dir: Path, out_dir: Path, device: str = "cpu") -> Path:
    """Train (or resume) the converter; returns the path of ``final.pt``."""
    d, device = setup_dist(device)
    opt = cfg.optim
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out_dir / "checkpoints"
    index = PairIndex.load(pairs_dir)
    train_utts, valid_utts = index.split(cfg.pairs.valid_utts)
    if not train_utts:
        raise ValueError(f"{pairs_dir}: no training utterances left after holding out {len(valid_utts)} for validation")
    recon = recon_chunks(np.load(pairs_dir / "recon.npy", mmap_mode="r"), cfg.pairs.recon_frames) \
        if cfg.pairs.recon_share > 0 else []
    centroids = torch.from_numpy(np.load(pairs_dir / "units.npy")) if cfg.objectives.discrete.enabled else None

    torch.manual_seed(opt.seed)
    model = ConverterObjectives(cfg, len(index.speakers), centroids).to(device)
    torch.manual_seed(opt.seed + d.rank)  # per-rank dropout
    # Parameter order must be the same in every run: the optimizer state is restored by position.
    adv = list(model.adversary.parameters()) if model.adversary is not None else []
    adv_ids = {id(p) for p in adv}
    groups = [{"params": [p for p in model.parameters() if id(p) not in adv_ids], "lr": opt.lr}]
    if adv:
        groups.append({"params": adv, "lr": cfg.objectives.adversary.lr})
    optimizer = torch.optim.Adam(groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(opt.warmup_steps))
    autocast, fp16 = amp_autocast(device, opt.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)

    step = 0
    found = list_checkpoints(ckpt_dir)
    if found:
        ckpt = load_for_resume(found[-1], cfg)
        model.converter.load_state_dict(ckpt["converter"])
        model.load_state_dict(ckpt["extras"], strict=False)
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        torch.set_rng_state(ckpt["rng"]["cpu"])
        if device.startswith("cuda") and ckpt["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"], device)
        step = int(ckpt["step"])
        if d.main:
            log.info("resumed from %s (step %d)", found[-1], step)
    elif d.main:
        log.info("training from scratch: %d train / %d valid utterances, %d speakers, %d reconstruction chunks, "
                 "%.1fM converter parameters", len(train_utts), len(valid_utts), len(index.speakers), len(recon),
                 sum(p.numel() for p in model.converter.parameters()) / 1e6)
    ddp = torch.nn.parallel.DistributedDataParallel(model) if d.world > 1 else model
    csv_log = CsvLog(out_dir / "train_log.csv", step) if d.main else None

    def save(at: int) -> None:
        extras = {k: v for k, v in model.state_dict().items() if not k.startswith("converter.")}
        rng = {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.startswith("cuda") else None}
        save_atomic({"step": at, "target": cfg.pairs.target, "train_config": to_dict(cfg), "model_config": to_dict(cfg.model),
                     "speakers": list(index.speakers), "converter": model.converter.state_dict(), "extras": extras,
                     "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     "scaler": scaler.state_dict(), "rng": rng}, checkpoint_path(ckpt_dir, at))
        prune(ckpt_dir, opt.keep_checkpoints)

    def validate(at: int) -> None:
        model.eval()
        with torch.no_grad(), autocast:
            parts = [model(b["source"].to(device), b["target"].to(device), b["lengths"].to(device),
                           b["speakers"].to(device))[1]
                     for b in valid_batches(index, valid_utts, cfg.pairs, opt.batch_size)]
        model.train()
        values = _mean_parts(parts)
        log.info("step %d valid: %s", at, " ".join(f"{k} {v:.4f}" for k, v in values.items()))
        csv_log.write(at, "valid", values)

    batches = StepBatches(index, train_utts, recon, cfg.pairs, opt.batch_size, opt.seed, d.rank, step, opt.max_steps)
    # Its own generator: the loader must not draw from the global RNG, whose state (dropout) is
    # saved in checkpoints and has to continue after a resume exactly as without the kill.
    loader = torch.utils.data.DataLoader(batches, batch_size=None, num_workers=opt.num_workers,
                                         pin_memory=device.startswith("cuda"), generator=torch.Generator())
    model.train()
    window, t0 = [], time.monotonic()
    for batch in loader:
        assert batch["step"] == step
        with autocast:
            loss, parts = ddp(batch["source"].to(device), batch["target"].to(device), batch["lengths"].to(device),
                              batch["speakers"].to(device))
        finite = torch.isfinite(loss.detach()).float()
        if d.world > 1:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if finite.item() < 1:
            raise NonFiniteLoss(f"non-finite loss at step {step + 1} (rank {d.rank}: {float(loss.detach()):.4g}); batch "
                                f"utterances: {' '.join(batch['ids'])}; last good checkpoint kept in {ckpt_dir}")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), opt.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        step += 1
        window.append(parts)
        if d.main and (step % opt.log_every == 0 or step == opt.max_steps):
            rate = len(window) / max(time.monotonic() - t0, 1e-9)
            values = {**_mean_parts(window), "lr": scheduler.get_last_lr()[0], "steps_per_s": rate}
            eta = (opt.max_steps - step) / rate
            log.info("step %d/%d %s (%.2f steps/s, eta %dh%02dm)", step, opt.max_steps,
                     " ".join(f"{k} {v:.4f}" for k, v in values.items() if k not in ("lr", "steps_per_s")),
                     rate, eta // 3600, eta % 3600 // 60)
            csv_log.write(step, "train", values)
            window, t0 = [], time.monotonic()
        if d.main and valid_utts and (step % opt.valid_every == 0 or step == opt.max_steps):
            validate(step)
        if d.main and (step % opt.checkpoint_every == 0 or step == opt.max_steps):
            save(step)
    final = out_dir / "final.pt"
    if d.main:
        if not checkpoint_path(ckpt_dir, step).is_file():
            save(step)
        save_atomic({"step": step, "target": cfg.pairs.target, "model_config": to_dict(cfg.model),
                     "converter": model.converter.state_dict()}, final)
        log.info("done: %d steps; converter in %s", step, final)
    if d.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return final

"""The converter training loop: single process or torch DDP (torchrun), AMP on GPU, resumable.

Writes under ``out_dir``: ``checkpoints/step_N.pt`` (every ``checkpoint_every`` steps and at the
end; the last ``keep_checkpoints`` kept), ``final.pt`` (converter only, for inference),
``train_log.csv`` (train rows, and validation rows for the shorter and the longer half of the
held-out utterances). A killed run restarts from the latest checkpoint with the same step,
optimizer and scheduler states; batches (voxanon.models.dataset) and dropout masks are functions
of the step (and of the rank, for dropout), so it continues exactly, and after a resume each rank
still draws its own masks. A non-finite loss stops training with the step and the batch's
utterance ids; the checkpoints written before it stay.

Adam with ming024's betas (0.9, 0.98) and eps 1e-9; the converter (with the CTC blank head)
follows ``optim.schedule``, the adversary keeps its own constant lr. Gradients are clipped to
``grad_clip`` for the converter and for the adversary separately (the adversary's norm is
typically much larger and would otherwise set the clip for both).
"""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from voxanon.config import to_dict
from voxanon.distributed import setup_dist
from voxanon.fileio import atomic_torch_save
from voxanon.models.checkpoint import checkpoint_path, list_checkpoints, load_for_resume, prune
from voxanon.models.config import OptimConfig, TrainConfig
from voxanon.models.dataset import PairIndex, StepBatches, valid_batches
from voxanon.models.objectives import ConverterObjectives

log = logging.getLogger("voxanon.train")
CSV_FIELDS = ("step", "split", "loss", "l1", "l2", "ctc", "adv", "adv_acc", "grad_norm", "adv_grad_norm", "lr",
              "steps_per_s")


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN/inf loss."""


def lr_factor(opt: OptimConfig):
    """Step (from 0) -> factor on ``opt.lr``: linear warm-up, then 1/sqrt decay (noam) or flat."""
    def factor(step: int) -> float:
        s, w = step + 1, max(opt.warmup_steps, 1)
        if s < w:
            return s / w
        return (w / s) ** 0.5 if opt.schedule == "noam" else 1.0
    return factor


def step_seed(seed: int, rank: int, step: int) -> int:
    """The dropout seed of one rank at one step: masks differ between ranks and steps, and a
    resumed run draws the same ones as the run it continues."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def param_groups(model: ConverterObjectives) -> tuple[list, list]:
    """(converter parameters, CTC blank head included; adversary parameters), in a fixed order."""
    adv = list(model.adversary.parameters()) if model.adversary is not None else []
    adv_ids = {id(p) for p in adv}
    return [p for p in model.parameters() if id(p) not in adv_ids], adv


def clip_gradients(model: ConverterObjectives, max_norm: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Clip the converter's and the adversary's gradients each to ``max_norm``; their norms before."""
    conv, adv = param_groups(model)
    conv_norm = torch.nn.utils.clip_grad_norm_(conv, max_norm)
    return conv_norm, torch.nn.utils.clip_grad_norm_(adv, max_norm) if adv else None


def amp_autocast(device: str, amp: bool):
    """(context, needs GradScaler): bf16 where the GPU has it, else fp16 with loss scaling."""
    if not (amp and device.startswith("cuda")):
        return contextlib.nullcontext(), False
    bf16 = torch.cuda.is_bf16_supported()
    return torch.autocast("cuda", dtype=torch.bfloat16 if bf16 else torch.float16), not bf16


class LogWindow:
    """Per-step logged parts since the last log line. Every rank adds and flushes at the same
    steps; the flush averages over steps and ranks (a collective) and empties the window."""

    def __init__(self, world: int):
        self.world, self.parts, self.t0 = world, [], time.monotonic()

    def add(self, parts: dict[str, torch.Tensor]) -> None:
        self.parts.append(parts)

    def flush(self) -> tuple[dict[str, float], float]:
        """-> (mean of each part, steps per second), and the window starts again."""
        values = mean_parts(self.parts, self.world)
        rate = len(self.parts) / max(time.monotonic() - self.t0, 1e-9)
        self.parts, self.t0 = [], time.monotonic()
        return values, rate


def mean_parts(parts: list[dict[str, torch.Tensor]], world: int = 1) -> dict[str, float]:
    keys = sorted(parts[0])
    means = torch.stack([torch.stack([p[k].float() for p in parts]).mean() for k in keys])
    if world > 1:
        dist.all_reduce(means)
        means /= world
    return dict(zip(keys, means.tolist()))


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


def train(cfg: TrainConfig, pairs_dir: Path, out_dir: Path, device: str = "cpu") -> Path:
    """Train (or resume) the converter; returns the path of ``final.pt``."""
    d, device = setup_dist(device)
    opt = cfg.optim
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out_dir / "checkpoints"
    index = PairIndex.load(pairs_dir)
    features = json.loads((pairs_dir / "features.json").read_text())
    train_utts, valid_utts = index.split(cfg.pairs.valid_utts)
    if not train_utts:
        raise ValueError(f"{pairs_dir}: no training utterances left after holding out {len(valid_utts)} for validation")
    recon = np.load(pairs_dir / "recon.npy", mmap_mode="r") if cfg.pairs.recon_share > 0 else None
    centroids = torch.from_numpy(np.load(pairs_dir / "units.npy")) if cfg.objectives.discrete.enabled else None

    torch.manual_seed(opt.seed)  # the same initial weights on every rank
    model = ConverterObjectives(cfg, len(index.speakers), centroids).to(device)
    conv_params, adv_params = param_groups(model)
    groups = [{"params": conv_params, "lr": opt.lr}]
    if adv_params:
        groups.append({"params": adv_params, "lr": cfg.objectives.adversary.lr})
    optimizer = torch.optim.Adam(groups, betas=opt.betas, eps=opt.eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, [lr_factor(opt), lambda _: 1.0][: len(groups)])
    autocast, fp16 = amp_autocast(device, opt.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)

    step = 0
    found = list_checkpoints(ckpt_dir)
    if found:
        ckpt = load_for_resume(found[-1], cfg)
        model.load_state_dict({**{f"converter.{k}": v for k, v in ckpt["converter"].items()}, **ckpt["extras"]})
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        step = int(ckpt["step"])
        if d.main:
            log.info("resumed from %s (step %d)", found[-1], step)
    elif d.main:
        log.info("training from scratch: %d train / %d valid utterances, %d speakers, %s, batch %d over %d "
                 "process(es), %.1fM converter parameters", len(train_utts), len(valid_utts), len(index.speakers),
                 f"reconstruction share {cfg.pairs.recon_share}" if recon is not None else "no reconstruction",
                 opt.batch_size, d.world, sum(p.numel() for p in model.converter.parameters()) / 1e6)
    ddp = torch.nn.parallel.DistributedDataParallel(model) if d.world > 1 else model
    csv_log = CsvLog(out_dir / "train_log.csv", step) if d.main else None

    def save(at: int) -> None:
        extras = {k: v for k, v in model.state_dict().items() if not k.startswith("converter.")}
        atomic_torch_save({"step": at, "target": cfg.pairs.target, "features": features, "train_config": to_dict(cfg),
                     "model_config": to_dict(cfg.model), "speakers": list(index.speakers),
                     "converter": model.converter.state_dict(), "extras": extras, "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict()}, checkpoint_path(ckpt_dir, at))
        prune(ckpt_dir, opt.keep_checkpoints)

    def validate(at: int) -> None:
        model.eval()
        groups: dict[str, list] = {}
        with torch.no_grad(), autocast:
            for group, b in valid_batches(index, valid_utts, opt.batch_size):
                groups.setdefault(group, []).append(model(b["source"].to(device), b["target"].to(device),
                                                          b["lengths"].to(device), b["speakers"].to(device))[1])
        model.train()
        for group, parts in groups.items():
            values = mean_parts(parts)
            log.info("step %d valid (%s half): %s", at, group, " ".join(f"{k} {v:.4f}" for k, v in values.items()))
            csv_log.write(at, f"valid_{group}", values)

    batches = StepBatches(index, train_utts, recon, cfg.pairs.recon_share, opt.batch_size, opt.seed, d.rank, d.world,
                          step, opt.max_steps)
    loader = torch.utils.data.DataLoader(batches, batch_size=None, num_workers=opt.num_workers,
                                         pin_memory=device.startswith("cuda"))
    model.train()
    window = LogWindow(d.world)
    for batch in loader:
        assert batch["step"] == step
        torch.manual_seed(step_seed(opt.seed, d.rank, step))
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
        parts["grad_norm"], adv_norm = clip_gradients(model, opt.grad_clip)
        if adv_norm is not None:
            parts["adv_grad_norm"] = adv_norm
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        step += 1
        window.add(parts)
        if step % opt.log_every == 0 or step == opt.max_steps:
            values, rate = window.flush()  # on every rank: the flush is collective
            if d.main:
                values["lr"], values["steps_per_s"] = scheduler.get_last_lr()[0], rate
                eta = (opt.max_steps - step) / rate
                log.info("step %d/%d %s (%.2f steps/s, eta %dh%02dm)", step, opt.max_steps,
                         " ".join(f"{k} {values[k]:.4f}" for k in CSV_FIELDS if k in values and k not in
                                  ("lr", "steps_per_s")), rate, eta // 3600, eta % 3600 // 60)
                csv_log.write(step, "train", values)
        if d.main and valid_utts and (step % opt.valid_every == 0 or step == opt.max_steps):
            validate(step)
        if d.main and (step % opt.checkpoint_every == 0 or step == opt.max_steps):
            save(step)
    final = out_dir / "final.pt"
    if d.main:
        if not checkpoint_path(ckpt_dir, step).is_file():
            save(step)
        atomic_torch_save({"step": step, "target": cfg.pairs.target, "features": features,
                     "model_config": to_dict(cfg.model), "converter": model.converter.state_dict()}, final)
        log.info("done: %d steps; converter in %s", step, final)
    d.barrier()
    d.close()
    return final

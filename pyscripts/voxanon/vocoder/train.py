"""Training the kNN-VC vocoder as the reference does (bshall/knn-vc ``prematch_dataset.py`` and
``hifigan/``): prematched data, then HiFi-GAN (generator + MPD/MSD), resumable, DDP.

Prematching (kNN-VC's "prematched" vocoder): every WavLM frame of an utterance is replaced by the
mean of its k nearest frames (cosine) among the other utterances of its chapter (LibriSpeech ids
``spk-chapter-utt``, as the reference) or, for other ids, of its speaker, so the vocoder learns
from the kind of features the matcher produces at conversion time.

Training pairs random ``segment_frames`` windows of prematched features (T, D) with their audio
(22 frames = 7040 samples by default, the reference's ``segment_size``). Losses as HiFi-GAN: LSGAN + feature matching + 45 x L1
between log-mels computed as the reference's (``LogMel``); AdamW (2e-4, betas 0.8/0.99), learning
rates decayed by 0.999 per epoch. ``out_dir`` holds ``state.pt`` (everything needed to resume,
written atomically every ``save_every`` steps) and ``g_<step>.pt`` in the published
``{"generator": ...}`` layout. Run under ``torchrun --nproc_per_node N`` for several GPUs
(DistributedDataParallel; rank 0 writes).
"""
from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from voxanon.data.features import load_scp, write_shard
from voxanon.data.kaldi import DataDir
from voxanon.distributed import setup_dist
from voxanon.features.wavlm import HOP
from voxanon.fileio import atomic_torch_save
from voxanon.knn.matcher import knn_average
from voxanon.progress import Progress
from voxanon.vocoder.discriminators import Discriminators, discriminator_loss, feature_loss, generator_loss
from voxanon.vocoder.hifigan import Generator, HiFiGANConfig, save_generator

log = logging.getLogger("voxanon.vocoder")


def prematch_group(utt: str, spk: str) -> str:
    """Whose other utterances ``utt`` is prematched against: its chapter for LibriSpeech ids
    (``<spk>-<chapter>-<n>``, the reference's same-directory utterances), else its speaker."""
    chapter = re.fullmatch(rf"({re.escape(spk)}-\d+)-\d+", utt)
    return f"chapter {chapter.group(1)}" if chapter else f"speaker {spk}"


def prematch(data: DataDir, feats_scp: str | Path, out_dir: str | Path, k: int = 4, device: str = "cpu") -> Path:
    """Write prematched features of every utterance whose group (``prematch_group``) has another one."""
    feats = load_scp(feats_scp)
    groups: dict[str, list[str]] = {}
    for utt in data.utts:
        if utt in feats:
            groups.setdefault(prematch_group(utt, data.utt2spk[utt]), []).append(utt)
    progress = Progress(len(groups), "prematch groups")

    def items():
        for group, utts in sorted(groups.items()):
            if len(utts) < 2:
                log.warning("%s has one utterance: nothing to prematch against; skipped", group)
                progress.step()
                continue
            mats = {u: torch.from_numpy(np.array(feats[u], dtype=np.float32)).to(device) for u in utts}
            for u in utts:
                pool = torch.cat([m for v, m in mats.items() if v != u])
                yield u, knn_average(mats[u], pool, k).cpu().numpy()
            progress.step()

    return write_shard(out_dir, "prematch", 1, items())


class SegmentDataset(Dataset):
    """(features (S, D), audio (S * 320,)) windows at a random frame; utterances too short are
    zero-padded. The offset comes from torch's global generator, which the DataLoader seeds in
    each worker (as the reference's ``random``), so workers and epochs draw their own crops."""

    def __init__(self, data: DataDir, feats_scp: str | Path, segment_frames: int):
        self.data, self.segment = data, segment_frames
        self.feats = load_scp(feats_scp)
        self.utts = [u for u in data.utts if u in self.feats]

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        utt = self.utts[i]
        feats = np.asarray(self.feats[utt], dtype=np.float32)
        audio = self.data.audio(utt).samples
        # windows whose features and audio are both complete (WavLM's last frame may overhang)
        starts = min(len(feats), len(audio) // HOP) - self.segment + 1
        start = int(torch.randint(starts, ())) if starts > 0 else 0
        f = feats[start:start + self.segment]
        a = audio[start * HOP:(start + self.segment) * HOP]
        f = np.pad(f, ((0, self.segment - len(f)), (0, 0)))
        a = np.pad(a, (0, self.segment * HOP - len(a)))
        return torch.from_numpy(f), torch.from_numpy(a.astype(np.float32))


@dataclass(frozen=True)
class TrainOptions:
    steps: int = 2_500_000
    batch_size: int = 16
    segment_frames: int = 22  # 7040 samples, the reference's segment_size
    channels: int = 512  # generator width after lin_pre (512 in the published vocoder)
    lr: float = 2e-4
    lr_decay: float = 0.999
    save_every: int = 5000
    workers: int = 2
    seed: int = 1234


def epoch_loader(dataset: SegmentDataset, opts: TrainOptions, epoch: int, rank: int = 0,
                 sampler: DistributedSampler | None = None) -> DataLoader:
    """One epoch's batches. torch's generator is seeded from (seed, rank, epoch); the DataLoader
    draws each worker's seed from it, so crops differ across workers, ranks and epochs, and a
    resumed run draws what an uninterrupted one would from the start of that epoch."""
    torch.manual_seed(int(np.random.SeedSequence([opts.seed, rank, epoch]).generate_state(1)[0]))
    if sampler is not None:
        sampler.set_epoch(epoch)
    return DataLoader(dataset, opts.batch_size, shuffle=sampler is None, sampler=sampler,
                      num_workers=opts.workers, drop_last=len(dataset) >= opts.batch_size)


N_FFT, N_MELS, F_MAX = 1024, 80, 8000.0  # the reference's config_v1_wavlm.json (win_size 1024, fmin 0)


def slaney_mel_filters(n_fft: int = N_FFT, n_mels: int = N_MELS, sr: int = 16000, f_max: float = F_MAX) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangles on the Slaney mel scale from 0 Hz to ``f_max``, each
    scaled by 2 / its width in Hz (Slaney norm): librosa's ``filters.mel`` default, torchaudio's
    ``norm="slaney", mel_scale="slaney"``."""
    log_step = np.log(6.4) / 27  # mels: 3 per 200 Hz up to 1 kHz (15 mels), then 27 per factor 6.4

    def hz_to_mel(f):
        return np.where(f < 1000, f * 3 / 200, 15 + np.log(np.maximum(f, 1000) / 1000) / log_step)

    def mel_to_hz(m):
        return np.where(m < 15, m * 200 / 3, 1000 * np.exp((m - 15) * log_step))

    edges = mel_to_hz(np.linspace(0, hz_to_mel(f_max), n_mels + 2))
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    tri = np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
    return torch.from_numpy(tri * 2 / (hi - lo)).float()


class LogMel(torch.nn.Module):
    """The reference's training log-mel (hifigan/meldataset.py ``LogMelSpectrogram``): reflect
    padding of (n_fft - hop) / 2 each side, |STFT| with a 1024 Hann window, hop 320, center=False,
    80 Slaney mels up to 8 kHz, log(max(., 1e-5)). S * 320 samples give S frames."""

    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.register_buffer("filters", slaney_mel_filters(), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B, 80, N // 320)."""
        pad = (N_FFT - HOP) // 2
        wav = F.pad(wav.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(wav, N_FFT, HOP, window=self.window, center=False, return_complex=True).abs()
        return torch.log((self.filters @ spec).clamp_min(1e-5))


def train(data: DataDir, feats_scp: str | Path, out_dir: str | Path, opts: TrainOptions, device: str = "cpu") -> int:
    """Train (or resume) until ``opts.steps``; returns the step reached."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    d, device = setup_dist(device)
    rank, distributed = d.rank, d.world > 1
    torch.manual_seed(opts.seed + rank)
    dataset = SegmentDataset(data, feats_scp, opts.segment_frames)
    if not len(dataset):
        raise ValueError(f"{feats_scp}: no utterance of {data.path} has features")
    in_dim = dataset[0][0].shape[1]
    gen = Generator(HiFiGANConfig(in_dim=in_dim, initial_channels=opts.channels)).to(device)
    disc = Discriminators().to(device)
    opt_g = torch.optim.AdamW(gen.parameters(), opts.lr, betas=(0.8, 0.99))
    opt_d = torch.optim.AdamW(disc.parameters(), opts.lr, betas=(0.8, 0.99))
    sched_g = torch.optim.lr_scheduler.ExponentialLR(opt_g, opts.lr_decay)
    sched_d = torch.optim.lr_scheduler.ExponentialLR(opt_d, opts.lr_decay)
    step, epoch = 0, 0
    state_path = out_dir / "state.pt"
    if state_path.is_file():
        state = torch.load(state_path, map_location=device, weights_only=True)
        for obj, key in ((gen, "generator"), (disc, "discriminators"), (opt_g, "opt_g"), (opt_d, "opt_d"),
                         (sched_g, "sched_g"), (sched_d, "sched_d")):
            obj.load_state_dict(state[key])
        step, epoch = int(state["step"]), int(state["epoch"])
        log.info("resumed from %s at step %d (epoch %d)", state_path, step, epoch)
    g_model, d_model = gen, disc
    if distributed:
        g_model, d_model = DistributedDataParallel(gen), DistributedDataParallel(disc)
    sampler = DistributedSampler(dataset, seed=opts.seed) if distributed else None
    mel = LogMel().to(device)
    progress = Progress(opts.steps - step, "vocoder steps")

    def save():
        if rank:
            return
        atomic_torch_save({"generator": gen.state_dict(), "discriminators": disc.state_dict(),
                           "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "sched_g": sched_g.state_dict(),
                           "sched_d": sched_d.state_dict(), "step": step, "epoch": epoch, "options": asdict(opts)},
                          state_path)
        save_generator(gen, out_dir / f"g_{step:08d}.pt")
        log.info("step %d: saved %s and g_%08d.pt", step, state_path, step)

    while step < opts.steps:
        for feats, wav in epoch_loader(dataset, opts, epoch, rank, sampler):
            feats, wav = feats.to(device), wav.to(device).unsqueeze(1)
            fake = g_model(feats)
            loss_d = discriminator_loss(d_model(wav), d_model(fake.detach()))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            real_out, fake_out = d_model(wav), d_model(fake)
            loss_mel = F.l1_loss(mel(fake.squeeze(1)), mel(wav.squeeze(1)))
            loss_g = generator_loss(fake_out) + feature_loss(real_out, fake_out) + 45 * loss_mel
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            step += 1
            progress.step()
            if step % 100 == 0 or step == opts.steps:
                log.info("step %d: loss_d %.3f loss_g %.3f mel %.3f", step, loss_d.item(), loss_g.item(), loss_mel.item())
            if step % opts.save_every == 0 or step == opts.steps:
                save()
            if step >= opts.steps:
                break
        epoch += 1
        sched_g.step()
        sched_d.step()
    d.close()
    return step

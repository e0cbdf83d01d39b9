# %% [markdown]
# # Training
# > A trainer that runs top to bottom on a Kaggle GPU, degrades on the GPU, validates with the organisers' metric, never loses work, resumes exactly, and scales to two GPUs.

# %%
#| default_exp train

# %%
#| export
from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from blindsr.core import PathLike, seed_everything
from blindsr.device import amp_dtype, get_device, grad_scaler, is_cuda_sm70_or_newer
from blindsr.data import HQFaces, PairedFaces, batch_indices, flip_mask, holdout_split
from blindsr.degradation import degrade_batch, degrade_folder, degrade_image, get_preset, sample, to_device
from blindsr.checkpoint import CheckpointError, atomic_save, export_weights, load_checkpoint
from blindsr.metrics import bicubic_psnr, psnr_tensor
from blindsr.models import GENERATOR_PARAM_CAP, UNetDiscriminatorSN, build_generator, check_param_budget

# %%
#| hide
import tempfile
from fastcore.test import test_eq, test_fail, test_close, test_ne
from blindsr.core import write_png
from blindsr.samples import synthetic_faces

def smooth_faces(folder, n, size=64, seed=0):
    "n synthetic 'faces' (size x size PNG): random colour fields, bicubic-smooth at 1/8 scale: learnable, not noise."
    return synthetic_faces(folder, n, size, seed, grid=size // 8, texture=0)


# %% [markdown]
# ## The configuration -
#
# One dataclass holds every choice of a run; the notebook, the `blindsr_train` command and the Kaggle kernel all
# fill the same fields, and every checkpoint carries `asdict(cfg)`. The defaults are chosen to reach a high PSNR
# per GPU-minute rather than to copy the 2018 recipe: mixed precision picked by the card, a larger batch, Adam
# with a cosine schedule that always ends at the end of the budget (by iterations or by minutes), an EMA of the
# weights (validated and saved), L1 with an optional MSE finish (the score is PSNR, i.e. MSE).

# %%
#| export
@dataclass
class TrainConfig:
    "Everything a training run needs. Paths may be None where a later step finds them (e.g. on Kaggle)."
    # data
    train_hq: str | None = None          # folder of HQ faces (512x512); None: found by blindsr.data.find_data
    val_gt: str | None = None            # validation GT folder (None: hold out `val_holdout` faces of train_hq)
    val_lq: str | None = None            # validation LQ folder (None: made once from val_gt with `preset`, seed 0)
    val_holdout: int = 0                 # hold out the last N faces of train_hq for validation (when val_gt is None)
    val_limit: int | None = None         # validate on the first N pairs only
    preset: str = 'ai6126_2024'          # degradation preset (blindsr.degradation.PRESETS)
    degrade_on: str = 'auto'             # 'gpu' (torch backend on the training device), 'cpu' (DataLoader workers), 'auto'
    degrade_group: int | None = None     # faces sharing resize draws on the GPU (None: each degraded batch shares one)
    degrade_mix: int = 4                 # GPU path: degrade this many batches at once and serve them shuffled (mixing)
    gpu_cache: str = 'auto'              # keep all decoded HQ faces on the GPU: 'auto' (if < 25 % of its memory), 'on', 'off'
    workers: int | None = None           # DataLoader workers for degrade_on='cpu' (default: cores - 1)
    hflip: bool = True                   # horizontal flip, the augmentation the course advises
    # model
    generator: str = 'msrresnet'         # a key of blindsr.models.GENERATORS
    generator_kwargs: dict = field(default_factory=dict)  # constructor overrides, e.g. {"num_block": 24}
    param_cap: int = GENERATOR_PARAM_CAP # the course's limit on generator parameters
    init_from: str | None = None         # start the generator from these weights (e.g. for the GAN phase)
    # optimisation
    batch_size: int = 16                 # faces per optimiser step, all processes together
    accum: int = 1                       # split each batch into this many micro-batches (same maths, less memory)
    iters: int | None = None             # optimiser steps; the schedule spans them (None: schedule_min sets the end)
    schedule_min: float | None = None    # minutes of training the learning-rate schedule spans, over all sessions (when iters is None)
    session_min: float | None = None     # stop (and save) after this many minutes of this session; a rerun resumes
    time_budget_min: float | None = None # one-session shorthand: sets schedule_min and session_min where they are unset
    lr: float = 4e-4                     # peak learning rate (Adam)
    betas: tuple = (0.9, 0.99)
    weight_decay: float = 0.0
    schedule: str = 'cosine'             # 'cosine' (to min_lr at the end) or 'constant'
    warmup: float = 0.02                 # fraction of the run with a linear warm-up
    min_lr: float = 1e-7
    loss: str = 'l1'                     # 'l1', 'charbonnier' or 'mse'
    mse_finish: float = 0.2              # fraction of the run at the end trained with MSE (0: never)
    ema: float = 0.999                   # EMA decay of the weights (0: off); EMA weights are validated and saved
    ema_warmup: bool = True              # decay ramps as min(ema, (1+n)/(10+n)) over the first n updates (short runs)
    amp: str = 'auto'                    # 'auto' (bf16 on sm_80+, fp16 + GradScaler below, fp32 on CPU), 'bf16', 'fp16', 'off'
    channels_last: str = 'auto'          # 'auto' (on for CUDA sm_70+), 'on', 'off'
    compile: str = 'auto'                # torch.compile the generator: 'auto' (one CUDA process on sm_70+), 'on', 'off';
                                         # a compiler that fails at the first step falls back to eager
    grad_clip: float | None = None       # clip the gradient norm (None: off)
    # GAN phase (off by default)
    gan: bool = False                    # train against UNetDiscriminatorSN (start from a PSNR model: init_from)
    gan_weight: float = 0.1              # weight of the adversarial loss
    pixel_weight: float = 1.0            # weight of the L1 loss in the GAN phase
    disc_feat: int = 32
    disc_lr: float = 1e-4
    # bookkeeping
    out_dir: str = 'runs/blindsr'        # checkpoints, logs, curves
    val_every: int = 1000                # steps between validations (and at the end)
    val_every_min: float | None = None   # or minutes between validations (whichever comes first)
    ckpt_every: int = 2000               # steps between checkpoints (also at the end, on SIGTERM/Ctrl-C, at the budget)
    log_every: int = 50                  # steps between loss logs (the only host syncs of the loop)
    seed: int = 0
    resume: bool = True                  # continue from out_dir/last.ckpt if it exists
    device: str | None = None            # None: the best available
    progress: bool = True                # progress bar

    def __post_init__(self):
        if isinstance(self.compile, bool): self.compile = 'on' if self.compile else 'off'   # configs written before 'auto'
        checks = {'compile': ('auto', 'on', 'off'), 'degrade_on': ('auto', 'gpu', 'cpu'), 'gpu_cache': ('auto', 'on', 'off'),
                  'schedule': ('cosine', 'constant'),
                  'loss': ('l1', 'charbonnier', 'mse'), 'amp': ('auto', 'bf16', 'fp16', 'off'), 'channels_last': ('auto', 'on', 'off')}
        for k, ok in checks.items():
            if getattr(self, k) not in ok: raise ValueError(f'TrainConfig.{k} must be one of {ok}, got {getattr(self, k)!r}')
        if self.time_budget_min is not None:
            if self.schedule_min is None and self.iters is None: self.schedule_min = self.time_budget_min
            if self.session_min is None: self.session_min = self.time_budget_min
        if self.iters is None and self.schedule_min is None:
            raise ValueError('set iters, schedule_min (or time_budget_min) or both: the learning-rate schedule needs an end')
        if self.batch_size % self.accum: raise ValueError(f'batch_size {self.batch_size} must be divisible by accum {self.accum}')
        if self.degrade_mix < 1: raise ValueError(f'degrade_mix must be >= 1, got {self.degrade_mix}')
        get_preset(self.preset)
        self.betas = tuple(self.betas)


# %%
c = TrainConfig(iters=10)
test_eq(c.generator, 'msrresnet'); test_eq(json.loads(json.dumps(asdict(c)))['betas'], [0.9, 0.99])
test_fail(lambda: TrainConfig(iters=10, amp='fp8'), contains="amp must be one of")
test_fail(lambda: TrainConfig(), contains='schedule needs an end')


# %% [markdown]
# ## The schedule is a pure function -
#
# Learning rate and loss depend only on the run's progress `p ∈ [0, 1]`: the step over `iters`, or the minutes
# trained over the budget when no iteration count is given. So the cosine always reaches `min_lr` when the run
# ends, a resumed run continues on the same curve, and nothing but the step and elapsed time need saving.

# %%
#| export
def progress(cfg: TrainConfig, step: int, elapsed_s: float) -> float:
    "Fraction of the run done: by steps if `iters` is set, else by minutes trained (all sessions) against `schedule_min`."
    if cfg.iters: return min(1.0, step / cfg.iters)
    return min(1.0, elapsed_s / (60.0 * cfg.schedule_min))


def get_lr(cfg: TrainConfig, p: float) -> float:
    "Learning rate at progress p: linear warm-up, then constant or cosine down to min_lr."
    if cfg.warmup and p < cfg.warmup: return cfg.lr * max(p / cfg.warmup, 0.01)
    if cfg.schedule == 'constant': return cfg.lr
    q = (p - cfg.warmup) / max(1e-12, 1 - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, q)))


def loss_name(cfg: TrainConfig, p: float) -> str:
    "The pixel loss at progress p: cfg.loss, switching to MSE for the last `mse_finish` of the run."
    return 'mse' if cfg.mse_finish and p >= 1 - cfg.mse_finish else cfg.loss


def pixel_loss(name: str, sr: torch.Tensor, hq: torch.Tensor) -> torch.Tensor:
    "Mean L1, Charbonnier (ε = 1e-3) or MSE between sr and hq, computed in float32."
    d = sr.float() - hq.float()
    if name == 'l1': return d.abs().mean()
    if name == 'mse': return d.pow(2).mean()
    if name == 'charbonnier': return torch.sqrt(d * d + 1e-6).mean()
    raise ValueError(f'unknown loss {name!r}')


# %%
cc = TrainConfig(iters=1000, lr=1e-3, warmup=0.1, min_lr=0.0)
test_close(get_lr(cc, 0.05), 5e-4); test_close(get_lr(cc, 0.1), 1e-3); test_close(get_lr(cc, 1.0), 0.0, eps=1e-12)
test_close(get_lr(cc, 0.55), 5e-4, eps=1e-9)
test_eq(progress(TrainConfig(time_budget_min=10), 5, 300.0), 0.5)
test_eq(progress(TrainConfig(schedule_min=20, session_min=10), 5, 300.0), 0.25)   # the schedule spans sessions
test_eq((TrainConfig(time_budget_min=10).schedule_min, TrainConfig(time_budget_min=10).session_min), (10, 10))
test_eq(TrainConfig(iters=50, time_budget_min=10).schedule_min, None)            # iters sets the end; the shorthand only stops
test_eq([loss_name(cc, p) for p in (0.5, 0.79, 0.8)], ['l1', 'l1', 'mse'])
test_close(pixel_loss('charbonnier', torch.zeros(3), torch.ones(3)).item(), 1.0, eps=1e-5)


# %% [markdown]
# ## Mixed precision by card -
#
# bf16 autocast on sm_80+ (A100, H100, L4: no loss scaling needed), fp16 with a gradient scaler on sm_60/sm_70/
# sm_75 (P100, V100, T4 — the T4 has no bf16 and its tensor cores run fp16), fp32 on the CPU. `channels_last`
# helps the tensor cores (sm_70+) and is left off elsewhere.
#
# `torch.compile` is on by default for one CUDA process on sm_70+: it fuses the elementwise work around the
# convolutions (activations, pixel shuffles, the loss), which in eager mode took half of MSRResNet's step on an H200
# (device time per step 30.9 ms eager, 15.4 ms compiled; a 5-minute run trained at 594 images/s instead of 405).
# Compiling costs tens of seconds at the first step, inside the run's time budget. It stays off on the CPU (the
# compile time would dominate short runs and tests), on a P100 (Triton needs sm_70) and under DDP (not yet measured);
# `compile='on'`/`'off'` overrides, and a compiler that fails at the first step leaves the run eager.

# %%
#| export
def amp_policy(cfg: TrainConfig, device: torch.device) -> tuple[torch.dtype | None, bool]:
    "(autocast dtype or None, whether to use a GradScaler) for this config and device."
    if device.type != 'cuda' or cfg.amp == 'off': return None, False
    if cfg.amp == 'bf16': return torch.bfloat16, False
    if cfg.amp == 'fp16': return torch.float16, True
    dtype = amp_dtype(device)     # the card's choice: bf16 on sm_80+, fp16 below
    return dtype, dtype == torch.float16


def use_channels_last(cfg: TrainConfig, device: torch.device) -> bool:
    if cfg.channels_last != 'auto': return cfg.channels_last == 'on'
    return is_cuda_sm70_or_newer(device)


def use_compile(cfg: TrainConfig, device: torch.device, world: int = 1) -> bool:
    "Whether to torch.compile the generator: 'auto' compiles for one CUDA process on sm_70+ (Triton's minimum)."
    if cfg.compile != 'auto': return cfg.compile == 'on'
    return world == 1 and is_cuda_sm70_or_newer(device)


# %%
test_eq(amp_policy(TrainConfig(iters=1), torch.device('cpu')), (None, False))
test_eq(use_channels_last(TrainConfig(iters=1), torch.device('cpu')), False)
test_eq(use_compile(TrainConfig(iters=1), torch.device('cpu')), False)
test_eq(use_compile(TrainConfig(iters=1, compile='on'), torch.device('cpu')), True)
test_eq(TrainConfig(iters=1, compile=True).compile, 'on')     # a config file from before 'auto'
test_fail(lambda: TrainConfig(iters=1, compile='yes'), contains="compile must be one of")


# %% [markdown]
# ## Checkpoints that survive anything -
#
# A checkpoint holds the generator, its EMA, the discriminator, both optimisers, the gradient scaler, the step,
# the elapsed time, the best validation PSNR and `asdict(cfg)` — plain tensors and Python values only, so it loads
# with `torch.load(weights_only=True)`. `blindsr.checkpoint` owns the format: it writes atomically (a crash while
# saving leaves the previous checkpoint intact), reads safely, checks the architecture, and exports the small
# weights file inference needs. The generator keys are BasicSR's (`params`, `params_ema`), so BasicSR-style loaders
# read ours too.

# %% [markdown]
# ## Validation -
#
# Every `val_every` steps the EMA generator restores the validation LQ, its output is rounded to uint8 levels and
# scored with the organisers' PSNR (`blindsr.metrics.psnr_tensor`), in fp32. The bicubic PSNR of the same set is
# the line to beat.

# %%
#| export
@torch.no_grad()
def val_batches(pairs: PairedFaces,  # validation pairs (uint8)
                device: torch.device,
                batch: int = 8,
               ) -> list[tuple[torch.Tensor, torch.Tensor]]:  # [(lq (B,3,h,w) uint8, gt (B,3,H,W) uint8)] on device
    "Decode the validation pairs once and keep them on the device (validating then costs only the forward passes)."
    out = []
    for i in range(0, len(pairs), batch):
        items = [pairs[j] for j in range(i, min(i + batch, len(pairs)))]
        out.append((torch.stack([it['lq'] for it in items]).to(device), torch.stack([it['gt'] for it in items]).to(device)))
    return out


@torch.no_grad()
def evaluate_model(model: nn.Module,  # generator, (B,3,h,w) -> (B,3,4h,4w)
                   pairs: PairedFaces | list,  # validation pairs, or their `val_batches`
                   device: torch.device,
                   batch: int = 8,
                   channels_last: bool = False,
                  ) -> float:  # mean per-image PSNR (dB) of the rounded outputs
    "Mean organisers' PSNR of `model` on `pairs` (fp32 forward)."
    was = model.training
    model.eval()
    scores = []
    for lq, gt in (pairs if isinstance(pairs, list) else val_batches(pairs, device, batch)):
        lq = lq.to(device).float().div_(255)
        if channels_last: lq = lq.contiguous(memory_format=torch.channels_last)
        scores.append(psnr_tensor(model(lq).float(), gt.to(device).float().div_(255)).cpu())
    model.train(was)
    return float(torch.cat(scores).mean())


def bicubic_val_psnr(pairs: PairedFaces) -> float:
    "Mean PSNR of PIL-bicubic upsampled LQ on `pairs` (the baseline)."
    vals = [bicubic_psnr(pairs[i]['lq'].permute(1, 2, 0).numpy(), pairs[i]['gt'].permute(1, 2, 0).numpy()) for i in range(len(pairs))]
    return float(np.mean(vals))


# %% [markdown]
# ## LQ on the CPU, in DataLoader workers -
#
# Without a GPU the torch backend would run on the same cores as the model, so faces are degraded by the numpy/
# OpenCV backend in worker processes. Each item is keyed by `(face, step, slot)`, and its degradation parameters
# and noise seed are a function of that key: as deterministic and resumable as the GPU path.

# %%
#| export
class DegradedFaces(torch.utils.data.Dataset):
    "Items keyed (face index, step, slot, flip) -> (hq, lq) uint8 tensors, degraded on the CPU."
    def __init__(self, faces: HQFaces, preset: str, seed: int, rank: int = 0):
        self.faces, self.cfg, self.seed, self.rank = faces, get_preset(preset), seed, rank

    def __len__(self): return len(self.faces)

    def __getitem__(self, key):
        i, step, slot, flip = key
        hq = self.faces[i]
        if flip: hq = hq.flip(-1)
        img = hq.permute(1, 2, 0).numpy()
        params = sample(self.cfg, np.random.default_rng([self.seed, step, self.rank, 2, slot]), 1)
        return hq.contiguous(), torch.from_numpy(degrade_image(img, params)).permute(2, 0, 1).contiguous()


class StepBatches(torch.utils.data.Sampler):
    "Yields, for steps start, start+1, …, the keys of this rank's faces (see DegradedFaces)."
    def __init__(self, n, batch, seed, start, stop, rank=0, world=1, hflip=True):
        self.n, self.batch, self.seed, self.start, self.stop, self.rank, self.world, self.hflip = n, batch, seed, start, stop, rank, world, hflip

    def __iter__(self):
        for step in range(self.start, self.stop):
            idx = batch_indices(step, self.n, self.batch, self.seed, self.rank, self.world)
            fl = flip_mask(step, len(idx), self.seed, self.rank) if self.hflip else np.zeros(len(idx), bool)
            yield [(int(i), step, j, bool(f)) for j, (i, f) in enumerate(zip(idx, fl))]

    def __len__(self): return self.stop - self.start


# %% [markdown]
# ## The trainer -
#
# `Trainer(cfg).fit()` does the whole job. The loop per step: gather the step's faces (from the GPU-resident cache,
# so no loader and no copy), flip, degrade on the GPU with this step's parameters, forward and backward under
# autocast, optimiser step, EMA update. Nothing in it waits for the GPU except the loss log every `log_every`
# steps, which is also where a NaN/inf loss is caught. Checkpoints are written every `ckpt_every` steps, at the end,
# at the time budget, on SIGTERM (Kaggle's stop button, a preempted machine) and on Ctrl-C.
#
# With `torchrun --nproc_per_node=2 -m blindsr.train …` (Kaggle's T4×2) each process degrades its own share of
# every batch and DistributedDataParallel averages the gradients; process 0 validates, logs and saves.
#
# Three measured details shape the loop (H200, 2026-11-27, `blindsr.bench`): the torch degradation costs ~12 ms
# of host time per call whatever the batch size (kernel launches), so a call per 8 faces starved the GPU; instead
# `degrade_mix` batches are degraded per block, one resize draw per batch, and served shuffled, which keeps the
# batch mixed without a 180-sample pool. That host time is only free if the step never waits for the GPU, so the
# EMA and the optimiser are sync-free (below): with both, MSRResNet trains at 405 images/s end to end at batch 16
# in bf16, against 238–260 with `AveragedModel`. And an EMA with a fixed 0.999 decay kept the validated weights
# near the initial network for the first minute of a short run; a warmed-up decay follows the network early and
# averages late (5-minute runs: 27.14 dB at 1 minute against 26.23 for the handed-out recipe; the bench notebook
# has the curves).

# %% [markdown]
# ### EMA with warm-up -

# %%
#| export
class EMAUpdate:
    """The EMA rule: ema ← ema + (1 − d)(w − ema), with the decay ramped as d = min(decay, (1+n)/(10+n)) when
    `warmup` (so a few-minute run is not dominated by its initial weights). The update count n lives on the host."""
    def __init__(self, decay: float, warmup: bool = True):
        self.decay, self.warmup, self.n = decay, warmup, 0

    def current(self) -> float:
        return min(self.decay, (1 + self.n) / (10 + self.n)) if self.warmup else self.decay

    def __call__(self, ema_tensors: list, tensors: list):
        torch._foreach_lerp_(ema_tensors, tensors, 1.0 - self.current())
        self.n += 1


# %%
e, decays = EMAUpdate(0.999), []
for n in (0, 10, 100, 1000, 100_000):
    e.n = n; decays.append(e.current())
test_close(decays, [0.1, 11 / 20, 101 / 110, 1001 / 1010, 0.999], eps=1e-12)
a, w = [torch.zeros(3)], [torch.ones(3)]
e = EMAUpdate(0.5, warmup=False); e(a, w)
test_eq(a[0].tolist(), [0.5, 0.5, 0.5]); test_eq(e.n, 1)


# %% [markdown]
# `torch.optim.swa_utils.AveragedModel` keeps its update count in a CPU tensor and copies it to the GPU on every
# update: a blocking host-to-device copy, i.e. a full device sync per step, which serialises the host's
# degradation launches with the GPU's work. `ModelEMA` keeps the count on the host and updates every floating
# tensor (parameters and buffers) of the copy with one fused lerp, so the step never waits for the GPU.

# %%
#| export
class ModelEMA:
    "A sync-free exponential moving average of a model's weights; `.module` is the averaged copy (eval mode, no grads)."
    def __init__(self, model: nn.Module, decay: float, warmup: bool = True):
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.rule = EMAUpdate(decay, warmup)
        self._dst = self._tensors(self.module)
        self._src: tuple | None = None

    @staticmethod
    def _tensors(m: nn.Module) -> list:
        return [t for t in list(m.parameters()) + list(m.buffers()) if t.is_floating_point()]

    @property
    def n(self) -> int: return self.rule.n

    @n.setter
    def n(self, v: int) -> None: self.rule.n = v

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        "One EMA step towards `model`'s current weights (same architecture as the copy)."
        if self._src is None or self._src[0] is not model:
            src = self._tensors(model)
            if len(src) != len(self._dst): raise ValueError(f'EMA of {len(self._dst)} tensors cannot follow a model with {len(src)}')
            self._src = (model, [t.detach() for t in src])
        self.rule(self._dst, self._src[1])


# %%
lin = nn.Linear(2, 1)
ema = ModelEMA(lin, 0.5, warmup=False)
with torch.no_grad(): lin.weight.add_(2.0)
w0 = ema.module.weight.clone()
ema.update(lin)
test_close(ema.module.weight, (w0 + lin.weight) / 2, eps=1e-6); test_eq(ema.n, 1)
assert not ema.module.weight.requires_grad and not ema.module.training


# %% [markdown]
# Adam runs fused on CUDA (one kernel for all parameters; with a GradScaler it also reads the inf check on the
# device, where the plain optimiser would sync to the host every step), and as torch's default elsewhere.

# %%
#| export
def adam(params, device: torch.device, **kw) -> torch.optim.Adam:
    "torch.optim.Adam, fused on CUDA where this torch build supports it."
    params = list(params)
    if torch.device(device).type == 'cuda':
        try: return torch.optim.Adam(params, fused=True, **kw)
        except (RuntimeError, TypeError, ValueError): pass
    return torch.optim.Adam(params, **kw)


# %%
test_eq(adam(nn.Linear(2, 1).parameters(), torch.device('cpu'), lr=1e-3).defaults['fused'], None)


# %%
#| export
class NonFiniteLossError(FloatingPointError):
    "The loss became NaN or inf; the message names the step and the last good checkpoint."


def _seed_of(*key) -> int:
    return int(np.random.default_rng(list(key)).integers(2 ** 62))


class Trainer:
    "Train a generator as `cfg` says; `fit()` runs to the end (or the budget) and returns a summary dict."
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self._setup_dist()
        self.out = Path(cfg.out_dir)
        if self.is_main: self.out.mkdir(parents=True, exist_ok=True)
        self._stop_reason: str | None = None
        self._block_id = self._val_cache = None          # the degraded block in use; validation pairs on the device
        self._compiled_ok, self._opt_checked, self._plotted = False, set(), -math.inf
        seed_everything(cfg.seed + self.rank)
        self._setup_data()
        self._setup_model()

    # ---- set-up ---------------------------------------------------------------------------------------------
    def _setup_dist(self):
        cfg = self.cfg
        self.world = int(os.environ.get('WORLD_SIZE', '1'))
        self.rank = int(os.environ.get('RANK', '0'))
        self.is_main = self.rank == 0
        if self.world > 1:
            import torch.distributed as dist
            local = int(os.environ.get('LOCAL_RANK', '0'))
            use_cuda = torch.cuda.is_available() and (cfg.device is None or str(cfg.device).startswith('cuda'))
            if use_cuda: torch.cuda.set_device(local)
            if not dist.is_initialized(): dist.init_process_group('nccl' if use_cuda else 'gloo')
            self.device = torch.device('cuda', local) if use_cuda else torch.device('cpu')
            if use_cuda: get_device(self.device)
        else:
            self.device = get_device(cfg.device)
        if cfg.batch_size % (self.world * cfg.accum):
            raise ValueError(f'batch_size {cfg.batch_size} must be divisible by processes × accum = {self.world * cfg.accum}')

    def _setup_data(self):
        cfg = self.cfg
        if cfg.train_hq is None:
            from blindsr.data import find_data
            dp = find_data().require('train_hq')
            cfg.train_hq = str(dp.train_hq)
            if cfg.val_gt is None and cfg.val_holdout == 0 and dp.val_gt is not None:
                cfg.val_gt, cfg.val_lq = str(dp.val_gt), str(dp.val_lq) if dp.val_lq else None
        files = cfg.train_hq
        val_gt, val_lq = cfg.val_gt, cfg.val_lq
        if cfg.val_holdout:
            if val_gt is not None: raise ValueError('set either val_gt or val_holdout, not both')
            files, held = holdout_split(cfg.train_hq, cfg.val_holdout)
            val_gt = self.out / 'val_gt'
            if self.is_main:
                val_gt.mkdir(parents=True, exist_ok=True)
                for f in held:
                    link = val_gt / f.name
                    if not link.exists(): shutil.copyfile(f, link)
        if val_gt is not None and val_lq is None:
            val_lq = self.out / f'val_lq_{cfg.preset}'
            if self.is_main: degrade_folder(val_gt, val_lq, cfg.preset, seed=0, progress=False)
        self._barrier()
        self.val = PairedFaces(val_gt, val_lq, limit=cfg.val_limit) if val_gt is not None else None
        self.degrade_on = cfg.degrade_on if cfg.degrade_on != 'auto' else ('gpu' if self.device.type == 'cuda' else 'cpu')
        self.faces = HQFaces(files, cache=True, progress=cfg.progress and self.is_main)
        store = self.faces.images
        on_gpu = self.device.type == 'cuda' and self.degrade_on == 'gpu' and (
            cfg.gpu_cache == 'on' or cfg.gpu_cache == 'auto' and
            self.faces.nbytes < 0.25 * torch.cuda.get_device_properties(self.device).total_memory)
        self.store = store.to(self.device) if on_gpu else (store.pin_memory() if self.device.type == 'cuda' else store)

    def _setup_model(self):
        cfg, dev = self.cfg, self.device
        self.G = build_generator(cfg.generator, **cfg.generator_kwargs)
        self.n_params = check_param_budget(self.G, cfg.param_cap)
        if cfg.init_from: self._load_init(cfg.init_from)
        self.G.to(dev)
        self.cl = use_channels_last(cfg, dev)
        if self.cl: self.G.to(memory_format=torch.channels_last)
        self.amp_dtype, scaled = amp_policy(cfg, dev)
        if dev.type == 'cuda': torch.backends.cudnn.benchmark = True      # fixed sizes: let cuDNN pick its fastest kernels
        self.opt_g = adam(self.G.parameters(), dev, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        self.scaler = grad_scaler(scaled)
        self.ema = None
        if cfg.ema:
            self.ema = ModelEMA(self.G, cfg.ema, cfg.ema_warmup)
        self.D = self.opt_d = None
        if cfg.gan:
            self.D = UNetDiscriminatorSN(num_in_ch=3, num_feat=cfg.disc_feat).to(dev)
            self.opt_d = adam(self.D.parameters(), dev, lr=cfg.disc_lr, betas=cfg.betas)
        self.model = self.G
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP
            self.model = DDP(self.G, device_ids=[dev.index] if dev.type == 'cuda' else None)
            if self.D is not None: self.D = DDP(self.D, device_ids=[dev.index] if dev.type == 'cuda' else None)
        self.forward = self.model
        if use_compile(cfg, dev, self.world): self.forward = self._compiled(self.model)
        self.step, self.elapsed, self.best_psnr = 0, 0.0, -math.inf
        self.gen = torch.Generator(device=dev)

    def _compiled(self, model):
        if self.device.type == 'cuda' and not is_cuda_sm70_or_newer(self.device):
            self._log('torch.compile needs sm_70+ (Triton); running eagerly')
            return model
        try: return torch.compile(model)
        except Exception as e:
            self._log(f'torch.compile unavailable ({type(e).__name__}: {e}); running eagerly')
            return model

    def _load_init(self, path):
        ck = load_checkpoint(path)
        sd = ck.get('params_ema') or ck['params']
        try: self.G.load_state_dict(sd)
        except RuntimeError as e: raise CheckpointError(f'{path} does not fit generator {self.cfg.generator}: {e}') from e

    # ---- helpers --------------------------------------------------------------------------------------------
    def _barrier(self):
        if self.world > 1:
            import torch.distributed as dist
            dist.barrier()

    def _log(self, msg):
        if self.is_main:
            from tqdm.auto import tqdm
            tqdm.write(msg)

    @property
    def ema_model(self) -> nn.Module:
        "The generator to validate and save: the EMA if enabled, else the live weights."
        return self.ema.module if self.ema is not None else self.G

    def _state(self) -> dict:
        return {'format': 'blindsr-checkpoint', 'arch': self.cfg.generator, 'arch_kwargs': dict(self.cfg.generator_kwargs),
                'params': self.G.state_dict(), 'params_ema': self.ema_model.state_dict() if self.ema is not None else None,
                'ema_updates': self.ema.n if self.ema is not None else None,
                'opt_g': self.opt_g.state_dict(), 'scaler': self.scaler.state_dict(),
                'disc': (self.D.module if self.world > 1 else self.D).state_dict() if self.D is not None else None,
                'opt_d': self.opt_d.state_dict() if self.opt_d is not None else None,
                'step': self.step, 'elapsed': self.elapsed, 'best_psnr': self.best_psnr, 'cfg': asdict(self.cfg),
                'world': self.world}

    def save(self, name: str = 'last.ckpt') -> Path | None:
        "Write the full training state atomically (process 0)."
        if not self.is_main: return None
        return atomic_save(self._state(), self.out / name)

    def resume_from(self, path: PathLike) -> None:
        ck = load_checkpoint(path, map_location=self.device)
        if ck.get('format') != 'blindsr-checkpoint':
            raise CheckpointError(f'{path} is a weights file, not a training checkpoint; use init_from= to start from it')
        if ck['arch'] != self.cfg.generator or ck['arch_kwargs'] != dict(self.cfg.generator_kwargs):
            raise CheckpointError(f"{path} was trained with {ck['arch']} {ck['arch_kwargs']}, this run is "
                                  f'{self.cfg.generator} {self.cfg.generator_kwargs}; use another out_dir or resume=False')
        self.G.load_state_dict(ck['params'])
        if self.ema is not None and ck.get('params_ema') is not None:
            self.ema.module.load_state_dict(ck['params_ema'])
            self.ema.n = ck.get('ema_updates') or 0
        self.opt_g.load_state_dict(ck['opt_g'])
        self.scaler.load_state_dict(ck['scaler'])
        if self.D is not None and ck.get('disc') is not None:
            (self.D.module if self.world > 1 else self.D).load_state_dict(ck['disc'])
            self.opt_d.load_state_dict(ck['opt_d'])
        self.step, self.elapsed, self.best_psnr = ck['step'], ck['elapsed'], ck['best_psnr']

    # ---- one step -------------------------------------------------------------------------------------------
    def _degraded_step(self, step):
        "The HQ faces of `step` (gathered, flipped) and their LQ, degraded on the training device."
        cfg = self.cfg
        idx = batch_indices(step, len(self.faces), cfg.batch_size, cfg.seed, self.rank, self.world)
        hq = self.store[to_device(idx, self.store.device)].to(self.device, non_blocking=True).float().div_(255)
        if cfg.hflip:
            fl = to_device(flip_mask(step, len(idx), cfg.seed, self.rank), self.device)
            hq = torch.where(fl.view(-1, 1, 1, 1), hq.flip(-1), hq)
        params = sample(self.cfg.preset, np.random.default_rng([cfg.seed, step, self.rank, 2]), len(idx), cfg.degrade_group or len(idx))
        self.gen.manual_seed(_seed_of(cfg.seed, step, self.rank, 3))
        return hq, degrade_batch(hq, params, self.gen)

    def _gpu_batch(self, step):
        """Steps come in blocks of `degrade_mix`: the block's batches are degraded together (each with its own resize
        draw) and served shuffled, so every batch mixes several degradations. A block is a function of its index,
        so a resumed run rebuilds the same block."""
        k = self.cfg.degrade_mix
        block = step // k
        if self._block_id != block:
            pairs = [self._degraded_step(s) for s in range(block * k, block * k + k)]
            self._block = (torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs]))
            n = self._block[0].shape[0]
            self._perm = to_device(np.random.default_rng([self.cfg.seed, block, self.rank, 4]).permutation(n), self.device)
            self._block_id = block
        per = self._block[0].shape[0] // k
        sel = self._perm[(step % k) * per:(step % k + 1) * per]
        return self._block[0][sel], self._block[1][sel]

    def _cpu_batches(self, start, stop):
        cfg = self.cfg
        workers = cfg.workers if cfg.workers is not None else max(0, min(8, (os.cpu_count() or 1) - 1))
        # worker processes are spawned, not forked (a forked child of a process whose OpenMP/OpenCV thread pools are
        # running can deadlock), so they get the file list and decode on their own instead of a copy of the cache
        faces = self.faces if workers == 0 else HQFaces(self.faces.files, cache=False, progress=False)
        ds = DegradedFaces(faces, cfg.preset, cfg.seed, self.rank)
        sampler = StepBatches(len(self.faces), cfg.batch_size, cfg.seed, start, stop, self.rank, self.world, cfg.hflip)
        extra = dict(multiprocessing_context='spawn', persistent_workers=True, prefetch_factor=4) if workers else {}
        dl = torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=workers,
                                         pin_memory=self.device.type == 'cuda', **extra)
        for hq, lq in dl:
            yield (hq.to(self.device, non_blocking=True).float().div_(255), lq.to(self.device, non_blocking=True).float().div_(255))

    def _train_step(self, hq, lq, lr, loss_kind) -> torch.Tensor:
        "One optimiser step. A compiled generator compiles at its first step; if that fails, the run goes on eagerly."
        if self.forward is self.model or self._compiled_ok:
            return self._step(hq, lq, lr, loss_kind)
        try:
            out = self._step(hq, lq, lr, loss_kind)
        except Exception as e:      # Triton/compiler missing or broken: compilation happens here, not at torch.compile()
            self._log(f'torch.compile failed at the first step ({type(e).__name__}: {str(e)[:300]}); running eagerly')
            self.forward = self.model
            self.opt_g.zero_grad(set_to_none=True)
            return self._step(hq, lq, lr, loss_kind)
        self._compiled_ok = True
        return out

    def _step(self, hq, lq, lr, loss_kind) -> torch.Tensor:
        cfg = self.cfg
        for g in self.opt_g.param_groups: g['lr'] = lr
        micro = hq.shape[0] // cfg.accum
        total = torch.zeros((), device=self.device)
        ac = torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else nullcontext()
        for m in range(cfg.accum):
            h, l = hq[m * micro:(m + 1) * micro], lq[m * micro:(m + 1) * micro]
            if self.cl: l = l.contiguous(memory_format=torch.channels_last)
            sync = (self.model.no_sync() if self.world > 1 and m < cfg.accum - 1 else nullcontext())
            with sync:
                with ac: sr = self.forward(l)
                loss = pixel_loss(loss_kind, sr, h)
                if self.D is not None: loss = cfg.pixel_weight * loss + cfg.gan_weight * self._g_adv(sr)
                self.scaler.scale(loss / cfg.accum).backward()
            total += loss.detach() / cfg.accum
        if cfg.grad_clip:
            self.scaler.unscale_(self.opt_g)
            torch.nn.utils.clip_grad_norm_(self.G.parameters(), cfg.grad_clip)
        self._opt_step()
        self.scaler.update()
        self.opt_g.zero_grad(set_to_none=True)
        if self.D is not None: self._d_step(hq, sr.detach(), lr)
        if self.ema is not None: self.ema.update(self.G)
        return total

    def _opt_step(self, attr: str = 'opt_g', scaled: bool = True):
        "Step the optimiser `self.<attr>`; if fused Adam refuses these tensors at the first step, fall back to the default."
        opt = getattr(self, attr)
        step = (lambda o: self.scaler.step(o)) if scaled else (lambda o: o.step())
        if attr in self._opt_checked: return step(opt)
        before = copy.deepcopy(opt.state_dict())
        try: step(opt)
        except RuntimeError as e:
            if not opt.defaults.get('fused'): raise
            self._log(f'fused Adam refused the parameters ({e}); using the default implementation')
            opt = torch.optim.Adam([q for g in opt.param_groups for q in g['params']], **{**opt.defaults, 'fused': False})
            opt.load_state_dict(before)
            setattr(self, attr, opt)
            step(opt)
        self._opt_checked.add(attr)

    def _g_adv(self, sr):
        for p in self.D.parameters(): p.requires_grad_(False)
        logits = self.D(sr.float())
        for p in self.D.parameters(): p.requires_grad_(True)
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))

    def _d_step(self, hq, sr, lr):
        for g in self.opt_d.param_groups: g['lr'] = self.cfg.disc_lr * lr / self.cfg.lr
        real, fake = self.D(hq.float()), self.D(sr.float())
        loss = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + \
               F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        loss.backward()
        self._opt_step('opt_d', scaled=False); self.opt_d.zero_grad(set_to_none=True)

    # ---- the loop -------------------------------------------------------------------------------------------
    def _install_sigterm(self):
        if threading.current_thread() is not threading.main_thread(): return None
        def handler(signum, frame): self._stop_reason = 'SIGTERM'
        try: return signal.signal(signal.SIGTERM, handler)
        except ValueError: return None

    def _agree_stop(self, stop: bool) -> bool:
        "All processes stop together: any process wanting to stop stops everyone (at log points only)."
        if self.world == 1: return stop
        import torch.distributed as dist
        t = torch.tensor([1.0 if stop else 0.0], device=self.device)
        dist.all_reduce(t)
        return bool(t.item() > 0)

    def fit(self, stop_at: int | None = None,  # stop (and save) when this step is reached, as if interrupted
           ) -> dict:
        "Run (or resume) training; returns the summary also written to out_dir/summary.json."
        cfg = self.cfg
        self._stop_at = stop_at
        last = self.out / 'last.ckpt'
        if cfg.resume and last.exists():
            self.resume_from(last)
            self._log(f'resumed from {last} at step {self.step} ({self.elapsed / 60:.1f} min trained)')
        self.logger = RunLog(self.out, self.step, enabled=self.is_main)
        if self.is_main: (self.out / 'config.json').write_text(json.dumps(asdict(cfg), indent=1))
        self.bicubic = bicubic_val_psnr(self.val) if (self.val is not None and self.is_main) else None
        old = self._install_sigterm()
        try:
            self._loop()
        except KeyboardInterrupt:
            self._stop_reason = 'KeyboardInterrupt'
            self.save(); self._log(f'interrupted: checkpoint saved at step {self.step} in {last}')
            raise
        finally:
            if old is not None: signal.signal(signal.SIGTERM, old)
        return self._finish()

    def _loop(self):
        cfg = self.cfg
        total = cfg.iters or 10 ** 12
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.iters, initial=self.step, desc=f'train {cfg.generator}', unit='it',
                   disable=not (cfg.progress and self.is_main), dynamic_ncols=True)
        t0, session0 = time.perf_counter(), time.perf_counter()
        elapsed0 = self.elapsed
        loss_sum, n_loss, last_log_t, last_log_step = torch.zeros((), device=self.device), 0, t0, self.step
        last_val_t, paused = t0, 0.0        # paused: seconds of validation/checkpoints in this log window
        cpu_iter = self._cpu_batches(self.step, total) if self.degrade_on == 'cpu' else None
        while self.step < total:
            now = time.perf_counter()
            self.elapsed = elapsed0 + (now - session0)
            p = progress(cfg, self.step, self.elapsed)
            if p >= 1.0 and not cfg.iters: break
            hq, lq = next(cpu_iter) if cpu_iter is not None else self._gpu_batch(self.step)
            loss = self._train_step(hq, lq, get_lr(cfg, p), loss_name(cfg, p))
            loss_sum += loss; n_loss += 1
            self.step += 1
            bar.update(1)
            at_log = self.step % cfg.log_every == 0 or self.step == total
            if at_log:
                v = (loss_sum / n_loss).item()
                if not math.isfinite(v):
                    raise NonFiniteLossError(f'loss became {v} around step {self.step}: training stopped. The last good '
                                             f'checkpoint is kept in {self.out / "last.ckpt"}; lower lr or set amp="off".')
                t = time.perf_counter()
                ips = (self.step - last_log_step) * cfg.batch_size / max(1e-9, t - last_log_t - paused)   # training only
                self.logger.train(self.step, elapsed0 + t - session0, get_lr(cfg, p), v, ips)
                bar.set_postfix(loss=f'{v:.4f}', img_s=f'{ips:.0f}', val=f'{self.best_psnr:.2f}' if self.best_psnr > -math.inf else '-')
                loss_sum.zero_(); n_loss = 0; last_log_t, last_log_step, paused = t, self.step, 0.0
                budget_hit = cfg.session_min is not None and (t - session0) >= 60 * cfg.session_min
                if self._agree_stop(budget_hit or self._stop_reason is not None):
                    self._stop_reason = self._stop_reason or 'session budget'
                    break
            due_val = self.step % cfg.val_every == 0 or (cfg.val_every_min and time.perf_counter() - last_val_t >= 60 * cfg.val_every_min)
            if due_val and self.val is not None:
                tv = time.perf_counter()
                self._validate(elapsed0 + tv - session0); last_val_t = time.perf_counter()
                paused += last_val_t - tv
            if self.step % cfg.ckpt_every == 0:
                tc = time.perf_counter(); self.save(); paused += time.perf_counter() - tc
            if self._stop_at is not None and self.step >= self._stop_at:
                self._stop_reason = f'stop_at={self._stop_at}'
                break
        bar.close()
        self.elapsed = elapsed0 + time.perf_counter() - session0

    def _val_data(self) -> list:
        if self._val_cache is None: self._val_cache = val_batches(self.val, self.device)
        return self._val_cache

    def _export(self, name: str, val_psnr: float | None) -> Path:
        "Write the EMA generator to out_dir/name with how far it got (step, scores, config)."
        return export_weights(self.out / name, self.ema_model, self.cfg.generator, self.cfg.generator_kwargs,
                              {'step': self.step, 'val_psnr': val_psnr, 'bicubic_psnr': self.bicubic, 'cfg': asdict(self.cfg)})

    def _score(self, elapsed: float) -> float:
        "Validation PSNR of the EMA generator, logged; a new best is exported to best.pt (main process only)."
        v = evaluate_model(self.ema_model, self._val_data(), self.device, channels_last=self.cl)
        if v > self.best_psnr:
            self.best_psnr = v
            self._export('best.pt', v)
        self.logger.val(self.step, elapsed, v, self.bicubic)
        return v

    def _validate(self, elapsed):
        if not self.is_main: return
        self._score(elapsed)
        if time.perf_counter() - self._plotted >= 60:     # redraw the curves at most once a minute
            self.logger.plot(); self._plotted = time.perf_counter()

    def _ranks_agree(self) -> bool:
        if self.world == 1: return True
        import torch.distributed as dist
        s = torch.stack([p.detach().double().sum() for p in self.G.parameters()]).sum().view(1)
        allv = [torch.zeros_like(s) for _ in range(self.world)]
        dist.all_gather(allv, s)
        return bool(all(torch.equal(allv[0], a) for a in allv))

    def _finish(self) -> dict:
        cfg = self.cfg
        final_psnr = self._score(self.elapsed) if self.val is not None and self.is_main else None
        agree = self._ranks_agree()
        self.save()
        if self.is_main: self._export('final.pt', final_psnr)
        summary = {'steps': self.step, 'minutes': self.elapsed / 60, 'stopped_by': self._stop_reason or 'end',
                   'final_val_psnr': final_psnr, 'best_val_psnr': self.best_psnr if self.best_psnr > -math.inf else None,
                   'bicubic_val_psnr': self.bicubic, 'generator': cfg.generator, 'params': self.n_params,
                   'world': self.world, 'ranks_agree': agree, 'device': str(self.device),
                   'amp': str(self.amp_dtype).replace('torch.', '') if self.amp_dtype else 'fp32',
                   'compiled': self.forward is not self.model,
                   'images_per_s': self.logger.mean_ips(), 'degrade_on': self.degrade_on,
                   'images_per_s_wall': self.step * cfg.batch_size / max(1e-9, self.elapsed)}
        if self.device.type == 'cuda': summary['peak_mem_gb'] = torch.cuda.max_memory_allocated(self.device) / 1e9
        if self.is_main:
            (self.out / 'summary.json').write_text(json.dumps(summary, indent=1))
            self.logger.plot()
        if self.world > 1:
            import torch.distributed as dist
            dist.barrier()
        return summary


# %% [markdown]
# The run's record: `log.csv` (step, minutes, lr, loss, training images/s every `log_every` steps, validation and
# checkpoint pauses left out; the summary's `images_per_s_wall` counts them), `val.csv` (step,
# minutes, val PSNR, bicubic PSNR) and `curves.png`. On resume, rows past the resumed step are dropped, so the files
# describe one continuous run.

# %%
#| export
class RunLog:
    "CSV logs of a run and its curves picture (process 0 only)."
    def __init__(self, out: Path, resume_step: int = 0, enabled: bool = True):
        self.out, self.enabled = Path(out), enabled
        self.files = {'train': self.out / 'log.csv', 'val': self.out / 'val.csv'}
        self.heads = {'train': ['step', 'minutes', 'lr', 'loss', 'images_per_s'],
                      'val': ['step', 'minutes', 'val_psnr', 'bicubic_psnr']}
        if not enabled: return
        for k, f in self.files.items():
            rows = [r for r in self._read(f) if int(r['step']) <= resume_step] if resume_step else []
            with open(f, 'w', newline='') as fh:
                w = csv.DictWriter(fh, fieldnames=self.heads[k]); w.writeheader(); w.writerows(rows)

    @staticmethod
    def _read(f):
        if not Path(f).exists(): return []
        with open(f, newline='') as fh: return list(csv.DictReader(fh))

    def _append(self, k, row):
        if not self.enabled: return
        with open(self.files[k], 'a', newline='') as fh: csv.DictWriter(fh, fieldnames=self.heads[k]).writerow(row)

    def train(self, step, seconds, lr, loss, ips):
        self._append('train', {'step': step, 'minutes': f'{seconds / 60:.4f}', 'lr': f'{lr:.3e}', 'loss': f'{loss:.6f}', 'images_per_s': f'{ips:.1f}'})

    def val(self, step, seconds, psnr, bicubic):
        self._append('val', {'step': step, 'minutes': f'{seconds / 60:.4f}', 'val_psnr': f'{psnr:.4f}',
                             'bicubic_psnr': '' if bicubic is None else f'{bicubic:.4f}'})

    def mean_ips(self) -> float | None:
        rows = self._read(self.files['train'])[1:]      # skip the first window (warm-up)
        return float(np.mean([float(r['images_per_s']) for r in rows])) if rows else None

    def plot(self, path: PathLike | None = None):
        "curves.png: training loss against steps, validation PSNR against minutes (with the bicubic line)."
        if not self.enabled: return None
        import matplotlib
        matplotlib.use('Agg', force=False)
        import matplotlib.pyplot as plt
        tr, va = self._read(self.files['train']), self._read(self.files['val'])
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
        if tr:
            a.plot([int(r['step']) for r in tr], [float(r['loss']) for r in tr], lw=1)
            a.set_yscale('log')
        a.set(xlabel='step', ylabel='training loss', title='loss')
        if va:
            b.plot([float(r['minutes']) for r in va], [float(r['val_psnr']) for r in va], 'o-', ms=3, label='model (EMA)')
            bic = [r['bicubic_psnr'] for r in va if r['bicubic_psnr']]
            if bic: b.axhline(float(bic[0]), color='gray', ls='--', label=f'bicubic {float(bic[0]):.2f} dB')
            b.legend()
        b.set(xlabel='minutes', ylabel='val PSNR (dB)', title='validation')
        fig.tight_layout()
        fig.savefig(path or self.out / 'curves.png', dpi=90)
        plt.close(fig)
        return path or self.out / 'curves.png'


# %% [markdown]
# ## A run on generated faces -
#
# A tiny MSRResNet (16 features, 2 blocks) on 16 generated 64×64 faces, on the CPU with LQ made in the loader (the
# numpy/OpenCV backend), with the plain `bicubic` preset so that a few seconds of training show: the loss falls, the
# validation PSNR rises above the untrained network's, and the run leaves its checkpoint, weights, logs and
# curves behind.

# %%
tmp = Path(tempfile.mkdtemp())
smooth_faces(tmp/'faces', 16)
tiny = dict(generator='msrresnet', generator_kwargs={'num_feat': 16, 'num_block': 2}, batch_size=4, lr=2e-3, ema=0.9,
            log_every=5, val_every=20, ckpt_every=20, progress=False, workers=0, mse_finish=0.0)
cfg = TrainConfig(train_hq=str(tmp/'faces'), val_holdout=4, iters=300, out_dir=str(tmp/'run'), degrade_on='cpu', preset='bicubic', **{**tiny, 'log_every': 20, 'val_every': 100})
trainer = Trainer(cfg)
untrained = evaluate_model(trainer.ema_model, trainer.val, trainer.device)
summary = trainer.fit()
print(json.dumps(summary, indent=1))
print(f"val PSNR: untrained {untrained:.2f} dB -> trained {summary['final_val_psnr']:.2f} dB (bicubic {summary['bicubic_val_psnr']:.2f})")
assert summary['final_val_psnr'] > untrained + 0.3
losses = [float(r['loss']) for r in RunLog._read(tmp/'run'/'log.csv')]
assert np.mean(losses[-4:]) < np.mean(losses[:2]), losses
test_eq(summary['steps'], 300)
for f in ['last.ckpt', 'best.pt', 'final.pt', 'log.csv', 'val.csv', 'curves.png', 'summary.json', 'config.json']:
    assert (tmp/'run'/f).exists(), f

# %%
from IPython.display import Image as IPImage
IPImage(filename=str(tmp/'run'/'curves.png'))

# %% [markdown]
# ## Resuming is exact -
#
# An interrupted run continues at the saved step and draws the same batches, degradations and noise as the
# uninterrupted one, so the next step's loss is identical (here with the torch degradation backend, the one used
# on GPUs, running on the CPU).

# %%
base = dict(train_hq=str(tmp/'faces'), iters=20, degrade_on='gpu', **{**tiny, 'log_every': 1, 'ckpt_every': 1000})
full = Trainer(TrainConfig(out_dir=str(tmp/'full'), **base)); full.fit()
part = Trainer(TrainConfig(out_dir=str(tmp/'part'), **base)); part.fit(stop_at=6)     # "interrupted" at step 6,
test_eq(load_checkpoint(tmp/'part'/'last.ckpt')['step'], 6)                           # inside a degrade_mix block
again = Trainer(TrainConfig(out_dir=str(tmp/'part'), **base)); again.fit()            # resumes at 6
la = {r['step']: r['loss'] for r in RunLog._read(tmp/'full'/'log.csv')}
lb = {r['step']: r['loss'] for r in RunLog._read(tmp/'part'/'log.csv')}
test_eq(sorted(lb, key=int), [str(i) for i in range(1, 21)])
test_eq([lb[str(i)] for i in range(7, 21)], [la[str(i)] for i in range(7, 21)])
print('step 7 loss, uninterrupted vs resumed:', la['7'], lb['7'])
for (k, v), (k2, v2) in zip(full.G.state_dict().items(), again.G.state_dict().items()): test_eq(v, v2)
for (k, v), (k2, v2) in zip(full.ema_model.state_dict().items(), again.ema_model.state_dict().items()): test_eq(v, v2)   # the EMA too
test_eq(again.ema.n, full.ema.n)

# %% [markdown]
# ### Sessions and the schedule
#
# A run longer than one sitting (Kaggle stops a kernel after 12 hours, Colab sooner) is several sessions of one
# schedule: `schedule_min` is the length of the learning-rate schedule in minutes trained over all sessions, and
# `session_min` stops this session (saving a checkpoint) so that the next one resumes where it stopped. Here a
# schedule of 1.2 s is trained in sessions of 0.3 s: each session stops on its own budget, and the second one
# continues the cosine where the first left it instead of restarting it.

# %%
sess = dict(train_hq=str(tmp/'faces'), degrade_on='gpu', schedule_min=0.02, session_min=0.005, warmup=0.0,
            **{**tiny, 'log_every': 1, 'ckpt_every': 1000, 'val_every': 10**6})
s1 = Trainer(TrainConfig(out_dir=str(tmp/'sess'), **sess)).fit()
lr1 = [float(r['lr']) for r in RunLog._read(tmp/'sess'/'log.csv')]
s2 = Trainer(TrainConfig(out_dir=str(tmp/'sess'), **sess)).fit()
lr2 = [float(r['lr']) for r in RunLog._read(tmp/'sess'/'log.csv')][len(lr1):]
print(f"session 1: {s1['steps']} steps, {60 * s1['minutes']:.2f} s, lr {lr1[0]:.2e} -> {lr1[-1]:.2e}; "
      f"session 2: to step {s2['steps']}, {60 * s2['minutes']:.2f} s in all, lr {lr2[0]:.2e} -> {lr2[-1]:.2e}")
test_eq((s1['stopped_by'], s2['stopped_by']), ('session budget', 'session budget'))
assert 0 < s1['steps'] < s2['steps'] and s1['minutes'] < s2['minutes'] < 0.02
assert lr2[0] <= lr1[-1] < lr1[0] and lr2[-1] < lr2[0]          # one cosine across both sessions, no restart

# %% [markdown]
# A broken checkpoint (say, truncated by a crash while copying it) stops with an error that names the file and
# says what to do; a loss that turns NaN stops the run and keeps the last good checkpoint.

# %%
(tmp/'part'/'last.ckpt').write_bytes(b'PK\x03\x04 truncated')
test_fail(lambda: Trainer(TrainConfig(out_dir=str(tmp/'part'), **base)).fit(), contains=str(tmp/'part'/'last.ckpt'))
bad = Trainer(TrainConfig(out_dir=str(tmp/'nan'), **{**base, 'ckpt_every': 2}))
bad.fit(stop_at=2)
good = (tmp/'nan'/'last.ckpt').read_bytes()
bad = Trainer(TrainConfig(out_dir=str(tmp/'nan'), **{**base, 'ckpt_every': 2}))
with torch.no_grad():
    for p_ in bad.G.parameters(): p_.fill_(float('nan'))
bad.resume_from = lambda path: None         # keep the poisoned weights instead of loading the checkpoint
test_fail(bad.fit, contains='last good checkpoint')
test_eq((tmp/'nan'/'last.ckpt').read_bytes(), good)


# %% [markdown]
# Fused Adam (the CUDA default) refuses some tensor layouts; the first step then falls back to the default
# implementation and training goes on.

# %%
class RefusingAdam(torch.optim.Adam):
    def step(self, *a, **k): raise RuntimeError('params, grads, exp_avgs, and exp_avg_sqs must have same dtype, device, and layout')
fb = Trainer(TrainConfig(out_dir=str(tmp/'fallback'), **base))
fb.opt_g = RefusingAdam(fb.G.parameters(), lr=1e-3, fused=True)
w0 = [q.detach().clone() for q in fb.G.parameters()]
fb.fit(stop_at=3)
assert type(fb.opt_g) is torch.optim.Adam and not fb.opt_g.defaults['fused']
assert any(not torch.equal(a_, b_) for a_, b_ in zip(w0, fb.G.parameters()))

# %% [markdown]
# `torch.compile` compiles at the first call, so a missing or broken compiler shows up there, not when the model is
# wrapped; the first step then falls back to the eager generator and the run goes on.

# %%
cp = Trainer(TrainConfig(out_dir=str(tmp/'compile'), **{**base, 'compile': 'on'}))
assert cp.forward is not cp.model
def broken_compiler(x): raise RuntimeError('InductorError: no working C++ compiler')
cp.forward = broken_compiler
cp.fit(stop_at=3)
assert cp.forward is cp.model and cp.step == 3

# %% [markdown]
# ## The GAN phase -
#
# Off by default. With `gan=True` the generator, started from PSNR-trained weights (`init_from`), trains on
# `pixel_weight`·L1 + `gan_weight`·BCE against `UNetDiscriminatorSN`, and the discriminator learns real faces from
# restored ones; both, with their optimisers, go into the checkpoint and resume with it.

# %%
gan_cfg = dict(train_hq=str(tmp/'faces'), degrade_on='gpu', init_from=str(tmp/'run'/'final.pt'), gan=True, disc_feat=8,
               **{**tiny, 'mse_finish': 0.0, 'log_every': 1, 'ckpt_every': 1000, 'iters': 6})
ganr = Trainer(TrainConfig(out_dir=str(tmp/'gan'), **gan_cfg))
g0 = {k: v.clone() for k, v in ganr.G.state_dict().items()}
test_eq(g0['conv_first.weight'], load_checkpoint(tmp/'run'/'final.pt')['params']['conv_first.weight'])   # started from init_from
d0 = [q.detach().clone() for q in ganr.D.parameters()]
gs = ganr.fit(stop_at=3)
assert all(math.isfinite(float(r['loss'])) for r in RunLog._read(tmp/'gan'/'log.csv'))
assert any(not torch.equal(a_, b_) for a_, b_ in zip(d0, ganr.D.parameters())), 'the discriminator did not train'
ck = load_checkpoint(tmp/'gan'/'last.ckpt')
assert ck['disc'] is not None and ck['opt_d'] is not None and ck['step'] == 3
gan2 = Trainer(TrainConfig(out_dir=str(tmp/'gan'), **gan_cfg))
gan2.resume_from(tmp/'gan'/'last.ckpt')                                              # the discriminator comes back too
test_eq(gan2.step, 3)
for k, v in ck['disc'].items(): test_eq(gan2.D.state_dict()[k], v)
gan2.fit(); test_eq(gan2.step, 6)


# %% [markdown]
# ## The command -
#
# `blindsr_train` exposes every `TrainConfig` field as a flag (`--batch-size 32`, `--generator-kwargs '{"num_block": 24}'`,
# `--no-hflip`), or reads them from a JSON/YAML file with `--config` (flags override the file). Under `torchrun` it
# runs one process per GPU: `torchrun --nproc_per_node=2 -m blindsr.train --train-hq … --time-budget-min 600`.

# %%
#| export
def _parse_value(annotation: str, text: str):
    "Parse a flag's text by the field's annotation ('int | None', 'dict', 'tuple', …)."
    if text.lower() in ('none', 'null') and 'None' in annotation: return None
    if annotation.split('|')[0].strip() == 'bool':
        if text.lower() not in ('true', 'false', '1', '0', 'on', 'off', 'yes', 'no'):
            raise ValueError(f'expected true or false, got {text!r}')
        return text.lower() in ('true', '1', 'on', 'yes')
    if 'dict' in annotation or 'tuple' in annotation or 'list' in annotation:
        v = json.loads(text)
        return tuple(v) if 'tuple' in annotation else v
    for t in (int, float):
        if annotation.split('|')[0].strip() == t.__name__: return t(text)
    return text


def config_parser() -> argparse.ArgumentParser:
    "An argparse parser with one flag per TrainConfig field (defaults left unset so a --config file can fill them)."
    ap = argparse.ArgumentParser(prog='blindsr_train', description='Train a blind face SR generator (blindsr).',
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument('--config', help='JSON or YAML file of TrainConfig fields (flags override it)')
    ap.add_argument('--print-config', action='store_true', help='print the resolved config as JSON and exit')
    for f in fields(TrainConfig):
        flag = '--' + f.name.replace('_', '-')
        default = f.default if f.default is not f.default_factory else f.default_factory()
        if isinstance(default, bool):
            ap.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                            help=f'(default: {default})')
        else:
            ann = str(f.type)
            ap.add_argument(flag, dest=f.name, type=lambda s, a=ann: _parse_value(a, s), default=argparse.SUPPRESS,
                            metavar=ann.split('|')[0].strip().upper(), help=f'(default: {default})')
    return ap


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    "TrainConfig from command-line flags and an optional --config file."
    a = vars(config_parser().parse_args(argv))
    base = {}
    if a.get('config'):
        path = Path(a['config'])
        text = path.read_text()
        if path.suffix.lower() in ('.yaml', '.yml'):
            try: import yaml
            except ImportError: raise SystemExit(f'{path}: reading YAML needs pyyaml (pip install pyyaml), or use JSON')
            base = yaml.safe_load(text) or {}
        else: base = json.loads(text)
        unknown = sorted(set(base) - {f.name for f in fields(TrainConfig)})
        if unknown: raise SystemExit(f'{path}: unknown TrainConfig fields {unknown}')
    over = {k: v for k, v in a.items() if k not in ('config', 'print_config')}
    cfg = TrainConfig(**{**base, **over})
    if a.get('print_config'):
        print(json.dumps(asdict(cfg), indent=1)); raise SystemExit(0)
    return cfg


def train_cli(argv: list[str] | None = None) -> int:
    "blindsr_train: train as the flags (or --config file) say; prints the summary JSON."
    try:
        cfg = config_from_args(argv)
        summary = Trainer(cfg).fit()
    except (ValueError, FileNotFoundError, CheckpointError, NonFiniteLossError) as e:
        print(f'blindsr_train: error: {e}', file=sys.stderr)
        return 2
    if int(os.environ.get('RANK', '0')) == 0: print(json.dumps(summary, indent=1))
    return 0


# %%
cf = tmp/'cfg.json'
cf.write_text(json.dumps({'batch_size': 8, 'iters': 100, 'generator_kwargs': {'num_block': 4}}))
c2 = config_from_args(['--config', str(cf), '--lr', '1e-3', '--no-hflip', '--time-budget-min', 'none', '--betas', '[0.9, 0.999]'])
test_eq((c2.batch_size, c2.iters, c2.lr, c2.hflip, c2.generator_kwargs, c2.time_budget_min, c2.betas),
        (8, 100, 1e-3, False, {'num_block': 4}, None, (0.9, 0.999)))
test_eq(train_cli(['--iters', '5', '--amp', 'fp8']), 2)

# %%
#| export
if __name__ == '__main__' and '__file__' in globals():   # python -m blindsr.train … (also under torchrun)
    sys.exit(train_cli())

# %% [markdown]
# # Training
# > A trainer that runs top to bottom on a Kaggle GPU, degrades on the GPU, validates with the organisers' metric, never loses work, resumes exactly, and scales to two GPUs — its loop on one screen, calling small named parts.

# %%
#| default_exp train

# %%
#| export
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import signal
import sys
import textwrap
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from blindsr.cli import (USER_ERRORS, ConfigError, HelpFormatter, Range, UserError, add_config_args, check_config,
                         check_output_dir, examples, read_manifest, run_cli, write_manifest)
from blindsr.core import PathLike, list_images, seed_everything
from blindsr.data import HQFaces, PairedFaces, find_data, holdout_split
from blindsr.degradation import PRESETS
from blindsr.device import get_device
from blindsr.lqset import degrade_folder
from blindsr.checkpoint import (BEST_WEIGHTS, FINAL_WEIGHTS, LAST_CHECKPOINT, PREVIOUS_CHECKPOINT, CheckpointError,
                                DiskFullError, export_weights, latest_training_checkpoint, load_checkpoint,
                                read_training_checkpoint, save_checkpoint)
from blindsr.metrics import bicubic_psnr, psnr_tensor
from blindsr.models import (GENERATOR_PARAM_CAP, GENERATORS, build_generator, check_generator, check_param_budget,
                            count_params)
from blindsr.batches import BatchConfig, TrainBatches
from blindsr.train_step import AdversarialLoss, StepConfig, TrainStep
from blindsr.distributed import init_distributed

# %%
#| hide
import errno
import io
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from unittest import mock
from IPython.display import Image as IPImage
from fastcore.test import test_eq, test_fail, test_close, test_ne
from blindsr.samples import synthetic_faces

def smooth_faces(folder, n, size=64, seed=0):
    "n synthetic 'faces' (size x size PNG): random colour fields, bicubic-smooth at 1/8 scale: learnable, not noise."
    return synthetic_faces(folder, n, size, seed, grid=size // 8, texture=0)

tmp = Path(tempfile.mkdtemp())
smooth_faces(tmp/'faces', 16)                  # the examples and checks below train on these faces


# %% [markdown]
# A training run is a short loop over small named parts, each in its own notebook and tested there:
#
# | part | notebook | answers |
# |---|---|---|
# | `TrainConfig`, the schedule, `prepare_data`, validation, `Trainer.fit`, `RunLog`, `blindsr_train` | here | what to train, for how long, on what, and how it went |
# | `TrainBatches` | `04c_batches` | the (hq, lq) batch of a step: faces, flips, degradation on the GPU or the CPU |
# | `TrainStep` | `04d_train_step` | one optimiser step: AMP, channels_last, compile, fused Adam, DDP, EMA, GAN |
# | `Distributed` | `04e_distributed` | which process this is; barrier, stop vote, "same weights?" |
# | `save_checkpoint`, `read_training_checkpoint` | `04b_checkpoint` | the training state on disk |

# %% [markdown]
# ## The configuration
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
    CHOICES = {'preset': tuple(PRESETS), 'degrade_on': ('auto', 'gpu', 'cpu'), 'gpu_cache': ('auto', 'on', 'off'),
               'generator': tuple(GENERATORS), 'loss': ('l1', 'charbonnier', 'mse'), 'amp': ('auto', 'bf16', 'fp16', 'off'),
               'channels_last': ('auto', 'on', 'off'), 'compile': ('auto', 'on', 'off'), 'schedule': ('cosine', 'constant')}
    RANGES = {'val_holdout': Range(0), 'val_limit': Range(1), 'degrade_group': Range(1), 'degrade_mix': Range(1),
              'workers': Range(0), 'param_cap': Range(1), 'batch_size': Range(1), 'accum': Range(1),
              'lr': Range(0, lo_open=True), 'weight_decay': Range(0), 'ema': Range(0, 1, hi_open=True),
              'grad_clip': Range(0, lo_open=True), 'seed': Range(0, 2 ** 32 - 1), 'iters': Range(1),
              'schedule_min': Range(0, lo_open=True), 'session_min': Range(0, lo_open=True),
              'time_budget_min': Range(0, lo_open=True), 'warmup': Range(0, 1, hi_open=True), 'min_lr': Range(0),
              'mse_finish': Range(0, 1), 'gan_weight': Range(0), 'pixel_weight': Range(0), 'disc_feat': Range(1),
              'disc_lr': Range(0, lo_open=True), 'log_every': Range(1), 'val_every': Range(1),
              'val_every_min': Range(0, lo_open=True), 'ckpt_every': Range(1)}
    METAVARS = {'train_hq': 'DIR', 'val_gt': 'DIR', 'val_lq': 'DIR', 'init_from': 'FILE', 'out_dir': 'DIR',
                'resume_from': 'FILE', 'generator_kwargs': 'JSON', 'betas': 'JSON', 'device': 'DEVICE'}
    # data
    train_hq: str | None = None          # folder of HQ training faces (e.g. 512x512); none: found by blindsr.data.find_data (Kaggle, Colab)
    val_gt: str | None = None            # folder of validation GT faces (none: hold out val_holdout faces of train_hq, or no validation)
    val_lq: str | None = None            # folder of their LQ, 1/4 the size, same names (none: made once from val_gt with preset, seed 0)
    val_holdout: int = 0                 # hold out the last N faces of train_hq for validation, when val_gt is not given (0: none)
    val_limit: int | None = None         # validate on the first N pairs only (none: all)
    preset: str = 'ai6126_2024'          # the degradation that makes the training LQ (blindsr.degradation.PRESETS)
    degrade_on: str = 'auto'             # where LQ are made: 'gpu' (torch backend on the training device), 'cpu' (DataLoader
                                         # workers), 'auto' (gpu on CUDA, else cpu)
    degrade_group: int | None = None     # faces sharing resize draws on the GPU (none: each degraded batch shares one)
    degrade_mix: int = 4                 # GPU path: degrade this many batches at once and serve them shuffled (mixing)
    gpu_cache: str = 'auto'              # keep all decoded HQ faces on the GPU: 'auto' (if < 25 % of its memory), 'on', 'off'
    workers: int | None = None           # DataLoader workers for degrade_on='cpu' (none: cores - 1, at most 8; 0: in this process)
    hflip: bool = True                   # flip faces horizontally at random, the augmentation the course advises
    # model
    generator: str = 'msrresnet'         # the network to train (blindsr.models.GENERATORS)
    generator_kwargs: dict = field(default_factory=dict)  # its constructor overrides, a JSON object, e.g. {"num_block": 24}
    param_cap: int = GENERATOR_PARAM_CAP # refuse generators with more trainable parameters than this (the course's limit)
    init_from: str | None = None         # start the generator from these weights (.pt, .ckpt or BasicSR .pth; e.g. for the GAN phase)
    # optimisation
    batch_size: int = 16                 # faces per optimiser step, all processes together
    accum: int = 1                       # split each batch into this many micro-batches (same maths, less memory); divides batch_size
    lr: float = 4e-4                     # peak learning rate (Adam)
    betas: tuple = (0.9, 0.99)           # Adam's betas, the decay of its gradient mean and of its square: a JSON list of two
    weight_decay: float = 0.0            # Adam's L2 weight decay (0: none)
    loss: str = 'l1'                     # the pixel loss
    ema: float = 0.999                   # EMA decay of the weights (0: off); the EMA weights are validated and saved
    ema_warmup: bool = True              # the EMA decay ramps up as min(ema, (1+step)/(10+step)), for short runs
    amp: str = 'auto'                    # mixed precision: 'auto' (bf16 on sm_80+, fp16 + GradScaler below, fp32 on CPU), 'bf16', 'fp16', 'off'
    channels_last: str = 'auto'          # channels_last memory format: 'auto' (on for CUDA sm_70+), 'on', 'off'
    compile: str = 'auto'                # torch.compile the generator: 'auto' (one CUDA process on sm_70+), 'on', 'off';
                                         # a compiler that fails at the first step falls back to eager
    grad_clip: float | None = None       # clip the gradient norm to this (none: no clipping)
    seed: int = 0                        # seeds the weights, the batches and the degradations: the same seed repeats a run
    device: str | None = None            # 'cpu', 'cuda', 'cuda:1', 'mps' (none: the best available)
    # schedule and budget
    iters: int | None = None             # optimiser steps; the schedule spans them (none: schedule_min sets the end)
    schedule_min: float | None = None    # minutes of training the learning-rate schedule spans, over all sessions (when iters is none)
    session_min: float | None = None     # stop (and save) after this many minutes of this session; a rerun resumes
    time_budget_min: float | None = None # one-session shorthand: sets schedule_min and session_min where they are unset
    schedule: str = 'cosine'             # the learning rate after the warm-up: 'cosine' (down to min_lr at the end) or 'constant'
    warmup: float = 0.02                 # fraction of the run with a linear warm-up of the learning rate
    min_lr: float = 1e-7                 # the learning rate the cosine ends at
    mse_finish: float = 0.2              # fraction of the run, at its end, trained with MSE (the score is PSNR; 0: never)
    # GAN
    gan: bool = False                    # train against UNetDiscriminatorSN (start from a PSNR model: init_from)
    gan_weight: float = 0.1              # weight of the adversarial loss
    pixel_weight: float = 1.0            # weight of the L1 loss in the GAN phase
    disc_feat: int = 32                  # the discriminator's width (features of its first layer)
    disc_lr: float = 1e-4                # the discriminator's learning rate (Adam)
    # output
    out_dir: str = 'runs/blindsr'        # the run's folder: checkpoints, weights (best.pt, final.pt), logs, curves
    log_every: int = 50                  # steps between loss logs (the only host syncs of the loop)
    val_every: int = 1000                # steps between validations (and at the end)
    val_every_min: float | None = None   # or minutes between validations (whichever comes first)
    ckpt_every: int = 2000               # steps between checkpoints (also at the end, on SIGTERM/Ctrl-C, at the budget)
    resume: bool = True                  # continue from out_dir's checkpoint (last.ckpt, else previous.ckpt) if it has one
    resume_from: str | None = None       # continue from this training checkpoint instead (e.g. out_dir/previous.ckpt)
    overwrite: bool = False              # start afresh in an out_dir holding an earlier run or other files, replacing the run's files
    progress: bool = True                # show a progress bar

    def __post_init__(self):
        if isinstance(self.compile, bool): self.compile = 'on' if self.compile else 'off'   # configs written before 'auto'
        check_config(self)                                  # types, CHOICES, RANGES
        if len(self.betas) != 2 or any(not isinstance(b, (int, float)) or isinstance(b, bool) or not 0 <= b < 1 for b in self.betas):
            raise ConfigError(f'TrainConfig.betas must be two numbers in [0, 1), like [0.9, 0.99], got {list(self.betas)}', 'betas')
        self.betas = tuple(float(b) for b in self.betas)
        if self.min_lr > self.lr:
            raise ConfigError(f'TrainConfig.min_lr {self.min_lr:g} is above lr {self.lr:g}: the cosine falls from lr to min_lr', 'min_lr')
        if self.time_budget_min is not None:
            if self.schedule_min is None and self.iters is None: self.schedule_min = self.time_budget_min
            if self.session_min is None: self.session_min = self.time_budget_min
        if self.iters is None and self.schedule_min is None:
            raise ConfigError('set iters, schedule_min (or time_budget_min) or both: the learning-rate schedule needs an end', 'iters')
        if self.batch_size % self.accum:
            raise ConfigError(f'batch_size {self.batch_size} must be divisible by accum {self.accum}', 'accum')
        if self.val_lq is not None and self.val_gt is None:
            raise ConfigError('val_lq is set but val_gt is not: give val_gt too (the GT faces of those LQ), or leave out val_lq', 'val_gt')
        if self.val_gt is not None and self.val_holdout:
            raise ConfigError('set either val_gt or val_holdout, not both', 'val_holdout')
        if self.device is not None:
            try: torch.device(self.device)
            except (RuntimeError, ValueError):
                raise ConfigError(f"TrainConfig.device {self.device!r} is not a device: use 'cpu', 'cuda', 'cuda:1' or 'mps' "
                                  '(or none: the best available)', 'device') from None
        try: check_generator(self.generator, self.generator_kwargs, self.param_cap)
        except ValueError as e: raise ConfigError(str(e), 'generator_kwargs') from None
        self.generator_kwargs = dict(self.generator_kwargs)


# %%
c = TrainConfig(iters=10)
test_eq(c.generator, 'msrresnet'); test_eq(json.loads(json.dumps(asdict(c)))['betas'], [0.9, 0.99])
test_fail(lambda: TrainConfig(iters=10, amp='fp8'), contains="amp must be one of")
test_fail(lambda: TrainConfig(), contains='schedule needs an end')
test_eq(TrainConfig(iters=1, compile=True).compile, 'on')     # a config file from before 'auto'
test_fail(lambda: TrainConfig(iters=1, compile='yes'), contains="compile must be one of")

# %% [markdown]
# The config checks itself whichever way it is filled (flags, a JSON file, Python), before any data is read:
# impossible numbers, unknown names, a generator that cannot be built or breaks the cap, settings that
# contradict each other. Each error is a `ConfigError` naming the field:

# %%
for kw, msg in [(dict(iters=0), 'iters must be >= 1 (or null), got 0'), (dict(iters='ten'), "iters must be a whole number or null, got 'ten'"),
                (dict(iters=5, batch_size=0), 'batch_size must be >= 1, got 0'), (dict(iters=5, accum=0), 'accum must be >= 1'),
                (dict(time_budget_min=-1), 'time_budget_min must be > 0'), (dict(iters=5, ema=1.5), 'ema must be in [0, 1)'),
                (dict(iters=5, lr=float('nan')), 'lr must be a finite number'), (dict(iters=5, seed=-1), 'seed must be in [0, 4294967295]'),
                (dict(iters=5, val_limit=0), 'val_limit must be >= 1'), (dict(iters=5, val_every=0), 'val_every must be >= 1'),
                (dict(iters=5, betas=(0.9,)), 'betas must be two numbers'), (dict(iters=5, min_lr=1.0), 'min_lr 1 is above lr'),
                (dict(iters=5, val_lq='lq'), 'val_lq is set but val_gt is not'), (dict(iters=5, device='gpu'), "device 'gpu' is not a device"),
                (dict(iters=5, preset='ai6126_2042'), "preset must be one of ai6126_2024"),
                (dict(iters=5, generator='msrresnett'), "generator must be one of msrresnet"),
                (dict(iters=5, generator_kwargs={'num_fet': 8}), "msrresnet takes no argument 'num_fet'"),
                (dict(iters=5, generator_kwargs={'num_feat': 128}), 'over the cap of 2,276,356')]:
    test_fail(lambda: TrainConfig(**kw), contains=msg)
try: TrainConfig(iters=5, generator_kwargs={'num_feat': -4})
except ConfigError as e: print(e); test_eq(e.field, 'generator_kwargs')
test_eq(TrainConfig(iters=5, lr=1, betas=[0.5, 0.9]).betas, (0.5, 0.9))   # JSON gives lists and whole numbers


# %% [markdown]
# ## The schedule is a pure function
#
# Learning rate and loss depend only on the run's progress `p ∈ [0, 1]`: the step over `iters`, or the minutes
# trained over the budget when no iteration count is given. So the cosine always reaches `min_lr` when the run
# ends, a resumed run continues on the same curve, and nothing but the step and elapsed time need saving.

# %%
#| export
def progress(cfg: TrainConfig, step: int, elapsed_s: float) -> float:
    "Fraction of the run done: by steps if `iters` is set, else by minutes trained (all sessions) against `schedule_min`."
    if cfg.iters is not None: return min(1.0, step / cfg.iters)
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


# %%
cc = TrainConfig(iters=1000, lr=1e-3, warmup=0.1, min_lr=0.0)
test_close(get_lr(cc, 0.05), 5e-4); test_close(get_lr(cc, 0.1), 1e-3); test_close(get_lr(cc, 1.0), 0.0, eps=1e-12)
test_close(get_lr(cc, 0.55), 5e-4, eps=1e-9)
test_eq(progress(TrainConfig(time_budget_min=10), 5, 300.0), 0.5)
test_eq(progress(TrainConfig(schedule_min=20, session_min=10), 5, 300.0), 0.25)   # the schedule spans sessions
test_eq((TrainConfig(time_budget_min=10).schedule_min, TrainConfig(time_budget_min=10).session_min), (10, 10))
test_eq(TrainConfig(iters=50, time_budget_min=10).schedule_min, None)            # iters sets the end; the shorthand only stops
test_eq([loss_name(cc, p) for p in (0.5, 0.79, 0.8)], ['l1', 'l1', 'mse'])


# %% [markdown]
# `TrainBatches` and `TrainStep` take only the fields they use, as `BatchConfig` and `StepConfig`: views of the
# one `TrainConfig`, with its field names and defaults (tested, so the three cannot drift apart).

# %%
#| export
def config_view(cls: type, cfg: TrainConfig):
    "The `cls` dataclass (BatchConfig, StepConfig) with the values of its fields in `cfg`."
    return cls(**{f.name: getattr(cfg, f.name) for f in fields(cls)})


# %%
train_defaults = {f.name: f.default for f in fields(TrainConfig)}
for cls_ in (BatchConfig, StepConfig):
    for f in fields(cls_): test_eq((f.name, f.default), (f.name, train_defaults[f.name]))
test_eq(config_view(StepConfig, TrainConfig(iters=1, accum=2)).accum, 2)


# %% [markdown]
# ## The data of a run
#
# `prepare_data` turns the config's paths into the faces a run uses, without touching the config: with no
# `train_hq` it asks `find_data` (on Kaggle, the attached dataset), and takes the validation pair found beside the
# training faces; `val_holdout` keeps the last N training faces out for validation (copied to `out_dir/val_gt`);
# validation GT without LQ gets its LQ made once, with the run's preset and seed 0, in `out_dir`. Only process 0
# writes (`write=True`); the others learn where the files are, and wait for them at a barrier.

# %%
#| export
@dataclass
class RunData:
    "The faces a run trains and validates on, as prepare_data found or made them."
    train: str | list            # the training faces: a folder, or the files left after the hold-out
    val_gt: Path | None          # validation GT folder (None: no validation)
    val_lq: Path | None          # its LQ folder
    made_val_lq: bool            # whether the LQ are made here from val_gt (the preset, seed 0)
    inputs: list = field(default_factory=list)  # what the run reads and never writes: the faces' folders, init_from


def prepare_data(cfg: TrainConfig,
                 out_dir: PathLike,  # the run's folder: held-out GT and made LQ go here
                 write: bool = True,  # copy held-out faces and make LQ (process 0); else only say where they are
                ) -> RunData:
    "Find, check, split and complete the run's data as `cfg` says; the config is left as it is."
    out_dir = Path(out_dir)
    train_hq, val_gt, val_lq = cfg.train_hq, cfg.val_gt, cfg.val_lq
    if train_hq is None:
        found = find_data().require('train_hq')
        train_hq = str(found.train_hq)
        if val_gt is None and cfg.val_holdout == 0 and found.val_gt is not None:
            val_gt, val_lq = found.val_gt, found.val_lq
    inputs = [Path(p) for p in (train_hq, val_gt, val_lq, cfg.init_from) if p is not None]
    for folder in (train_hq, val_gt, val_lq):             # missing, empty, a file: found now, before any work
        if folder is not None: list_images(folder)
    if cfg.init_from is not None and not Path(cfg.init_from).is_file():
        raise CheckpointError(f'init_from: no checkpoint or weights file at {cfg.init_from}')
    train = train_hq
    if cfg.val_holdout:
        try: train, held = holdout_split(train_hq, cfg.val_holdout)
        except ValueError as e: raise ConfigError(f'val_holdout {cfg.val_holdout}: {e}; hold out fewer', 'val_holdout') from None
        val_gt = out_dir / 'val_gt'
        if write:
            val_gt.mkdir(parents=True, exist_ok=True)
            for f in held:
                if not (val_gt / f.name).exists(): shutil.copyfile(f, val_gt / f.name)
    made = val_gt is not None and val_lq is None
    if made:
        val_lq = out_dir / f'val_lq_{cfg.preset}'
        if write: degrade_folder(val_gt, val_lq, cfg.preset, seed=0, progress=False)
    as_path = lambda p: None if p is None else Path(p)
    return RunData(train, as_path(val_gt), as_path(val_lq), made, inputs)


# %%
d = prepare_data(TrainConfig(train_hq=str(tmp/'faces'), val_holdout=4, iters=1, preset='bicubic'), tmp/'prep')
test_eq((len(d.train), d.val_gt, d.val_lq, d.made_val_lq), (12, tmp/'prep'/'val_gt', tmp/'prep'/'val_lq_bicubic', True))
test_eq(sorted(p.name for p in d.val_lq.iterdir() if p.suffix == '.png'), [f'{i:05d}.png' for i in range(12, 16)])
test_eq(d.inputs, [tmp/'faces'])
d2 = prepare_data(TrainConfig(train_hq=str(tmp/'faces'), val_gt=str(d.val_gt), val_lq=str(d.val_lq), iters=1), tmp/'prep2')
test_eq((d2.train, d2.made_val_lq, d2.inputs), (str(tmp/'faces'), False, [tmp/'faces', d.val_gt, d.val_lq]))
test_fail(lambda: prepare_data(TrainConfig(train_hq=str(tmp/'faces'), val_holdout=16, iters=1), tmp/'prep3'), contains='val_holdout 16: cannot hold out')
test_fail(lambda: prepare_data(TrainConfig(train_hq=str(tmp/'nope'), iters=1), tmp/'prep3', write=False), contains='image folder not found')
assert not (tmp/'prep3').exists()

# %% [markdown]
# ## The run's folder
#
# `out_dir` holds a run: its checkpoints, weights, logs and curves. Before any work, process 0 checks that it can
# be used without destroying anything: it must not be, contain or lie inside the data the run reads; a file there
# that the trainer did not write (its manifest `.blindsr-train.json` lists what it writes; a folder with a checkpoint
# from before the manifest counts as a run) is refused unless `overwrite`; and a *fresh* start never replaces an
# earlier run's checkpoints and weights: it resumes (`last.ckpt`, or `previous.ckpt` when that one is unreadable),
# resumes from a named checkpoint (`resume_from`), or, with `overwrite`, clears the earlier run's results first.

# %%
#| export
RUN_FILES = (LAST_CHECKPOINT, PREVIOUS_CHECKPOINT, BEST_WEIGHTS, FINAL_WEIGHTS, 'log.csv', 'val.csv', 'curves.png',
             'summary.json', 'config.json', 'run_config.json', 'val_gt')   # what a run writes in out_dir (and val_lq_<preset>/)
RESULT_FILES = (LAST_CHECKPOINT, PREVIOUS_CHECKPOINT, BEST_WEIGHTS, FINAL_WEIGHTS, 'log.csv', 'val.csv', 'curves.png',
                'summary.json')                                # an earlier run's results, which a fresh start would replace
KEPT_RESULTS = (LAST_CHECKPOINT, PREVIOUS_CHECKPOINT, BEST_WEIGHTS, FINAL_WEIGHTS)   # never replaced without overwrite


def is_run_file(name: str) -> bool:
    "Is `name` a file or folder the trainer writes in out_dir (or a temporary file of an interrupted write)?"
    if name.startswith('.') and name.endswith('.tmp'): name = name[1:].rsplit('.', 2)[0]
    return name in RUN_FILES or name.startswith('val_lq_')


def resume_checkpoint(cfg: TrainConfig, out: Path, log: Callable[[str], None] = print) -> Path | None:
    "The checkpoint the run continues from: resume_from, else out_dir's latest readable one (unless resume is off)."
    if cfg.resume_from is not None:
        read_training_checkpoint(cfg.resume_from, cfg.generator, cfg.generator_kwargs)    # exists, reads, this generator
        return Path(cfg.resume_from)
    if not cfg.resume or cfg.overwrite: return None
    found = latest_training_checkpoint(out, cfg.generator, cfg.generator_kwargs, log=log,
                                       fix='continue from another checkpoint with resume_from (--resume-from PATH), or '
                                           'start afresh with overwrite (--overwrite)')
    return found[0] if found else None


def open_run_folder(cfg: TrainConfig, out: Path,
                    inputs: list,  # what the run reads (RunData.inputs)
                    log: Callable[[str], None] = print,
                   ) -> Path | None:  # the checkpoint to resume from (None: a fresh start)
    "Check out_dir (process 0, before any work), clear an earlier run if `overwrite`, record the manifest; say where to start."
    legacy = (out / LAST_CHECKPOINT).exists() or (out / PREVIOUS_CHECKPOINT).exists()   # a run from before the manifest
    listed = set(read_manifest(out, 'train')['files'])
    own = lambda p: p.name in listed or is_run_file(p.name) and (legacy or p.name == 'run_config.json' or p.name.endswith('.tmp'))
    check_output_dir(out, inputs, command='train', own=own, overwrite=cfg.overwrite, flag='--out-dir')
    start = resume_checkpoint(cfg, out, log)
    earlier = [n for n in RESULT_FILES if (out / n).exists()]
    if start is None and not cfg.overwrite and any(n in KEPT_RESULTS for n in earlier):
        why = 'resume is off' if not cfg.resume else 'nothing to resume from'
        raise UserError(f'--out-dir {out} holds an earlier run ({", ".join(earlier)}) and {why}: a fresh start would replace '
                        'it. Use another --out-dir, --resume-from PATH to continue from a checkpoint, or --overwrite to '
                        'start afresh and replace that run')
    try:
        out.mkdir(parents=True, exist_ok=True)
        if start is None and cfg.overwrite:               # clear the earlier run, so nothing of it outlives the new one
            for n in earlier: (out / n).unlink()
        for p in out.iterdir():                            # temporary files of writes that a kill interrupted
            if p.name.startswith('.') and p.name.endswith('.tmp') and is_run_file(p.name) and p.is_file(): p.unlink()
        write_manifest(out, 'train', [*RUN_FILES, f'val_lq_{cfg.preset}'], generator=cfg.generator)
    except OSError as e:
        raise UserError(f'--out-dir {out} cannot be written ({e.strerror or e}): choose a folder you can write to') from None
    return start


# %% [markdown]
# A folder holding someone else's files, or the training faces, is refused before anything is read; an earlier
# run's weights are never replaced by a fresh start without `overwrite`:

# %%
runs = tmp/'folders'
base_cfg = dict(train_hq=str(tmp/'faces'), iters=1, preset='bicubic')
test_eq(open_run_folder(TrainConfig(out_dir=str(runs/'a'), **base_cfg), runs/'a', [tmp/'faces']), None)
test_eq(read_manifest(runs/'a', 'train')['generator'], 'msrresnet')
(runs/'a'/'best.pt').write_bytes(b'earlier weights'); (runs/'a'/'log.csv').write_text('step,loss')
test_fail(lambda: open_run_folder(TrainConfig(out_dir=str(runs/'a'), **base_cfg), runs/'a', [tmp/'faces']),
          contains='holds an earlier run (best.pt, log.csv) and nothing to resume from')
open_run_folder(TrainConfig(out_dir=str(runs/'a'), overwrite=True, **base_cfg), runs/'a', [tmp/'faces'])
test_eq(sorted(p.name for p in (runs/'a').iterdir()), ['.blindsr-train.json'])
(runs/'b').mkdir(); (runs/'b'/'thesis.tex').write_text('mine')
test_fail(lambda: open_run_folder(TrainConfig(out_dir=str(runs/'b'), **base_cfg), runs/'b', [tmp/'faces']), contains='(thesis.tex)')
test_fail(lambda: open_run_folder(TrainConfig(out_dir=str(tmp/'faces'/'run'), **base_cfg), tmp/'faces'/'run', [tmp/'faces']),
          contains='lies inside the input')
test_eq((runs/'b'/'thesis.tex').read_text(), 'mine'); assert not (tmp/'faces'/'run').exists()


# %% [markdown]
# ## Validation
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
# ## The trainer's parts
#
# The generator and its step come from the config: `build_train_step` builds the named generator, checks the
# parameter cap, starts it from `init_from` when given, adds the adversarial loss in the GAN phase, and hands it
# all to a `TrainStep` (`04d_train_step`).

# %%
#| export
def init_weights(generator: nn.Module, path: PathLike, arch: str) -> None:
    "Load the weights of `path` (its EMA weights if it has them) into `generator`: the start of a GAN phase, say."
    ck = load_checkpoint(path)
    sd = ck.get('params_ema') or ck['params']
    try: generator.load_state_dict(sd)
    except RuntimeError as e: raise CheckpointError(f'{path} does not fit generator {arch}: {e}') from e


def build_train_step(cfg: TrainConfig, device: torch.device,
                     ddp: bool = False,  # several processes: DistributedDataParallel
                     log: Callable[[str], None] = print,
                    ) -> TrainStep:
    "The TrainStep of `cfg`: its generator (under the cap, from init_from), optimiser, EMA and, with gan, adversarial loss."
    generator = build_generator(cfg.generator, **cfg.generator_kwargs)
    check_param_budget(generator, cfg.param_cap)
    if cfg.init_from: init_weights(generator, cfg.init_from, cfg.generator)
    adversarial = AdversarialLoss(device, num_feat=cfg.disc_feat, lr=cfg.disc_lr, generator_lr=cfg.lr, betas=cfg.betas,
                                  weight=cfg.gan_weight, pixel_weight=cfg.pixel_weight, ddp=ddp, log=log) if cfg.gan else None
    return TrainStep(generator, device, config_view(StepConfig, cfg), adversarial, ddp, log)


# %% [markdown]
# Time is the other thing the loop keeps. `RunClock` counts the minutes trained over all sessions (what a
# time-based schedule runs on), this session's seconds (what `session_min` stops), and the training images/s of
# each log window with the validation and checkpoint pauses left out. SIGTERM (Kaggle's stop button, a preempted
# machine) sets a flag that the loop reads at its next log point instead of killing the process mid-write, and a
# loss that turns NaN or inf stops the run with an error that names the last good checkpoint.

# %%
#| export
class RunClock:
    "Minutes trained over all sessions, this session's seconds, and training images/s per log window."
    def __init__(self, elapsed_before: float,  # seconds trained in earlier sessions
                 step: int):  # the step this session starts at
        self.before, self.start = elapsed_before, time.perf_counter()
        self.window, self.paused_s = (self.start, step), 0.0   # the log window's start (time, step); its pauses
        self.last_validation = self.start

    def session_s(self) -> float: return time.perf_counter() - self.start
    def elapsed(self) -> float: return self.before + self.session_s()

    @contextmanager
    def pause(self, validation: bool = False):
        "Time inside the block is left out of images/s (validation: it also restarts the val_every_min count)."
        t = time.perf_counter()
        try: yield
        finally:
            self.paused_s += time.perf_counter() - t
            if validation: self.last_validation = time.perf_counter()

    def validation_due(self, step: int, every: int, every_min: float | None) -> bool:
        "Every `every` steps, or `every_min` minutes after the last validation."
        return step % every == 0 or bool(every_min and time.perf_counter() - self.last_validation >= 60 * every_min)

    def images_per_s(self, step: int, batch: int) -> float:
        "Training images/s since the previous call, pauses left out; starts the next window."
        t, (t0, step0) = time.perf_counter(), self.window
        ips = (step - step0) * batch / max(1e-9, t - t0 - self.paused_s)
        self.window, self.paused_s = (t, step), 0.0
        return ips


class NonFiniteLossError(FloatingPointError):
    "The loss became NaN or inf; the message names the step and the last good checkpoint."


@contextmanager
def sigterm_calls(handler: Callable[[], None]):
    "Inside the block SIGTERM calls `handler` instead of ending the process (main thread only; restored after)."
    old = None
    if threading.current_thread() is threading.main_thread():
        try: old = signal.signal(signal.SIGTERM, lambda signum, frame: handler())
        except ValueError: old = None
    try: yield
    finally:
        if old is not None: signal.signal(signal.SIGTERM, old)


def weights_checksum(model: nn.Module) -> torch.Tensor:
    "(1,) float64 on the model's device: the sum of all its parameters, to compare the copies processes hold."
    return torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().view(1)


# %%
clock = RunClock(60.0, step=10)
with clock.pause(): time.sleep(0.05)
assert clock.elapsed() >= 60.05 and clock.session_s() < 5
assert clock.images_per_s(12, 4) > 8 / clock.session_s()                  # the pause is left out
test_eq((clock.validation_due(20, 10, None), clock.validation_due(21, 10, None), clock.validation_due(21, 10, 1e-9)), (True, False, True))
if threading.current_thread() is threading.main_thread():      # (a signal handler can only be set there)
    fired, before = [], signal.getsignal(signal.SIGTERM)
    with sigterm_calls(lambda: fired.append('SIGTERM')): os.kill(os.getpid(), signal.SIGTERM); time.sleep(0.05)
    test_eq(fired, ['SIGTERM']); test_eq(signal.getsignal(signal.SIGTERM), before)


# %% [markdown]
# ## The trainer
#
# `Trainer(cfg)` sets the parts up: this process's place (`init_distributed`), the data (`prepare_data`), the
# batches (`TrainBatches`) and the step (`build_train_step`). `fit()` is the loop, on one screen: per step, the
# schedule's learning rate and loss at the run's progress, the step's batch, one optimiser step; every
# `log_every` steps the loss is read (the loop's only wait for the GPU: a NaN stops the run here), and the
# processes vote whether to stop (the session budget, SIGTERM); every `val_every` steps (or `val_every_min`
# minutes) process 0 validates, and every `ckpt_every` steps it saves. At the end, the final weights are scored and
# exported and `summary.json` written. Checkpoints are also written at the end, at the budget, on SIGTERM and on
# Ctrl-C; a rerun resumes from `last.ckpt`, and with the step it resumes the batches, the EMA's decay and the
# schedule, so the resumed run repeats the uninterrupted one exactly.
#
# With `torchrun --nproc_per_node=2 -m blindsr.train …` (Kaggle's T4×2) each process degrades and trains on its
# own share of every batch, DistributedDataParallel averages the gradients, and process 0 validates, logs and saves.

# %%
#| export
class Trainer:
    "Train a generator as `cfg` says; `fit()` runs to the end (or the budget) and returns a summary dict."
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.dist = init_distributed(cfg.device)
        self.device = self.dist.device
        if cfg.batch_size % (self.dist.world * cfg.accum):
            raise ValueError(f'batch_size {cfg.batch_size} must be divisible by processes × accum = {self.dist.world * cfg.accum}')
        self.out = Path(cfg.out_dir)
        self.resume_path: Path | None = None             # the checkpoint fit() continues from
        self.saved: tuple[Path, int] | None = None       # (file, step) of the last checkpoint this run saved or resumed
        if self.dist.is_main:                            # every input and the output folder, before any work
            self.resume_path = open_run_folder(cfg, self.out, prepare_data(cfg, self.out, write=False).inputs, self.log)
        seed_everything(cfg.seed + self.dist.rank)
        self.data = prepare_data(cfg, self.out, write=self.dist.is_main)
        self.dist.barrier()                              # process 0 has written the held-out faces and their LQ
        if not self.dist.is_main: self.resume_path = resume_checkpoint(cfg, self.out, log=lambda msg: None)
        # resumed from previous.ckpt (last.ckpt unreadable, or skipped with resume_from): the first save replaces
        # last.ckpt without keeping it, so previous.ckpt stays the checkpoint this run continued from
        self._skipped_last = (self.dist.is_main and self.resume_path == self.out / PREVIOUS_CHECKPOINT and
                              (self.out / LAST_CHECKPOINT).exists())
        self.val = PairedFaces(self.data.val_gt, self.data.val_lq, limit=cfg.val_limit) if self.data.val_gt else None
        faces = HQFaces(self.data.train, cache=True, progress=cfg.progress and self.dist.is_main)
        self.batches = TrainBatches(faces, config_view(BatchConfig, cfg), self.device, self.dist.rank, self.dist.world)
        self.train_step = build_train_step(cfg, self.device, ddp=self.dist.world > 1, log=self.log)
        self.elapsed, self.best_psnr, self.bicubic = 0.0, -math.inf, None     # seconds trained; best val PSNR; bicubic's
        self.stop_reason: str | None = None
        self._val_on_device, self._plotted = None, -math.inf

    def log(self, msg: str) -> None:
        if self.dist.is_main: tqdm.write(msg)

    def fit(self, stop_at: int | None = None,  # stop (and save) when this step is reached, as if interrupted
           ) -> dict:  # the summary, also written to out_dir/summary.json
        "Train (or resume) to the end of the schedule, the session budget, SIGTERM, Ctrl-C or `stop_at`."
        cfg, ts, dist, last = self.cfg, self.train_step, self.dist, self.out / LAST_CHECKPOINT
        if self.resume_path is not None: self.resume_from(self.resume_path)
        self.start_logs()                                 # log.csv/val.csv cut at the resumed step, config.json, bicubic
        total = cfg.iters if cfg.iters is not None else 10 ** 12   # without iters, the schedule's minutes end the run
        clock = RunClock(self.elapsed, ts.steps)
        batches = self.batches.stream(ts.steps, total)    # (hq, lq) per step, float in [0, 1] on the device
        loss_sum, n_losses = torch.zeros((), device=self.device), 0
        bar = tqdm(total=cfg.iters, initial=ts.steps, desc=f'train {cfg.generator}', unit='it',
                   disable=not (cfg.progress and dist.is_main), dynamic_ncols=True)
        try:
            with sigterm_calls(lambda: setattr(self, 'stop_reason', 'SIGTERM')):
                while ts.steps < total:
                    self.elapsed = clock.elapsed()
                    p = progress(cfg, ts.steps, self.elapsed)     # the fraction of the run done: lr and loss follow it
                    if p >= 1.0 and cfg.iters is None: break
                    lr = get_lr(cfg, p)
                    hq, lq = next(batches)
                    loss_sum += ts.step(hq, lq, lr, loss_name(cfg, p))        # one optimiser step: ts.steps + 1
                    n_losses += 1
                    bar.update(1)
                    if ts.steps % cfg.log_every == 0 or ts.steps == total:   # the loop's only wait for the GPU
                        self.log_loss((loss_sum / n_losses).item(), lr, clock, bar)   # a NaN stops the run here
                        loss_sum.zero_(); n_losses = 0
                        over_budget = cfg.session_min is not None and clock.session_s() >= 60 * cfg.session_min
                        if dist.stop_vote(over_budget or self.stop_reason is not None):   # one stops: all stop
                            self.stop_reason = self.stop_reason or 'session budget'
                            break
                    if self.val is not None and clock.validation_due(ts.steps, cfg.val_every, cfg.val_every_min):
                        with clock.pause(validation=True): self.validate(clock.elapsed())
                    if ts.steps % cfg.ckpt_every == 0:
                        with clock.pause(): self.save()
                    if stop_at is not None and ts.steps >= stop_at:
                        self.stop_reason = f'stop_at={stop_at}'
                        break
        except KeyboardInterrupt:
            self.stop_reason = 'KeyboardInterrupt'
            self.save(); self.log(f'interrupted: checkpoint saved at step {ts.steps} in {last}')
            raise
        finally: bar.close()
        self.elapsed = clock.elapsed()
        return self.finish()

    # ---- the parts fit calls --------------------------------------------------------------------------------
    def resume_from(self, path: PathLike) -> None:
        "Continue from a training checkpoint: the step's whole state, the minutes trained, the best PSNR."
        ck = read_training_checkpoint(path, self.cfg.generator, self.cfg.generator_kwargs, self.device)
        self.train_step.load_state_dict(ck)
        self.elapsed, self.best_psnr = ck['elapsed'], ck['best_psnr']
        self.saved = (Path(path), self.train_step.steps)
        self.log(f'resumed from {path} at step {self.train_step.steps} ({self.elapsed / 60:.1f} min trained)')

    def start_logs(self) -> None:
        "The run's logs, cut at the step it starts from; config.json; the bicubic PSNR of the validation set."
        self.runlog = RunLog(self.out, self.train_step.steps, enabled=self.dist.is_main)
        if self.dist.is_main: (self.out / 'config.json').write_text(json.dumps(asdict(self.cfg), indent=1))
        self.bicubic = bicubic_val_psnr(self.val) if (self.val is not None and self.dist.is_main) else None

    def log_loss(self, loss: float, lr: float, clock: RunClock, bar) -> None:
        "Log the window's mean loss and training images/s; a NaN or inf loss stops the run (NonFiniteLossError)."
        step = self.train_step.steps
        if not math.isfinite(loss):
            raise NonFiniteLossError(f'loss became {loss} around step {step}: training stopped. {self.kept_checkpoint()}; '
                                     'lower lr, or set amp="off" (--amp off)')
        ips = clock.images_per_s(step, self.cfg.batch_size)
        self.runlog.train(step, clock.elapsed(), lr, loss, ips)
        bar.set_postfix(loss=f'{loss:.4f}', img_s=f'{ips:.0f}', val=f'{self.best_psnr:.2f}' if self.best_psnr > -math.inf else '-')

    def validate(self, elapsed: float) -> None:
        "Score the averaged generator (process 0) and redraw the curves, at most once a minute."
        if not self.dist.is_main: return
        self.score(elapsed)
        if time.perf_counter() - self._plotted >= 60:
            self.runlog.plot(); self._plotted = time.perf_counter()

    def score(self, elapsed: float) -> float:
        "Validation PSNR of the averaged generator, logged; a new best is exported to best.pt."
        if self._val_on_device is None: self._val_on_device = val_batches(self.val, self.device)
        ts = self.train_step
        v = evaluate_model(ts.averaged, self._val_on_device, self.device, channels_last=ts.channels_last)
        if v > self.best_psnr:
            self.best_psnr = v
            self.export(BEST_WEIGHTS, v)
        self.runlog.val(ts.steps, elapsed, v, self.bicubic)
        return v

    def export(self, name: str, val_psnr: float | None) -> Path:
        "Write the averaged generator to out_dir/name with how far it got (step, scores, config)."
        return export_weights(self.out / name, self.train_step.averaged, self.cfg.generator, self.cfg.generator_kwargs,
                              {'step': self.train_step.steps, 'val_psnr': val_psnr, 'bicubic_psnr': self.bicubic,
                               'cfg': asdict(self.cfg)})

    def state(self) -> dict:
        "The training checkpoint's contents (blindsr.checkpoint.save_checkpoint adds its format)."
        return {'arch': self.cfg.generator, 'arch_kwargs': dict(self.cfg.generator_kwargs), **self.train_step.state_dict(),
                'elapsed': self.elapsed, 'best_psnr': self.best_psnr, 'cfg': asdict(self.cfg), 'world': self.dist.world}

    def save(self, name: str = LAST_CHECKPOINT) -> Path | None:
        "Write the full training state atomically (process 0), keeping the one before; never weights that are NaN or inf."
        if not self.dist.is_main: return None
        step = self.train_step.steps
        if not math.isfinite(weights_checksum(self.train_step.generator).item()):
            raise NonFiniteLossError(f'the weights became NaN or inf by step {step}: training stopped without saving them. '
                                     f'{self.kept_checkpoint()}; lower lr, or set amp="off" (--amp off)')
        if self._skipped_last and name == LAST_CHECKPOINT: (self.out / name).unlink(missing_ok=True); self._skipped_last = False
        again = self.saved is not None and self.saved[1] == step and Path(self.saved[0]) == self.out / name
        try: path = save_checkpoint(self.out / name, self.state(), keep_previous=not again)   # previous: an earlier step
        except DiskFullError as e:
            raise DiskFullError(f'{e}. Training stopped at step {step}; {self.kept_checkpoint()}: rerun the same command to '
                                'resume from it') from e
        self.saved = (path, step)
        return path

    def kept_checkpoint(self) -> str:
        "Which checkpoint holds the run now, for messages (checked on disk)."
        last = self.out / LAST_CHECKPOINT
        if self.saved is not None and Path(self.saved[0]).exists():
            return f'the last good checkpoint is kept: {self.saved[0]} (step {self.saved[1]})'
        if last.exists(): return f'the last good checkpoint is kept: {last}'
        return f'no checkpoint was saved yet (one every ckpt_every={self.cfg.ckpt_every} steps)'

    def finish(self) -> dict:
        "Score and export the final weights, save, and write summary.json and the curves."
        cfg, ts, dist = self.cfg, self.train_step, self.dist
        final_psnr = self.score(self.elapsed) if self.val is not None and dist.is_main else None
        agree = dist.all_agree(weights_checksum(ts.generator))
        self.save()
        if dist.is_main: self.export(FINAL_WEIGHTS, final_psnr)
        summary = {'steps': ts.steps, 'minutes': self.elapsed / 60, 'stopped_by': self.stop_reason or 'end',
                   'final_val_psnr': final_psnr, 'best_val_psnr': self.best_psnr if self.best_psnr > -math.inf else None,
                   'bicubic_val_psnr': self.bicubic, 'generator': cfg.generator, 'params': count_params(ts.generator),
                   'world': dist.world, 'ranks_agree': agree, 'device': str(self.device),
                   'amp': str(ts.amp_dtype).replace('torch.', '') if ts.amp_dtype else 'fp32',
                   'compiled': ts.compiled is not None,
                   'images_per_s': self.runlog.mean_ips(), 'degrade_on': self.batches.degrade_on,
                   'images_per_s_wall': ts.steps * cfg.batch_size / max(1e-9, self.elapsed)}
        if self.device.type == 'cuda': summary['peak_mem_gb'] = torch.cuda.max_memory_allocated(self.device) / 1e9
        if dist.is_main:
            (self.out / 'summary.json').write_text(json.dumps(summary, indent=1))
            self.runlog.plot()
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
            rows = [r for r in self.read(f) if int(r['step']) <= resume_step] if resume_step else []
            with open(f, 'w', newline='') as fh:
                w = csv.DictWriter(fh, fieldnames=self.heads[k]); w.writeheader(); w.writerows(rows)

    @staticmethod
    def read(f: PathLike) -> list[dict]:
        "The rows of one of the run's CSV files (log.csv, val.csv) as dicts of text; [] if it does not exist."
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
        rows = self.read(self.files['train'])[1:]      # skip the first window (warm-up)
        return float(np.mean([float(r['images_per_s']) for r in rows])) if rows else None

    def plot(self, path: PathLike | None = None):
        "curves.png: training loss against steps, validation PSNR against minutes (with the bicubic line)."
        if not self.enabled: return None
        import matplotlib
        matplotlib.use('Agg', force=False)
        import matplotlib.pyplot as plt
        tr, va = self.read(self.files['train']), self.read(self.files['val'])
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
# ## A run on generated faces
#
# A tiny MSRResNet (16 features, 2 blocks) on 16 generated 64×64 faces, on the CPU with LQ made in the loader (the
# numpy/OpenCV backend), with the plain `bicubic` preset so that a few seconds of training show: the loss falls, the
# validation PSNR rises above the untrained network's, and the run leaves its checkpoint, weights, logs and
# curves behind.

# %%
#| exec_doc
tiny = dict(generator='msrresnet', generator_kwargs={'num_feat': 16, 'num_block': 2}, batch_size=4, lr=2e-3, ema=0.9,
            log_every=5, val_every=20, ckpt_every=20, progress=False, workers=0, mse_finish=0.0)
cfg = TrainConfig(train_hq=str(tmp/'faces'), val_holdout=4, iters=300, out_dir=str(tmp/'run'), degrade_on='cpu', preset='bicubic', **{**tiny, 'log_every': 20, 'val_every': 100})
trainer = Trainer(cfg)
untrained = evaluate_model(trainer.train_step.averaged, trainer.val, trainer.device)
summary = trainer.fit()
print(json.dumps(summary, indent=1))
print(f"val PSNR: untrained {untrained:.2f} dB -> trained {summary['final_val_psnr']:.2f} dB (bicubic {summary['bicubic_val_psnr']:.2f})")
assert summary['final_val_psnr'] > untrained + 0.3
losses = [float(r['loss']) for r in RunLog.read(tmp/'run'/'log.csv')]
assert np.mean(losses[-4:]) < np.mean(losses[:2]), losses
test_eq(summary['steps'], 300)
for f in ['last.ckpt', 'best.pt', 'final.pt', 'log.csv', 'val.csv', 'curves.png', 'summary.json', 'config.json']:
    assert (tmp/'run'/f).exists(), f

# %%
#| exec_doc
IPImage(filename=str(tmp/'run'/'curves.png'))

# %% [markdown]
# ## Resuming is exact
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
la = {r['step']: r['loss'] for r in RunLog.read(tmp/'full'/'log.csv')}
lb = {r['step']: r['loss'] for r in RunLog.read(tmp/'part'/'log.csv')}
test_eq(sorted(lb, key=int), [str(i) for i in range(1, 21)])
test_eq([lb[str(i)] for i in range(7, 21)], [la[str(i)] for i in range(7, 21)])
print('step 7 loss, uninterrupted vs resumed:', la['7'], lb['7'])
for (k, v), (k2, v2) in zip(full.train_step.generator.state_dict().items(), again.train_step.generator.state_dict().items()): test_eq(v, v2)
for (k, v), (k2, v2) in zip(full.train_step.averaged.state_dict().items(), again.train_step.averaged.state_dict().items()): test_eq(v, v2)   # the EMA too
test_eq(again.train_step.steps, full.train_step.steps)

# %% [markdown]
# ### Sessions and the schedule
#
# A run longer than one sitting (Kaggle stops a kernel after 12 hours, Colab sooner) is several sessions of one
# schedule: `schedule_min` is the length of the learning-rate schedule in minutes trained over all sessions, and
# `session_min` stops this session (saving a checkpoint) so that the next one resumes where it stopped. Here a
# schedule of 3 s is trained in sessions of 0.3 s: each session stops on its own budget, and the second one
# continues the cosine where the first left it instead of restarting it (however few steps a loaded machine
# fits into 0.3 s: the second session's first learning rate is below the first session's, never back at the peak).

# %%
sess = dict(train_hq=str(tmp/'faces'), degrade_on='gpu', schedule_min=0.05, session_min=0.005, warmup=0.0,
            **{**tiny, 'log_every': 1, 'ckpt_every': 1000, 'val_every': 10**6})
s1 = Trainer(TrainConfig(out_dir=str(tmp/'sess'), **sess)).fit()
lr1 = [float(r['lr']) for r in RunLog.read(tmp/'sess'/'log.csv')]
s2 = Trainer(TrainConfig(out_dir=str(tmp/'sess'), **sess)).fit()
lr2 = [float(r['lr']) for r in RunLog.read(tmp/'sess'/'log.csv')][len(lr1):]
print(f"session 1: {s1['steps']} steps, {60 * s1['minutes']:.2f} s, lr {lr1[0]:.2e} -> {lr1[-1]:.2e}; "
      f"session 2: to step {s2['steps']}, {60 * s2['minutes']:.2f} s in all, lr {lr2[0]:.2e} -> {lr2[-1]:.2e}")
test_eq((s1['stopped_by'], s2['stopped_by']), ('session budget', 'session budget'))
assert 0 < s1['steps'] < s2['steps'] and s1['minutes'] < s2['minutes'] < 0.05
assert lr2[0] <= lr1[-1] and lr2[0] < lr1[0] and lr2[-1] <= lr2[0]   # one cosine across both sessions, no restart

# %% [markdown]
# ### Faults: a broken checkpoint, a full disk, a loss that turns NaN
#
# Each save keeps the checkpoint before it as `previous.ckpt`. A `last.ckpt` that a crash or a bad copy cut
# short is reported, and the run resumes from `previous.ckpt` instead: here the resumed run above, whose
# `last.ckpt` (step 20) is cut short, resumes from step 6 and repeats the uninterrupted run's losses exactly.

# %%
(tmp/'part'/'last.ckpt').write_bytes((tmp/'part'/'last.ckpt').read_bytes()[:2000])
with redirect_stdout(io.StringIO()) as said: fb = Trainer(TrainConfig(out_dir=str(tmp/'part'), **base))
print(said.getvalue().strip())
assert 'last.ckpt is not a readable checkpoint: it is cut short' in said.getvalue() and 'Resuming from' in said.getvalue()
test_eq(fb.resume_path, tmp/'part'/'previous.ckpt')
with redirect_stdout(io.StringIO()): fb.fit()
lb = {r['step']: r['loss'] for r in RunLog.read(tmp/'part'/'log.csv')}
test_eq([lb[str(i)] for i in range(7, 21)], [la[str(i)] for i in range(7, 21)])
test_eq([load_checkpoint(tmp/'part'/n)['step'] for n in ('last.ckpt', 'previous.ckpt')], [20, 6])   # the broken one is gone

# %% [markdown]
# A full disk while saving (simulated: the write fails with `ENOSPC` half-way) stops the run with an error that
# says how much the checkpoint needs, what to free, and which checkpoint holds the run; both checkpoints are left
# as they were, and the rerun resumes from them. An unreadable checkpoint with nothing to fall back to stops
# before any work, naming the file and the ways on.

# %%
kept = {n: (tmp/'part'/n).read_bytes() for n in ('last.ckpt', 'previous.ckpt')}
def full_disk(obj, f): f.write(b'half a checkpoint'); raise OSError(errno.ENOSPC, 'No space left on device')
longer = {**base, 'iters': 24}
with mock.patch('torch.save', full_disk), redirect_stdout(io.StringIO()):
    test_fail(lambda: Trainer(TrainConfig(out_dir=str(tmp/'part'), **longer)).fit(), contains='no space left on the disk of')
    try: Trainer(TrainConfig(out_dir=str(tmp/'part'), **longer)).fit()
    except DiskFullError as e: msg = str(e)
print(msg)
assert 'Free space on that disk' in msg and 'Training stopped at step 24' in msg and '(step 20): rerun the same command' in msg
test_eq({n: (tmp/'part'/n).read_bytes() for n in kept}, kept)
test_eq([p.name for p in (tmp/'part').iterdir() if p.name.endswith('.tmp')], [])
with redirect_stdout(io.StringIO()): test_eq(Trainer(TrainConfig(out_dir=str(tmp/'part'), **longer)).fit()['steps'], 24)
for n in ('last.ckpt', 'previous.ckpt'): (tmp/'part'/n).write_bytes(b'PK\x03\x04 cut')
test_fail(lambda: Trainer(TrainConfig(out_dir=str(tmp/'part'), **base)), contains='no readable checkpoint is left in')

# %% [markdown]
# A loss that turns NaN stops the run and keeps the last good checkpoint, naming it; weights that are NaN or inf
# are never saved over it. (The fall-backs of fused Adam and of `torch.compile` at the first step are tested with
# `TrainStep`, in `04d_train_step`.)

# %%
bad = Trainer(TrainConfig(out_dir=str(tmp/'nan'), **{**base, 'ckpt_every': 2}))
bad.fit(stop_at=2)
good = (tmp/'nan'/'last.ckpt').read_bytes()
bad = Trainer(TrainConfig(out_dir=str(tmp/'nan'), **{**base, 'ckpt_every': 2}))
with torch.no_grad():
    for p_ in bad.train_step.generator.parameters(): p_.fill_(float('nan'))
bad.resume_from = lambda path: None         # keep the poisoned weights instead of loading the checkpoint
test_fail(bad.fit, contains=f"last good checkpoint is kept: {tmp/'nan'/'last.ckpt'}")
test_eq((tmp/'nan'/'last.ckpt').read_bytes(), good)
test_fail(bad.save, contains='the weights became NaN or inf by step')
test_eq((tmp/'nan'/'last.ckpt').read_bytes(), good)

# %% [markdown]
# ## The GAN phase
#
# Off by default. With `gan=True` the generator, started from PSNR-trained weights (`init_from`), trains on
# `pixel_weight`·L1 + `gan_weight`·BCE against `UNetDiscriminatorSN` (`AdversarialLoss`, in `04d_train_step`), and
# the discriminator learns real faces from restored ones; both, with their optimisers, go into the checkpoint and
# resume with it.

# %%
gan_cfg = dict(train_hq=str(tmp/'faces'), degrade_on='gpu', init_from=str(tmp/'run'/'final.pt'), gan=True, disc_feat=8,
               **{**tiny, 'mse_finish': 0.0, 'log_every': 1, 'ckpt_every': 1000, 'iters': 6})
ganr = Trainer(TrainConfig(out_dir=str(tmp/'gan'), **gan_cfg))
g0 = {k: v.clone() for k, v in ganr.train_step.generator.state_dict().items()}
test_eq(g0['conv_first.weight'], load_checkpoint(tmp/'run'/'final.pt')['params']['conv_first.weight'])   # started from init_from
disc = ganr.train_step.adversarial.discriminator
d0 = [q.detach().clone() for q in disc.parameters()]
gs = ganr.fit(stop_at=3)
assert all(math.isfinite(float(r['loss'])) for r in RunLog.read(tmp/'gan'/'log.csv'))
assert any(not torch.equal(a_, b_) for a_, b_ in zip(d0, disc.parameters())), 'the discriminator did not train'
ck = load_checkpoint(tmp/'gan'/'last.ckpt')
assert ck['disc'] is not None and ck['opt_d'] is not None and ck['step'] == 3
gan2 = Trainer(TrainConfig(out_dir=str(tmp/'gan'), **gan_cfg))
gan2.resume_from(tmp/'gan'/'last.ckpt')                                              # the discriminator comes back too
test_eq(gan2.train_step.steps, 3)
for k, v in ck['disc'].items(): test_eq(gan2.train_step.adversarial.discriminator.state_dict()[k], v)
gan2.fit(); test_eq(gan2.train_step.steps, 6)

# %% [markdown]
# ## The command
#
# `blindsr_train` exposes every `TrainConfig` field as a flag (`--batch-size 32`, `--generator-kwargs '{"num_block": 24}'`,
# `--no-hflip`), documented by the field's comment, grouped by its heading, with its choices, range and default
# (`blindsr.cli.add_config_args`), or reads them from a JSON/YAML file with `--config` (flags override the file).
# Under `torchrun` it runs one process per GPU: `torchrun --nproc_per_node=2 -m blindsr.train --train-hq … --time-budget-min 600`.
#
# Every mistake is one line naming the flag (or the `--config` file) and exit code 2, found before any face is
# decoded; Ctrl-C saves a checkpoint and says at which step, exit code 130.

# %%
#| export
TRAIN_EXAMPLES = examples(
    ('one hour on the best device, validated on the official pairs; rerun the same command to resume',
     'blindsr_train --train-hq data/train/GT --val-gt data/val/GT --val-lq data/val/LQ --time-budget-min 60 --out-dir runs/hour'),
    ('2,000 steps of the 24-block generator on your faces, the last 20 held out for validation',
     'blindsr_train --train-hq faces --val-holdout 20 --iters 2000 --generator msrresnet_deep --out-dir runs/deep'),
    ("a run's config again with one field changed, in a new folder",
     'blindsr_train --config runs/hour/config.json --lr 2e-4 --out-dir runs/hour_lr2e-4'),
    ('continue a run from the checkpoint before its last one',
     'blindsr_train --config runs/hour/config.json --resume-from runs/hour/previous.ckpt'),
    ('two GPUs (one process each)', 'torchrun --nproc_per_node=2 -m blindsr.train --train-hq data/train/GT --time-budget-min 600'),
    note='Exit status: 0 trained (or stopped by its budget or SIGTERM, checkpoint saved), 2 a mistake in the flags, '
         'the data or a checkpoint (one line saying which), 130 interrupted by Ctrl-C (checkpoint saved).')


def config_parser() -> argparse.ArgumentParser:
    "The argparse parser of blindsr_train: --config, --print-config and one flag per TrainConfig field, by group."
    ap = argparse.ArgumentParser(
        prog='blindsr_train', epilog=TRAIN_EXAMPLES, formatter_class=HelpFormatter,
        description=textwrap.fill('Train a blind face super-resolution generator (x4: 128x128 LQ to 512x512) on HQ faces, '
                                  'their LQ made on the fly with a degradation preset; validate with the organisers\' PSNR; '
                                  'write checkpoints, weights (best.pt, final.pt), logs and curves to --out-dir. Rerun '
                                  'the same command to resume. Every flag below is a field of blindsr.train.TrainConfig, '
                                  'the Python API, with the same name.', 100))
    g = ap.add_argument_group('config file')
    g.add_argument('--config', metavar='FILE', help="a JSON or YAML file of TrainConfig fields, e.g. a run's config.json; "
                                                    'flags given as well override its values (default: none)')
    g.add_argument('--print-config', action='store_true',
                   help='print the resolved config as JSON and exit, training nothing (default: off)')
    add_config_args(ap, TrainConfig)
    return ap


def read_config_file(path: PathLike) -> dict:
    "TrainConfig fields from a JSON or YAML file; every problem is a UserError naming the file."
    path = Path(path)
    if path.is_dir(): raise UserError(f'--config {path} is a folder; give a JSON or YAML file of TrainConfig fields')
    if not path.is_file(): raise UserError(f'--config {path}: no such file')
    text = path.read_text(encoding='utf-8')
    if path.suffix.lower() in ('.yaml', '.yml'):
        try: import yaml
        except ImportError: raise UserError(f'--config {path}: reading YAML needs pyyaml (pip install pyyaml), or use JSON') from None
        try: data = yaml.safe_load(text)
        except yaml.YAMLError as e: raise UserError(f'--config {path} is not valid YAML: {str(e).splitlines()[0]}') from None
        data = {} if data is None else data
    else:
        try: data = json.loads(text)
        except ValueError as e: raise UserError(f'--config {path} is not valid JSON: {e}') from None
    if not isinstance(data, dict):
        raise UserError(f'--config {path} holds a {type(data).__name__}, not an object of TrainConfig fields like {{"iters": 1000}}')
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(map(str, set(data) - known))
    if unknown: raise UserError(f'--config {path}: unknown TrainConfig fields {unknown}; the fields are the flags without '
                                'their dashes (see blindsr_train --help)')
    return data


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    "TrainConfig from command-line flags and an optional --config file; a bad value names its flag or the file."
    a = vars(config_parser().parse_args(argv))
    base = read_config_file(a['config']) if a.get('config') else {}
    over = {k: v for k, v in a.items() if k not in ('config', 'print_config')}
    try: cfg = TrainConfig(**{**base, **over})
    except ConfigError as e:
        where = f'--config {a["config"]}' if e.field in base and e.field not in over else '--' + e.field.replace('_', '-')
        raise ConfigError(f'{where}: {e}', e.field) from None
    if a.get('print_config'):
        print(json.dumps(asdict(cfg), indent=1)); raise SystemExit(0)
    return cfg


def check_device(device: str | None) -> None:
    "A --device this machine has (one process; torchrun assigns devices itself), else a UserError naming the flag."
    if device is None or int(os.environ.get('WORLD_SIZE', '1')) > 1: return
    try: get_device(device)
    except (RuntimeError, ValueError) as e: raise UserError(f'--device {device}: {e}') from None


def train_cli(argv: list[str] | None = None) -> int:
    "blindsr_train: train as the flags (or --config file) say; prints the summary JSON."
    run = {}
    def body():
        cfg = config_from_args(argv)
        check_device(cfg.device)
        run['trainer'] = trainer = Trainer(cfg)
        summary = trainer.fit()
        if int(os.environ.get('RANK', '0')) == 0: print(json.dumps(summary, indent=1))

    def where_it_stopped() -> str:
        t = run.get('trainer')
        if t is None or not hasattr(t, 'train_step'): return 'before training started; rerun the same command to start'
        if not t.saved: return f'at step {t.train_step.steps}; no checkpoint saved; rerun the same command to start again'
        at = '' if t.saved[1] == t.train_step.steps else f' (of step {t.saved[1]})'
        return f'at step {t.train_step.steps}; checkpoint{at} saved in {t.saved[0]}; rerun the same command to resume'
    return run_cli('blindsr_train', body, USER_ERRORS + (CheckpointError, NonFiniteLossError), resume_hint=where_it_stopped)


# %%
cf = tmp/'cfg.json'
cf.write_text(json.dumps({'batch_size': 8, 'iters': 100, 'generator_kwargs': {'num_block': 4}}))
c2 = config_from_args(['--config', str(cf), '--lr', '1e-3', '--no-hflip', '--time-budget-min', 'none', '--betas', '[0.9, 0.999]'])
test_eq((c2.batch_size, c2.iters, c2.lr, c2.hflip, c2.generator_kwargs, c2.time_budget_min, c2.betas),
        (8, 100, 1e-3, False, {'num_block': 4}, None, (0.9, 0.999)))
with redirect_stderr(io.StringIO()) as err: test_eq(train_cli(['--iters', '5', '--amp', 'fp8']), 2)
test_eq(err.getvalue().strip(), "blindsr_train: error: --amp: TrainConfig.amp must be one of auto, bf16, fp16, off, got 'fp8'")

# %% [markdown]
# `--help` says what each flag means, its choices, range and default, by group, and ends with examples:

# %%
help_text = config_parser().format_help()
print(help_text[:1500], '…')
for heading in ('data:', 'model:', 'optimisation:', 'schedule and budget:', 'GAN:', 'output:', 'examples:'):
    assert heading in help_text, heading
assert '--iters INT' in help_text and 'optimiser steps; the schedule spans them' in help_text and '[>= 1] (default: None)' in help_text

# %% [markdown]
# A mistake in a config file names the file; one on the command line, the flag:

# %%
(tmp/'bad.json').write_text('{"iters": 2,,}')
(tmp/'typed.json').write_text(json.dumps({'iters': 'ten'}))
(tmp/'list.json').write_text('[1, 2]')
(tmp/'unknown.json').write_text('{"iterations": 2}')
for argv, msg in [(['--config', str(tmp/'bad.json')], 'bad.json is not valid JSON: Expecting property name'),
                  (['--config', str(tmp/'typed.json')], "typed.json: TrainConfig.iters must be a whole number or null, got 'ten'"),
                  (['--config', str(tmp/'list.json')], 'list.json holds a list, not an object'),
                  (['--config', str(tmp/'unknown.json')], "unknown TrainConfig fields ['iterations']"),
                  (['--config', str(tmp)], 'is a folder'), (['--iters', '0'], '--iters: TrainConfig.iters must be >= 1'),
                  (['--iters', '5', '--val-lq', 'lq'], '--val-gt: val_lq is set but val_gt is not')]:
    test_fail(lambda: config_from_args(argv), contains=msg)
test_eq(config_from_args(['--config', str(tmp/'typed.json'), '--iters', '3']).iters, 3)    # the flag wins over the file

# %%
#| export
if __name__ == '__main__' and '__file__' in globals():   # python -m blindsr.train … (also under torchrun)
    sys.exit(train_cli())

# %% [markdown]
# # The training step
# > One optimiser step of the generator, with everything that makes it fast on any card and safe to resume: mixed precision chosen by the card, channels_last, torch.compile and fused Adam (each with a fall-back at the first step), gradient accumulation and clipping, DistributedDataParallel, a sync-free EMA, and an optional adversarial loss.

# %%
#| default_exp train_step

# %%
#| export
from __future__ import annotations

import copy
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from blindsr.device import amp_dtype, grad_scaler, is_cuda_sm70_or_newer
from blindsr.models import UNetDiscriminatorSN

# %%
#| hide
from fastcore.test import test_eq, test_fail, test_close, test_ne
from nbdev.showdoc import show_doc
from blindsr.models import build_generator

def tiny(seed=0):
    "A tiny MSRResNet (8 features, 1 block)."
    torch.manual_seed(seed)
    return build_generator('msrresnet', num_feat=8, num_block=1)

g_ = torch.Generator().manual_seed(0)
hq = F.interpolate(torch.rand(4, 3, 4, 4, generator=g_), size=32, mode='bicubic').clamp(0, 1)   # smooth: learnable
lq = F.avg_pool2d(hq, 4)


# %% [markdown]
# Use it to train a generator in a loop of your own: `TrainStep(generator, device, StepConfig(...))` holds the
# network, its optimiser, gradient scaler, EMA and (for a GAN) discriminator, and `step(hq, lq, lr, 'l1')` takes one
# optimiser step on a batch of HQ faces and their LQ. `blindsr.train.Trainer` is such a loop, with data,
# schedule, validation and checkpoints around it:
#
# ```python
# ts = TrainStep(build_generator('msrresnet'), device, StepConfig(lr=4e-4))
# for hq, lq in batches: loss = ts.step(hq, lq, lr=4e-4, loss_name='l1')   # a tensor on the device
# model = ts.averaged                                                     # the weights to validate and export
# ```
#
# The step returns its loss as a tensor on the device (reading it would make the host wait for the GPU; the
# trainer reads it only every `log_every` steps). Everything between the batch and the next batch lives here, so the
# loop stays readable and each piece is tested on its own.
#
# ## The pixel loss
#
# L1 is the default (robust, sharp); Charbonnier is its smooth twin; MSE is what PSNR measures, used to finish a
# run (`TrainConfig.mse_finish`). Always computed in float32, whatever the forward pass ran in.

# %%
#| export
def pixel_loss(name: str,  # 'l1', 'charbonnier' or 'mse'
               sr: torch.Tensor,  # (B,3,H,W) the generator's output
               hq: torch.Tensor,  # (B,3,H,W) the target, float in [0, 1]
              ) -> torch.Tensor:  # scalar, float32
    "Mean L1, Charbonnier (ε = 1e-3) or MSE between sr and hq, computed in float32."
    d = sr.float() - hq.float()
    if name == 'l1': return d.abs().mean()
    if name == 'mse': return d.pow(2).mean()
    if name == 'charbonnier': return torch.sqrt(d * d + 1e-6).mean()
    raise ValueError(f'unknown loss {name!r}')


# %%
#| exec_doc
sr, target = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
{name: round(pixel_loss(name, sr, target).item(), 4) for name in ('l1', 'charbonnier', 'mse')}

# %%
#| hide
test_close(pixel_loss('charbonnier', torch.zeros(3), torch.ones(3)).item(), 1.0, eps=1e-5)
test_eq(pixel_loss('mse', torch.zeros(2), torch.full((2,), 3.0)).item(), 9.0)
test_fail(lambda: pixel_loss('l3', torch.zeros(1), torch.zeros(1)), contains="unknown loss 'l3'")


# %% [markdown]
# ## Mixed precision by card
#
# bf16 autocast on sm_80+ (A100, H100, L4: no loss scaling needed), fp16 with a gradient scaler on sm_60/sm_70/
# sm_75 (P100, V100, T4 — the T4 has no bf16 and its tensor cores run fp16), fp32 on the CPU. `channels_last`
# helps the tensor cores (sm_70+) and is left off elsewhere.
#
# `torch.compile` is on by default for one CUDA process on sm_70+: it fuses the elementwise work around the
# convolutions (activations, pixel shuffles, the loss), which in eager mode took half of MSRResNet's step on an H200
# (compiled, the step's device time halves and a 5-minute run trains about 1.5× as many images; `08_bench`).
# Compiling costs tens of seconds at the first step, inside the run's time budget. It stays off on the CPU (the
# compile time would dominate short runs and tests), on a P100 (Triton needs sm_70) and under DDP (not yet measured);
# `compile='on'`/`'off'` overrides, and a compiler that fails at the first step leaves the run eager.

# %%
#| export
def amp_policy(amp: str,  # TrainConfig.amp: 'auto', 'bf16', 'fp16' or 'off'
               device: torch.device,
              ) -> tuple[torch.dtype | None, bool]:  # (autocast dtype or None, whether to use a GradScaler)
    "The autocast dtype and loss scaling for this setting on this device."
    if device.type != 'cuda' or amp == 'off': return None, False
    if amp == 'bf16': return torch.bfloat16, False
    if amp == 'fp16': return torch.float16, True
    dtype = amp_dtype(device)     # the card's choice: bf16 on sm_80+, fp16 below
    return dtype, dtype == torch.float16


def use_channels_last(channels_last: str,  # TrainConfig.channels_last: 'auto', 'on' or 'off'
                      device: torch.device) -> bool:
    "Whether to run the generator in channels_last memory format: 'auto' turns it on for CUDA sm_70+."
    if channels_last != 'auto': return channels_last == 'on'
    return is_cuda_sm70_or_newer(device)


def use_compile(compile: str,  # TrainConfig.compile: 'auto', 'on' or 'off'
                device: torch.device,
                world: int = 1,  # training processes
               ) -> bool:
    "Whether to torch.compile the generator: 'auto' compiles for one CUDA process on sm_70+ (Triton's minimum)."
    if compile != 'auto': return compile == 'on'
    return world == 1 and is_cuda_sm70_or_newer(device)


# %% [markdown]
# On this machine's CPU, everything falls back to plain float32, eager:

# %%
#| exec_doc
cpu = torch.device('cpu')
amp_policy('auto', cpu), use_channels_last('auto', cpu), use_compile('auto', cpu)

# %%
#| hide
test_eq(amp_policy('auto', cpu), (None, False)); test_eq(amp_policy('bf16', cpu), (None, False))
test_eq(use_channels_last('auto', cpu), False); test_eq(use_channels_last('on', cpu), True)
test_eq(use_compile('auto', cpu), False); test_eq(use_compile('on', cpu), True)


# %% [markdown]
# ## Adam, fused where it can be
#
# Adam runs fused on CUDA (one kernel for all parameters; with a GradScaler it also reads the inf check on the
# device, where the plain optimiser would sync to the host every step), and as torch's default elsewhere. Fused
# Adam refuses some tensor layouts, and only says so at its first step; `step_or_unfuse` then steps a default
# Adam holding the same state instead, and the run goes on with it.

# %%
#| export
def adam(params, device: torch.device, **kw) -> torch.optim.Adam:
    "torch.optim.Adam, fused on CUDA where this torch build supports it."
    params = list(params)
    if torch.device(device).type == 'cuda':
        try: return torch.optim.Adam(params, fused=True, **kw)
        except (RuntimeError, TypeError, ValueError): pass
    return torch.optim.Adam(params, **kw)


def step_or_unfuse(optimizer: torch.optim.Optimizer,
                   step: Callable[[torch.optim.Optimizer], object],  # steps it: `opt.step()`, or a GradScaler's `scaler.step`
                   log: Callable[[str], None] = print,
                  ) -> torch.optim.Optimizer:  # the optimiser that stepped: `optimizer`, or its unfused replacement
    "Step `optimizer`; if fused Adam refuses the parameters, step a default Adam with the same state instead."
    before = copy.deepcopy(optimizer.state_dict())
    try:
        step(optimizer)
        return optimizer
    except RuntimeError as e:
        if not optimizer.defaults.get('fused'): raise
        log(f'fused Adam refused the parameters ({e}); using the default implementation')
        plain = torch.optim.Adam([q for g in optimizer.param_groups for q in g['params']], **{**optimizer.defaults, 'fused': False})
        plain.load_state_dict(before)
        step(plain)
        return plain


# %%
#| hide
test_eq(adam(nn.Linear(2, 1).parameters(), cpu, lr=1e-3).defaults['fused'], None)

class RefusingAdam(torch.optim.Adam):
    "Fused Adam as it fails on tensors it cannot take (at the first step, not when built)."
    def step(self, *a, **k): raise RuntimeError('params, grads, exp_avgs, and exp_avg_sqs must have same dtype, device, and layout')

lin = nn.Linear(2, 1)
lin(torch.ones(1, 2)).sum().backward()
w0 = lin.weight.detach().clone()
opt = step_or_unfuse(RefusingAdam(lin.parameters(), lr=0.1, fused=True), lambda o: o.step(), log=lambda m: None)
assert type(opt) is torch.optim.Adam and not opt.defaults['fused'] and not torch.equal(lin.weight, w0)
test_fail(lambda: step_or_unfuse(RefusingAdam(lin.parameters(), lr=0.1), lambda o: o.step()), contains='same dtype')


# %% [markdown]
# ## An EMA of the weights, with warm-up
#
# The validated and exported generator is an exponential moving average of the trained one:
# ema ← ema + (1 − d)(w − ema). A fixed d = 0.999 kept the averaged weights near the initial network for the first
# minute of a short run (the handed-out recipe's curve stays on the bicubic line for a minute); a decay warmed up as
# d = min(0.999, (1 + step)/(10 + step)) follows the network early and averages late (`08_bench` has the
# curves). The decay is a pure function of the step, so nothing but the step needs saving.

# %%
#| export
def ema_decay(step: int,  # 0-based index of the optimiser step just taken
              decay: float,  # the decay it warms up to (TrainConfig.ema)
              warmup: bool = True,  # ramp it as min(decay, (1 + step)/(10 + step))
             ) -> float:
    "The EMA decay after optimiser step `step`."
    return min(decay, (1 + step) / (10 + step)) if warmup else decay


# %%
#| exec_doc
{step: round(ema_decay(step, 0.999), 4) for step in (0, 10, 100, 1000, 10_000)}

# %%
#| hide
test_close([ema_decay(s, 0.999) for s in (0, 10, 100, 1000, 100_000)], [0.1, 11 / 20, 101 / 110, 1001 / 1010, 0.999], eps=1e-12)
test_eq(ema_decay(0, 0.999, warmup=False), 0.999)


# %% [markdown]
# `torch.optim.swa_utils.AveragedModel` keeps its update count in a CPU tensor and copies it to the GPU on every
# update: a blocking host-to-device copy, i.e. a full device sync per step, which serialises the host's
# degradation launches with the GPU's work (it cost a third of the H200's training throughput; `08_bench`). `EMA`
# takes the step from the caller and updates every floating tensor (parameters and buffers) of its copy with one
# fused lerp, so the step never waits for the GPU.

# %%
#| export
class EMA:
    "A sync-free exponential moving average of a model's weights; `.model` is the averaged copy (eval mode, no grads)."
    def __init__(self, model: nn.Module, decay: float, warmup: bool = True):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.warmup = decay, warmup
        self._averaged = self._tensors(self.model)
        self._followed: tuple | None = None        # (model, its tensors), looked up once

    @staticmethod
    def _tensors(m: nn.Module) -> list:
        return [t for t in list(m.parameters()) + list(m.buffers()) if t.is_floating_point()]

    @torch.no_grad()
    def update(self, model: nn.Module,  # the trained model (same architecture as the copy)
               step: int,  # 0-based index of the optimiser step just taken (sets the warm-up decay)
              ) -> None:
        "Move the average towards `model`'s current weights by 1 − ema_decay(step)."
        if self._followed is None or self._followed[0] is not model:
            src = self._tensors(model)
            if len(src) != len(self._averaged): raise ValueError(f'EMA of {len(self._averaged)} tensors cannot follow a model with {len(src)}')
            self._followed = (model, [t.detach() for t in src])
        torch._foreach_lerp_(self._averaged, self._followed[1], 1.0 - ema_decay(step, self.decay, self.warmup))


# %%
show_doc(EMA.update)

# %%
#| hide
lin = nn.Linear(2, 1)
ema = EMA(lin, 0.5, warmup=False)
with torch.no_grad(): lin.weight.add_(2.0)
w0 = ema.model.weight.clone()
ema.update(lin, step=0)
test_close(ema.model.weight, (w0 + lin.weight) / 2, eps=1e-6)
assert not ema.model.weight.requires_grad and not ema.model.training
warm = EMA(lin, 0.999); w1 = warm.model.weight.clone()
with torch.no_grad(): lin.weight.add_(1.0)
warm.update(lin, step=0)                                                   # decay 0.1 at the first step
test_close(warm.model.weight, 0.1 * w1 + 0.9 * lin.weight, eps=1e-6)


# %% [markdown]
# ## The adversarial loss
#
# Off by default. With `TrainConfig.gan` the generator, started from PSNR-trained weights, trains on
# `pixel_weight`·pixel loss + `weight`·BCE against a `UNetDiscriminatorSN`, and after each generator step the
# discriminator learns real faces from restored ones, its learning rate following the generator's schedule
# (`lr` × the generator's lr / its peak). The discriminator and its optimiser are the object's own state.

# %%
#| export
class AdversarialLoss:
    "A UNetDiscriminatorSN and its optimiser: the generator's adversarial loss, and the discriminator's own step."
    def __init__(self, device: torch.device,
                 num_feat: int = 32,  # discriminator width (TrainConfig.disc_feat)
                 lr: float = 1e-4,  # its peak learning rate (TrainConfig.disc_lr)
                 generator_lr: float = 4e-4,  # the generator's peak learning rate (TrainConfig.lr): the schedule's scale
                 betas: tuple = (0.9, 0.99),
                 weight: float = 0.1,  # weight of the adversarial loss (TrainConfig.gan_weight)
                 pixel_weight: float = 1.0,  # weight of the pixel loss beside it (TrainConfig.pixel_weight)
                 ddp: bool = False,  # wrap the discriminator in DistributedDataParallel (process group initialised)
                 log: Callable[[str], None] = print):
        self.discriminator = UNetDiscriminatorSN(num_in_ch=3, num_feat=num_feat).to(device)
        self.optimizer = adam(self.discriminator.parameters(), device, lr=lr, betas=betas)
        self.lr, self.generator_lr, self.weight, self.pixel_weight, self.log = lr, generator_lr, weight, pixel_weight, log
        self.ddp = None
        if ddp:
            from torch.nn.parallel import DistributedDataParallel
            self.ddp = DistributedDataParallel(self.discriminator, device_ids=[device.index] if device.type == 'cuda' else None)
        self._optimizer_checked = False

    def _judge(self, x: torch.Tensor) -> torch.Tensor:
        "The discriminator's per-pixel logits of (B,3,H,W) images (through DDP when distributed)."
        return (self.ddp if self.ddp is not None else self.discriminator)(x)

    def generator_loss(self, sr: torch.Tensor) -> torch.Tensor:
        "BCE of the discriminator calling `sr` real; gradients reach the generator, not the discriminator."
        for p in self.discriminator.parameters(): p.requires_grad_(False)
        logits = self._judge(sr.float())
        for p in self.discriminator.parameters(): p.requires_grad_(True)
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))

    def step(self, hq: torch.Tensor,  # (B,3,H,W) real faces
             sr: torch.Tensor,  # restored faces, detached from the generator
             lr: float,  # the generator's learning rate now
            ) -> None:
        "One discriminator step: real faces are real, restored ones are not."
        for g in self.optimizer.param_groups: g['lr'] = self.lr * lr / self.generator_lr
        real, fake = self._judge(hq.float()), self._judge(sr.float())
        loss = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + \
               F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        loss.backward()
        if self._optimizer_checked: self.optimizer.step()
        else: self.optimizer, self._optimizer_checked = step_or_unfuse(self.optimizer, lambda o: o.step(), self.log), True
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        return {'disc': self.discriminator.state_dict(), 'opt_d': self.optimizer.state_dict()}

    def load_state_dict(self, sd: dict) -> None:
        self.discriminator.load_state_dict(sd['disc'])
        self.optimizer.load_state_dict(sd['opt_d'])


# %%
show_doc(AdversarialLoss.generator_loss)

# %%
show_doc(AdversarialLoss.step)

# %%
#| hide
torch.manual_seed(0)
adv = AdversarialLoss(cpu, num_feat=4)
d0 = [q.detach().clone() for q in adv.discriminator.parameters()]
sr = torch.rand(2, 3, 32, 32, requires_grad=True)
adv.generator_loss(sr).backward()
assert sr.grad is not None and all(q.grad is None for q in adv.discriminator.parameters())
adv.step(torch.rand(2, 3, 32, 32), sr.detach(), lr=4e-4)
assert any(not torch.equal(a, b) for a, b in zip(d0, adv.discriminator.parameters())), 'the discriminator did not train'
test_close(adv.optimizer.param_groups[0]['lr'], 1e-4)


# %% [markdown]
# ## One optimiser step
#
# `TrainStep` holds the generator and everything its step needs. Per step: set the learning rate; per
# micro-batch (`accum` of them, the same maths with less memory), run the generator under autocast, take the pixel
# (and adversarial) loss in float32 and back-propagate it scaled (DDP averages the gradients only at the last
# micro-batch: `no_sync`); clip the gradient norm if asked; step the optimiser and the scaler; step the
# discriminator; update the EMA. One network has one name: `generator` is the network (its weights are what is
# saved), `ddp` the DistributedDataParallel wrapper that synchronises its gradients (None in one process),
# `compiled` the torch.compile of what runs it (None when eager), `ema.model` its average, and `averaged` the
# weights to validate and export (the EMA's, or the generator's when EMA is off).

# %%
#| export
@dataclass
class StepConfig:
    "How the optimiser step runs; the fields (and defaults) are TrainConfig's of the same names."
    accum: int = 1                       # split each batch into this many micro-batches (same maths, less memory)
    lr: float = 4e-4                     # peak learning rate (Adam); each step sets its own
    betas: tuple = (0.9, 0.99)
    weight_decay: float = 0.0
    grad_clip: float | None = None       # clip the gradient norm (None: off)
    amp: str = 'auto'                    # 'auto' (bf16 on sm_80+, fp16 + GradScaler below, fp32 on CPU), 'bf16', 'fp16', 'off'
    channels_last: str = 'auto'          # 'auto' (on for CUDA sm_70+), 'on', 'off'
    compile: str = 'auto'                # torch.compile the generator: 'auto' (one CUDA process on sm_70+), 'on', 'off'
    ema: float = 0.999                   # EMA decay of the weights (0: off)
    ema_warmup: bool = True              # decay ramps as min(ema, (1+step)/(10+step))


# %%
#| export
def compile_or_none(module: nn.Module, device: torch.device, log: Callable[[str], None] = print) -> nn.Module | None:
    "torch.compile(module), or None (run eagerly) where Triton cannot run or torch.compile is unavailable."
    if device.type == 'cuda' and not is_cuda_sm70_or_newer(device):
        log('torch.compile needs sm_70+ (Triton); running eagerly')
        return None
    try: return torch.compile(module)
    except Exception as e:
        log(f'torch.compile unavailable ({type(e).__name__}: {e}); running eagerly')
        return None


# %%
#| hide
assert compile_or_none(nn.Linear(2, 1), cpu) is not None          # compiling waits for the first call


# %%
#| export
class TrainStep:
    "One optimiser step of a generator: `step(hq, lq, lr, loss_name)` -> the step's loss (a tensor on the device)."
    def __init__(self,
                 generator: nn.Module,  # the network to train, (B,3,h,w) -> (B,3,4h,4w); moved to `device`
                 device: torch.device,
                 cfg: StepConfig | None = None,  # None: StepConfig()
                 adversarial: AdversarialLoss | None = None,  # the GAN phase's loss (None: pixel loss only)
                 ddp: bool = False,  # DistributedDataParallel (the process group must be initialised)
                 log: Callable[[str], None] = print,  # where the fall-backs are reported
                ):
        cfg = cfg or StepConfig()
        self.cfg, self.device, self.adversarial, self.log = cfg, torch.device(device), adversarial, log
        self.generator = generator.to(self.device)
        self.channels_last = use_channels_last(cfg.channels_last, self.device)
        if self.channels_last: self.generator.to(memory_format=torch.channels_last)
        self.amp_dtype, scaled = amp_policy(cfg.amp, self.device)
        if self.device.type == 'cuda': torch.backends.cudnn.benchmark = True     # fixed sizes: cuDNN picks its fastest kernels
        self.optimizer = adam(self.generator.parameters(), self.device, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        self.scaler = grad_scaler(scaled)
        self.ema = EMA(self.generator, cfg.ema, cfg.ema_warmup) if cfg.ema else None
        self.ddp = None
        if ddp:
            from torch.nn.parallel import DistributedDataParallel
            self.ddp = DistributedDataParallel(self.generator, device_ids=[self.device.index] if self.device.type == 'cuda' else None)
        trained = self.ddp if self.ddp is not None else self.generator
        self.compiled = compile_or_none(trained, self.device, log) if use_compile(cfg.compile, self.device, 2 if ddp else 1) else None
        self.steps = 0                     # optimiser steps taken (the training step; resumed from checkpoints)
        self._compile_checked = self._optimizer_checked = False

    @property
    def averaged(self) -> nn.Module:
        "The weights to validate and export: the EMA's, or the generator itself when EMA is off."
        return self.ema.model if self.ema is not None else self.generator

    def step(self, hq: torch.Tensor,  # (B,3,H,W) float in [0, 1], the targets
             lq: torch.Tensor,  # (B,3,H/4,W/4) float in [0, 1], the inputs
             lr: float,  # this step's learning rate
             loss_name: str,  # this step's pixel loss: 'l1', 'charbonnier' or 'mse'
            ) -> torch.Tensor:  # the step's mean loss, a scalar on the device (not synchronised)
        "One optimiser step. A compiled generator compiles at its first step; if that fails, the run goes on eagerly."
        if self.compiled is None or self._compile_checked: return self._step(hq, lq, lr, loss_name)
        try:
            loss = self._step(hq, lq, lr, loss_name)
        except Exception as e:      # Triton/compiler missing or broken: compilation happens here, not at torch.compile()
            self.log(f'torch.compile failed at the first step ({type(e).__name__}: {str(e)[:300]}); running eagerly')
            self.compiled = None
            self.optimizer.zero_grad(set_to_none=True)
            return self._step(hq, lq, lr, loss_name)
        self._compile_checked = True
        return loss

    def _step(self, hq, lq, lr, loss_name) -> torch.Tensor:
        cfg, adv = self.cfg, self.adversarial
        for g in self.optimizer.param_groups: g['lr'] = lr
        run = self.compiled if self.compiled is not None else (self.ddp if self.ddp is not None else self.generator)
        autocast = torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else nullcontext()
        micro = hq.shape[0] // cfg.accum
        total = torch.zeros((), device=self.device)
        for m in range(cfg.accum):
            h, l = hq[m * micro:(m + 1) * micro], lq[m * micro:(m + 1) * micro]
            if self.channels_last: l = l.contiguous(memory_format=torch.channels_last)
            with self.ddp.no_sync() if self.ddp is not None and m < cfg.accum - 1 else nullcontext():
                with autocast: sr = run(l)
                loss = pixel_loss(loss_name, sr, h)
                if adv is not None: loss = adv.pixel_weight * loss + adv.weight * adv.generator_loss(sr)
                self.scaler.scale(loss / cfg.accum).backward()
            total += loss.detach() / cfg.accum
        if cfg.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.generator.parameters(), cfg.grad_clip)
        if self._optimizer_checked: self.scaler.step(self.optimizer)
        else: self.optimizer, self._optimizer_checked = step_or_unfuse(self.optimizer, self.scaler.step, self.log), True
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if adv is not None: adv.step(hq, sr.detach(), lr)
        if self.ema is not None: self.ema.update(self.generator, self.steps)
        self.steps += 1
        return total

    def state_dict(self) -> dict:
        "The step's whole state, under the training checkpoint's keys (blindsr.checkpoint)."
        adv = self.adversarial.state_dict() if self.adversarial is not None else {'disc': None, 'opt_d': None}
        return {'params': self.generator.state_dict(), 'params_ema': self.ema.model.state_dict() if self.ema is not None else None,
                'opt_g': self.optimizer.state_dict(), 'scaler': self.scaler.state_dict(), **adv, 'step': self.steps}

    def load_state_dict(self, sd: dict) -> None:
        "Continue from `state_dict()` (or a training checkpoint holding its keys)."
        self.generator.load_state_dict(sd['params'])
        if self.ema is not None and sd.get('params_ema') is not None: self.ema.model.load_state_dict(sd['params_ema'])
        self.optimizer.load_state_dict(sd['opt_g'])
        self.scaler.load_state_dict(sd['scaler'])
        if self.adversarial is not None and sd.get('disc') is not None: self.adversarial.load_state_dict(sd)
        self.steps = sd['step']


# %%
show_doc(TrainStep.step)

# %%
show_doc(TrainStep.state_dict)

# %%
show_doc(TrainStep.load_state_dict)

# %% [markdown]
# Twenty steps of a tiny MSRResNet (8 features, 1 block) on one batch of four smooth 32×32 faces and their LQ
# bring the loss down; the EMA follows the generator; the state carries over, so a `TrainStep` loaded from
# another's `state_dict` takes the same next step.

# %%
#| exec_doc
ts = TrainStep(tiny(), cpu, StepConfig(lr=2e-3, ema=0.9))
losses = [ts.step(hq, lq, 2e-3, 'l1').item() for _ in range(20)]
print('losses:', ' '.join(f'{v:.4f}' for v in losses[::2]))
print('steps:', ts.steps, '| state:', sorted(k for k, v in ts.state_dict().items() if v is not None))

# %%
#| hide
assert losses[-1] < 0.95 * losses[0]; test_eq(ts.steps, 20)
assert any(not torch.equal(a, b) for a, b in zip(ts.ema.model.parameters(), ts.generator.parameters()))
test_eq(ts.averaged, ts.ema.model)
twin = TrainStep(tiny(seed=1), cpu, StepConfig(lr=2e-3, ema=0.9))
twin.load_state_dict(copy.deepcopy(ts.state_dict())); test_eq(twin.steps, 20)     # a copy, as a checkpoint file is
test_eq(twin.step(hq, lq, 1e-3, 'mse'), ts.step(hq, lq, 1e-3, 'mse'))
for a, b in zip(twin.averaged.state_dict().values(), ts.averaged.state_dict().values()): test_eq(a, b)
test_eq(TrainStep(tiny(), cpu, StepConfig(ema=0)).averaged is not None, True)

# %% [markdown]
# Accumulating over micro-batches is the same maths as the whole batch (up to float rounding), and with an
# adversarial loss both networks train and both states are saved.

# %%
#| hide
one, two = TrainStep(tiny(), cpu, StepConfig(ema=0)), TrainStep(tiny(), cpu, StepConfig(ema=0, accum=2))
test_close(one.step(hq, lq, 1e-3, 'l1'), two.step(hq, lq, 1e-3, 'l1'), eps=1e-6)
for a, b in zip(one.generator.parameters(), two.generator.parameters()): test_close(a, b, eps=1e-6)
torch.manual_seed(0)
gan = TrainStep(tiny(), cpu, StepConfig(), adversarial=AdversarialLoss(cpu, num_feat=4))
gan.step(hq, lq, 1e-4, 'l1')
test_eq(sorted(k for k, v in gan.state_dict().items() if v is not None),
        ['disc', 'opt_d', 'opt_g', 'params', 'params_ema', 'scaler', 'step'])

# %% [markdown]
# `torch.compile` compiles at the first call, so a missing or broken compiler shows up there, not when the model is
# wrapped; the first step then falls back to the eager generator and the run goes on. Likewise fused Adam's
# refusal (above) at the first step.

# %%
#| hide
cp = TrainStep(tiny(), cpu, StepConfig(compile='on'), log=lambda m: None)
assert cp.compiled is not None
def broken_compiler(x): raise RuntimeError('InductorError: no working C++ compiler')
cp.compiled = broken_compiler
cp.step(hq, lq, 1e-3, 'l1'); cp.step(hq, lq, 1e-3, 'l1')
test_eq((cp.compiled, cp.steps), (None, 2))
fb = TrainStep(tiny(), cpu, StepConfig(), log=lambda m: None)
fb.optimizer = RefusingAdam(fb.generator.parameters(), lr=1e-3, fused=True)
w0 = [q.detach().clone() for q in fb.generator.parameters()]
fb.step(hq, lq, 1e-3, 'l1')
assert type(fb.optimizer) is torch.optim.Adam and not fb.optimizer.defaults['fused']
assert any(not torch.equal(a, b) for a, b in zip(w0, fb.generator.parameters()))

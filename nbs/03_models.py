# %% [markdown]
# # Models
# > The generators under the 2,276,356-parameter cap, the U-Net discriminator, and what each costs in FLOPs.

# %%
#| default_exp models

# %%
#| export
from __future__ import annotations

import copy
import inspect
import math
import warnings
from functools import partial
from typing import Callable

import torch
from torch import nn

from blindsr.archs.discriminator import UNetDiscriminatorSN
from blindsr.archs.msrresnet import MSRResNet
from blindsr.archs.plksr import PLKSR
from blindsr.archs.rcan import RCANLite
from blindsr.archs.resunet import ResUNet

_all_ = ['MSRResNet', 'RCANLite', 'PLKSR', 'ResUNet', 'UNetDiscriminatorSN']   # re-exported: `from blindsr.models import *`

# %%
#| hide
import torch.nn.functional as F
from fastcore.test import test_eq, test_fail, test_close

# %% [markdown]
# ## The generators -
#
# Each architecture lives in its own notebook and module (`blindsr.archs.*`); this one is the map from names to
# constructors that configs, the trainer and the CLI use. Every constructor takes BasicSR's argument names
# (`num_in_ch`, `num_out_ch`, `num_feat`, `num_block`, `upscale`) and maps `(B, 3, h, w)` in [0, 1] to
# `(B, 3, 4h, 4w)` for any h, w.
#
# | name | architecture | params | why it is here |
# |---|---|---|---|
# | `msrresnet` | BasicSR MSRResNet, 64 × 16 blocks | 1,517,571 | the organisers' baseline; loads their checkpoints |
# | `msrresnet_deep` | the same, 24 blocks | 2,108,419 | the best-known student result (26.57 dB val) |
# | `rcan_lite` | RCAN, 64 × 4 groups × 6 blocks, channel attention | 2,270,051 | same 3×3-conv depth plus global channel gates (a cheap global view of how degraded the input is) and group skips; 13 % fewer FLOPs than `msrresnet_deep` (no 512² `conv_hr`), but slower in wall-clock |
# | `plksr` | partial large kernel CNN (PLKSR), 64 × 11 blocks, 17×17 kernels on 16 channels | 2,198,688 | whole-face receptive field (~220 px) with dense convs only; all compute at LQ resolution |
# | `resunet` | MSRResNet with a residual U-Net body (DRUNet layout): levels of 64, 64, 96, 128 channels at 128², 64², 32², 16², 2 blocks each way, MSRResNet's upsampler | 2,066,947 | the centre of the face sees the whole input, for a third of the flat body's FLOPs; at 5 minutes on 180 faces it scored below `msrresnet` (27.41 vs 27.53 dB, `03e_resunet`) |
#
# None of them uses re-parameterisation, so the count is the same for the trained and the deployed model. (A
# design that trains extra branches and merges them for inference would have to count the training-time model.)
#
# Left out, and why: **SwinIR-light** — a 2.25M SwinIR scored no better than the 24-block MSRResNet on this task
# (26.55 vs 26.57 dB val) and window attention (softmax, LayerNorm, padding to window multiples) trains slowly on
# a T4. **SPAN / ECBSR-style re-parameterised nets** — their extra training branches count against the cap yet
# vanish at inference, so under a training-time cap they buy speed, not PSNR. **SAFMN** — designed and tuned
# at 0.2M parameters; nothing shows how it scales to 2M. **RRDB (ESRGAN)** — at 64 features one RRDB is ~720k
# parameters, so only two fit, and their dense concatenations are memory-bound.

# %%
#| export
GENERATOR_PARAM_CAP = 2_276_356  # trainable generator parameters allowed by the course (150 % of SRResNet)

GENERATORS: dict[str, Callable[..., nn.Module]] = {
    'msrresnet': MSRResNet,                                  # the organisers' baseline (64 x 16)
    'msrresnet_deep': partial(MSRResNet, num_block=24),      # 24 blocks, 2,108,419 params
    'rcan_lite': RCANLite,                                   # residual channel attention, 4 x 6 blocks
    'plksr': PLKSR,                                          # partial large kernel CNN, 11 blocks, no norm
    'resunet': ResUNet,                                      # MSRResNet with a residual U-Net body (64-64-96-128)
}


def build_generator(name: str,  # a key of GENERATORS
                    **kwargs,  # overrides of the constructor's defaults, e.g. num_feat=32
                   ) -> nn.Module:
    "Build the generator registered as `name`; an unknown name raises KeyError listing the valid ones."
    if name not in GENERATORS:
        raise KeyError(f'unknown generator {name!r}; valid names: {", ".join(GENERATORS)}')
    return GENERATORS[name](**kwargs)


def count_params(model: nn.Module) -> int:
    "Trainable parameters: the number the course's cap is about."
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def check_param_budget(model: nn.Module,  # a generator, on any device (meta included)
                       cap: int = GENERATOR_PARAM_CAP,  # the largest allowed count
                      ) -> int:  # the count, when it is within the cap
    "Return `count_params(model)`, or raise ValueError stating the count and the cap if it is over."
    n = count_params(model)
    if n > cap:
        raise ValueError(f'{type(model).__name__} has {n:,} trainable parameters, over the cap of {cap:,} '
                         f'by {n - cap:,}; reduce num_feat or num_block')
    return n


# %% [markdown]
# A generator named in a config is built only after the data are ready, minutes into a run — or, on Kaggle,
# after the install and the data steps have spent GPU quota. `check_generator` answers "can this name and these
# constructor arguments be built, do they keep the contract (3 channels in, ×4 out), and are they under the
# cap?" at once, by building the network on the `meta` device (shapes only, no memory) and running it on a
# meta input. Every answer is a `ValueError` that names the argument and says what to do: `TrainConfig` and
# `blindsr_kaggle build` ask it before anything else.

# %%
#| export
def _argument_kind(annotation: str, default) -> type | None:
    "The Python type a constructor argument takes, from its annotation (or its default), or None if unknown."
    kinds = {'int': int, 'float': float, 'str': str, 'bool': bool, 'tuple': tuple, 'list': list}
    if isinstance(annotation, str) and annotation.split('|')[0].strip() in kinds: return kinds[annotation.split('|')[0].strip()]
    if isinstance(annotation, type) and annotation in kinds.values(): return annotation
    return type(default) if default is not inspect.Parameter.empty and default is not None else None


def check_generator(name: str,  # a key of GENERATORS
                    kwargs: dict | None = None,  # constructor overrides, as in TrainConfig.generator_kwargs
                    cap: int | None = GENERATOR_PARAM_CAP,  # the largest parameter count allowed (None: no cap)
                    flag: str = 'generator_kwargs',  # how the caller names `kwargs`, for the messages (e.g. '--arch-kwargs')
                   ) -> int:  # its trainable parameter count
    "Check that `name(**kwargs)` builds, maps (B,3,h,w) to (B,3,4h,4w) and is under `cap`, without building it for real."
    if name not in GENERATORS:
        raise ValueError(f'unknown generator {name!r}; valid names: {", ".join(GENERATORS)}')
    if kwargs is None: kwargs = {}
    if not isinstance(kwargs, dict):
        raise ValueError(f'{flag} must be a JSON object of {name} arguments like {{"num_block": 24}}, got {kwargs!r}')
    params = inspect.signature(GENERATORS[name]).parameters
    for k, v in kwargs.items():
        if k not in params:
            raise ValueError(f'{flag}: {name} takes no argument {k!r}; its arguments are {", ".join(params)}')
        kind = _argument_kind(params[k].annotation, params[k].default)
        ok = kind is None or (isinstance(v, kind) and not (isinstance(v, bool) and kind is not bool)) or \
             (kind is float and isinstance(v, int) and not isinstance(v, bool)) or (kind is tuple and isinstance(v, list))
        if isinstance(v, float) and not math.isfinite(v): ok = False           # NaN/inf: JSON lets them through
        if not ok:
            raise ValueError(f'{flag}: {name} argument {k} must be {kind.__name__ if kind else "a finite number"} (default {params[k].default!r}), got {v!r}')
    what = f'{name} with {flag} {kwargs}' if kwargs else name
    try:
        with torch.device('meta'), warnings.catch_warnings():
            warnings.simplefilter('ignore')                  # e.g. "Initializing zero-element tensors is a no-op"
            model = build_generator(name, **kwargs)
            out = model(torch.empty(1, 3, 32, 32)).shape
    except (TypeError, ValueError, RuntimeError, AssertionError, ZeroDivisionError, IndexError) as e:
        raise ValueError(f'{what} cannot be built: {str(e).splitlines()[0] if str(e) else type(e).__name__}; '
                         f'check the values in {flag}') from None
    if tuple(out) != (1, 3, 128, 128):
        raise ValueError(f'{what} turns a 3x32x32 LQ into {"x".join(map(str, out[1:]))}, not 3x128x128: the task is x4 '
                         'super-resolution of RGB faces; leave upscale, num_in_ch and num_out_ch at their defaults')
    if cap is None: return count_params(model)
    try: return check_param_budget(model, cap)
    except ValueError as e: raise ValueError(f'{what}: {e}') from None


# %%
test_eq(check_generator('msrresnet'), 1_517_571)
test_eq(check_generator('msrresnet', {'num_feat': 8, 'num_block': 1}), 6_867)
for name_, kw, msg in [('msrresnett', {}, "unknown generator 'msrresnett'; valid names: msrresnet"),
                       ('msrresnet', [1, 2], 'generator_kwargs must be a JSON object'),
                       ('msrresnet', {'num_fet': 8}, "takes no argument 'num_fet'; its arguments are num_in_ch"),
                       ('msrresnet', {'num_feat': 'big'}, "argument num_feat must be int (default 64), got 'big'"),
                       ('msrresnet', {'num_feat': 8.5}, 'num_feat must be int'),
                       ('msrresnet', {'num_feat': float('nan')}, 'num_feat must be int'),
                       ('msrresnet', {'num_feat': -4}, "msrresnet with generator_kwargs {'num_feat': -4} cannot be built"),
                       ('msrresnet', {'upscale': 2}, 'not 3x128x128: the task is x4'),
                       ('msrresnet', {'num_feat': 128}, 'trainable parameters, over the cap of 2,276,356')]:
    test_fail(lambda: check_generator(name_, kw), contains=msg)
test_eq(check_generator('msrresnet', {'num_feat': 128}, cap=None), 6_057_987)
test_fail(lambda: check_generator('msrresnet', {'num_feat': 100_000}, flag='--arch-kwargs'), contains="msrresnet with --arch-kwargs {'num_feat': 100000}")

# %% [markdown]
# Exact counts at the registered defaults, all under the cap. Models are built on the `meta` device: shapes
# only, so even full-size counts cost nothing.

# %%
expected = {'msrresnet': 1_517_571, 'msrresnet_deep': 2_108_419, 'rcan_lite': 2_270_051, 'plksr': 2_198_688, 'resunet': 2_066_947}
test_eq(set(GENERATORS), set(expected))
for name, n in expected.items():
    with torch.device('meta'): g = build_generator(name)
    test_eq(count_params(g), n)
    test_eq(check_param_budget(g), n)
with torch.device('meta'): big = build_generator('msrresnet', num_block=32)
test_fail(lambda: check_param_budget(big), contains='2,699,267 trainable parameters, over the cap of 2,276,356')
test_fail(lambda: build_generator('swinir'), contains='valid names: msrresnet, msrresnet_deep')
test_eq(build_generator('msrresnet_deep', num_feat=8, num_block=3).body.__len__(), 3)   # kwargs override

# %% [markdown]
# The discriminator does not count against the cap; the course's is Real-ESRGAN's U-Net at 32 features:

# %%
test_eq(count_params(UNetDiscriminatorSN(num_feat=32)), 1_094_817)

# %% [markdown]
# ## Every generator, one loop -
#
# The contract each registered generator keeps, checked at tiny width (`num_feat=8, num_block=2`, accepted by
# all of them) on small inputs: 128×128 → 512×512 and odd sizes (37×53 → 148×212); finite outputs and gradients;
# eval mode is deterministic; a `channels_last` model gives the same numbers; it runs under `torch.autocast`
# (bf16 on the CPU here; fp16/bf16 on a GPU).

# %%
torch.manual_seed(0)
tiny = dict(num_feat=8, num_block=2)
for name in GENERATORS:
    net = build_generator(name, **tiny).eval()
    for h, w in [(128, 128), (37, 53), (5, 3)]:
        lq = torch.rand(1, 3, h, w)
        with torch.no_grad(): sr = net(lq)
        test_eq(sr.shape, (1, 3, 4 * h, 4 * w))
        assert torch.isfinite(sr).all(), f'{name}: non-finite output at {h}x{w}'
    lq = torch.rand(2, 3, 24, 20)
    with torch.no_grad():
        a, b = net(lq), net(lq)
        test_eq(a, b)                                                            # deterministic in eval
        net_cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
        test_close(net_cl(lq.contiguous(memory_format=torch.channels_last)), a, eps=1e-3)   # other conv kernels; GroupNorm
        # of PLKSR's small init branch amplifies their rounding differences to ~1e-4
        with torch.autocast('cpu', dtype=torch.bfloat16):
            sr16 = net(lq)
        assert torch.isfinite(sr16).all(), f'{name}: non-finite output under autocast'
        test_close(sr16.float(), a, eps=0.1)
    net.train()
    loss = F.l1_loss(net(lq), torch.rand(2, 3, 96, 80))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters()), name


# %% [markdown]
# ## FLOPs -
#
# What a generator costs to run, independent of the card: GFLOPs for one 128×128 image (torch's
# `FlopCounterMode`, counted on the `meta` device so nothing is computed; a multiply-add is 2 FLOPs; only
# convolutions and matrix products are counted, not activations, pixel shuffle or resizing). Measured speed —
# forward time per image, training images/s and peak memory on a device — is `blindsr.bench.bench_generators`
# (`blindsr_bench generators`), and what it measured is in `08_bench`.

# %%
#| export
def generator_gflops(model: nn.Module,  # any generator; it is copied to the meta device, not run
                     size: int = 128,  # LQ side
                     num_in_ch: int = 3,  # input channels
                    ) -> float:  # GFLOPs of one forward pass on a (1, num_in_ch, size, size) input
    "Forward FLOPs / 1e9 for one image (multiply-add = 2 FLOPs; convolutions and matmuls only)."
    from torch.utils.flop_counter import FlopCounterMode
    meta = copy.deepcopy(model).to('meta')
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        meta(torch.empty(1, num_in_ch, size, size, device='meta'))
    return fc.get_total_flops() / 1e9


# %% [markdown]
# A single 3×3 convolution checks the convention, then the full-size models at 128×128:

# %%
test_eq(generator_gflops(nn.Conv2d(3, 8, 3, padding=1), size=10), 2 * 3 * 8 * 9 * 100 / 1e9)
for name in GENERATORS:
    with torch.device('meta'): print(f'{name:15s} {generator_gflops(build_generator(name)):6.1f} GFLOPs at 128x128')

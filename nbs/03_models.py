# %% [markdown]
# # Models
# > The generators under the 2,276,356-parameter cap, the U-Net discriminator, BasicSR checkpoint loading, and a benchmark.

# %%
#| default_exp models

# %%
#| export
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from blindsr.archs.discriminator import UNetDiscriminatorSN
from blindsr.archs.msrresnet import MSRResNet
from blindsr.archs.plksr import PLKSR
from blindsr.archs.rcan import RCANLite
from blindsr.archs.resunet import ResUNet
from blindsr.core import PathLike
from blindsr.device import amp_dtype, device_name, get_device, grad_scaler, synchronize

_all_ = ['MSRResNet', 'RCANLite', 'PLKSR', 'ResUNet', 'UNetDiscriminatorSN']   # re-exported: `from blindsr.models import *`

# %%
#| hide
import tempfile
import warnings
from fastcore.test import test_eq, test_fail, test_close

tmp = Path(tempfile.mkdtemp())

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
# ## Benchmark -
#
# What a generator costs: parameters; GFLOPs for one 128×128 image (torch's `FlopCounterMode`, counted on the
# `meta` device so nothing is computed; a multiply-add is 2 FLOPs; only convolutions and matrix products are
# counted, not activations, pixel shuffle or resizing); forward time per image; and on CUDA the training step —
# forward, L1 loss against a 512×512 target, backward, Adam step — in images/s with its peak GPU memory (over the
# timed steps, after warm-up, so cuDNN's autotuning workspaces are not counted).
#
# Mixed precision follows the card: bf16 autocast on compute capability ≥ 8.0 (A100, H100, L4), fp16 with a
# GradScaler below (T4 is sm_75, P100 sm_60). On CUDA, "fp32" convolutions use TF32 where the card has it
# (PyTorch's default `cudnn.allow_tf32=True`); the JSON records that flag. This module imports only torch and
# blindsr, so it runs on a GPU machine without nbdev.

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


# %%
#| export
def benchmark_generator(name: str,  # a key of GENERATORS
                        *,
                        device: str | torch.device | None = None,  # None: blindsr.core.get_device()
                        batch: int | None = None,  # images per step; None: 16 on CUDA, 1 elsewhere
                        size: int = 128,  # LQ side; the target is size·4
                        amp: bool = False,  # autocast (bf16 on sm_80+, fp16 + GradScaler below); CUDA only
                        amp_dtype_override: torch.dtype | None = None,  # force torch.float16 (a T4's path) or bfloat16
                        channels_last: bool = True,  # model and inputs in channels_last memory format
                        iters: int | None = None,  # timed iterations; None: 20 on CUDA, 3 elsewhere
                        warmup: int | None = None,  # untimed iterations first; None: 5 on CUDA, 1 elsewhere
                        train: bool | None = None,  # also time the training step; None: on CUDA only
                        **kwargs,  # passed to build_generator
                       ) -> dict:  # one row: see benchmark_generators
    """Time one generator: forward ms/image (the fastest of `iters` runs, so that other load on a shared machine
    counts least), and (CUDA by default) training images/s (mean over `iters` steps) and peak memory."""
    dev = get_device(device)
    cuda = dev.type == 'cuda'
    if amp and not cuda: raise ValueError(f'mixed precision is benchmarked on CUDA only, got device {dev}')
    batch = batch or (16 if cuda else 1)
    iters = iters if iters is not None else (20 if cuda else 3)
    warmup = warmup if warmup is not None else (5 if cuda else 1)
    train = cuda if train is None else train
    dtype = (amp_dtype_override or amp_dtype(dev)) if amp else None
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    autocast = (lambda: torch.autocast(dev.type, dtype=dtype)) if dtype else nullcontext

    model = build_generator(name, **kwargs)
    row = dict(name=name, params=count_params(model), gflops=round(generator_gflops(model, size), 2),
               size=size, device=device_name(dev), precision={None: 'fp32', torch.bfloat16: 'bf16',
                                                                  torch.float16: 'fp16'}[dtype],
               channels_last=channels_last, batch=batch,
               tf32_conv=bool(cuda and torch.backends.cudnn.allow_tf32 and torch.cuda.get_device_capability(dev) >= (8, 0)),
               fwd_ms_per_img=None, train_img_s=None, peak_mem_gib=None)
    model = model.to(dev, memory_format=fmt)
    lq = torch.rand(batch, 3, size, size, device=dev).contiguous(memory_format=fmt)
    old_bench = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        model.eval()
        times = []
        with torch.no_grad(), autocast():
            for _ in range(warmup): model(lq)
            for _ in range(max(iters, 1)):
                synchronize(dev); t0 = time.perf_counter()
                model(lq)
                synchronize(dev); times.append(time.perf_counter() - t0)
        row['fwd_ms_per_img'] = round(min(times) / batch * 1e3, 3)   # fastest run: robust to other load
        if train:
            model.train()
            hq = torch.rand(batch, 3, size * 4, size * 4, device=dev).contiguous(memory_format=fmt)
            opt = torch.optim.Adam(model.parameters(), lr=1e-4)
            scaler = grad_scaler(dtype == torch.float16)
            def step():
                opt.zero_grad(set_to_none=True)
                with autocast(): sr = model(lq)
                scaler.scale(F.l1_loss(sr.float(), hq)).backward()
                scaler.step(opt); scaler.update()
            for _ in range(warmup): step()
            synchronize(dev)
            if cuda: torch.cuda.reset_peak_memory_stats(dev)      # after warm-up: cuDNN autotuning not counted
            t0 = time.perf_counter()
            for _ in range(iters): step()
            synchronize(dev)
            row['train_img_s'] = round(iters * batch / (time.perf_counter() - t0), 1)
            if cuda: row['peak_mem_gib'] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
    finally:
        torch.backends.cudnn.benchmark = old_bench
        del model, lq
        if cuda: torch.cuda.empty_cache()
    return row


def benchmark_generators(names: Iterable[str] | None = None,  # generator names; None: all of GENERATORS
                         *,
                         device: str | torch.device | None = None,  # None: blindsr.core.get_device()
                         amp: bool | Iterable[bool] | None = None,  # None: (False, True) on CUDA, (False,) elsewhere
                         **kwargs,  # batch, size, channels_last, iters, warmup, train: see benchmark_generator
                        ) -> list[dict]:  # one row per (name, precision)
    """Benchmark several generators; rows hold `name, params, gflops, size, device, precision, channels_last,
    batch, tf32_conv, fwd_ms_per_img, train_img_s, peak_mem_gib` (the last two None where not measured)."""
    dev = get_device(device)
    names = list(GENERATORS) if names is None else list(names)
    for n in names:
        if n not in GENERATORS: raise KeyError(f'unknown generator {n!r}; valid names: {", ".join(GENERATORS)}')
    amps = ((False, True) if dev.type == 'cuda' else (False,)) if amp is None else \
           ((amp,) if isinstance(amp, bool) else tuple(amp))
    return [benchmark_generator(n, device=dev, amp=a, **kwargs) for n in names for a in amps]


def benchmark_table(rows: list[dict]) -> str:
    "The rows of `benchmark_generators` as a markdown table."
    def f(v, spec): return '–' if v is None else format(v, spec)
    size = rows[0]['size'] if rows else 128
    out = [f'| generator | params | GFLOPs @{size}² | device | precision | batch | fwd ms/img | train img/s | peak GiB |',
           '|---|---:|---:|---|---|---:|---:|---:|---:|']
    for r in rows:
        out.append(f"| {r['name']} | {r['params']:,} | {f(r['gflops'], '.1f')} | {r['device']} | {r['precision']} | "
                   f"{r['batch']} | {f(r['fwd_ms_per_img'], '.2f')} | {f(r['train_img_s'], '.1f')} | "
                   f"{f(r['peak_mem_gib'], '.2f')} |")
    return '\n'.join(out)


# %% [markdown]
# A quick run at toy size checks the plumbing (the real table is below):

# %%
rows = benchmark_generators(['msrresnet', 'plksr'], device='cpu', size=16, iters=1, warmup=0, train=True,
                            num_feat=8, num_block=2)
test_eq([r['name'] for r in rows], ['msrresnet', 'plksr'])
test_eq(rows[0]['precision'], 'fp32')
assert rows[0]['fwd_ms_per_img'] > 0 and rows[0]['train_img_s'] > 0 and rows[0]['peak_mem_gib'] is None
print(benchmark_table(rows))
test_fail(lambda: benchmark_generators(['nope'], device='cpu'), contains='valid names')
test_fail(lambda: benchmark_generator('msrresnet', device='cpu', amp=True), contains='CUDA only')


# %% [markdown]
# ## The command -
#
# `python -m blindsr.models` prints the table as markdown and, with `--json PATH`, writes the rows with the
# torch version and the date. On a GPU it benchmarks fp32 and mixed precision at batch 16 by default.

# %%
#| export
def benchmark_cli(argv: list[str] | None = None) -> int:
    "python -m blindsr.models: benchmark the registered generators and print a markdown table."
    ap = argparse.ArgumentParser(prog='python -m blindsr.models', description=benchmark_cli.__doc__)
    ap.add_argument('--names', default=None, help=f'comma-separated generators (default: all: {",".join(GENERATORS)})')
    ap.add_argument('--device', default=None, help="'cpu', 'cuda', 'cuda:1' … (default: the best available)")
    ap.add_argument('--batch', type=int, default=None, help='images per step (default: 16 on CUDA, 1 on CPU)')
    ap.add_argument('--size', type=int, default=128, help='LQ side (default: 128)')
    ap.add_argument('--iters', type=int, default=None, help='timed iterations (default: 20 on CUDA, 3 on CPU)')
    ap.add_argument('--warmup', type=int, default=None, help='untimed iterations (default: 5 on CUDA, 1 on CPU)')
    ap.add_argument('--amp', choices=['both', 'on', 'off'], default=None,
                    help='mixed precision rows (default: both on CUDA, off on CPU)')
    ap.add_argument('--amp-dtype', choices=['bf16', 'fp16'], default=None,
                    help='force the autocast dtype (default: bf16 on sm_80+, fp16 below; fp16 mimics a T4)')
    ap.add_argument('--no-train', action='store_true', help='forward only, no training step')
    ap.add_argument('--no-channels-last', action='store_true', help='keep the contiguous (NCHW) memory format')
    ap.add_argument('--json', default=None, metavar='PATH', help='also write the rows as JSON')
    a = ap.parse_args(argv)
    names = a.names.split(',') if a.names else None
    amp = {None: None, 'both': (False, True), 'on': True, 'off': False}[a.amp]
    try:
        rows = benchmark_generators(names, device=a.device, amp=amp, batch=a.batch, size=a.size, iters=a.iters,
                                    warmup=a.warmup, train=False if a.no_train else None,
                                    channels_last=not a.no_channels_last,
                                    amp_dtype_override={None: None, 'bf16': torch.bfloat16, 'fp16': torch.float16}[a.amp_dtype])
    except (KeyError, ValueError, RuntimeError) as e:
        print(f'python -m blindsr.models: error: {e.args[0] if isinstance(e, KeyError) else e}', file=sys.stderr)
        return 2
    print(benchmark_table(rows))
    if a.json:
        out = Path(a.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({'torch': torch.__version__, 'date': time.strftime('%Y-%m-%d %H:%M:%S'),
                                   'argv': sys.argv[1:] if argv is None else argv, 'rows': rows}, indent=1))
        print(f'rows written to {out}')
    return 0


# %%
#| eval: false
#| export
if __name__ == '__main__': sys.exit(benchmark_cli())

# %%
test_eq(benchmark_cli(['--names', 'msrresnet', '--device', 'cpu', '--size', '8', '--iters', '1', '--warmup', '0',
                       '--json', str(tmp/'bench.json')]), 0)
test_eq(json.loads((tmp/'bench.json').read_text())['rows'][0]['params'], 1_517_571)
test_eq(benchmark_cli(['--names', 'nope', '--device', 'cpu']), 2)

# %% [markdown]
# ## The numbers -
#
# ### CPU (the 2-core development machine)
#
# Forward pass, batch 1, 128×128 → 512×512, fp32, channels_last, fastest of 3 runs after 1 warm-up:
# `python -m blindsr.models --device cpu --iters 3 --warmup 1` (the cell below reruns it). The machine was shared
# with other jobs (load average 1–4 on 2 cores); single runs varied up to 3×, so the table holds each generator's
# fastest over four runs. Treat it as "about a second per face on a laptop-class CPU", not as a ranking.
#
# | generator | params | GFLOPs @128² | CPU fwd ms/img |
# |---|---:|---:|---:|
# | msrresnet | 1,517,571 | 83.1 | 842 |
# | msrresnet_deep | 2,108,419 | 102.4 | 911 |
# | rcan_lite | 2,270,051 | 89.1 | 884 |
# | plksr | 2,198,688 | 71.9 | 639 |
#
# GFLOPs: one 128×128 image, a multiply-add counted as 2 FLOPs, convolutions and matmuls only.
#
# ### GPU
#
# NVIDIA H200, torch 2.11.0+cu130, batch 16, 128×128 LQ against 512×512 targets, channels_last, 5 warm-up and
# 20 timed steps: `python -m blindsr.models --device cuda --json bench_gpu.json` (fp32 and bf16 rows) and
# `... --amp on --amp-dtype fp16` (the fp16 + GradScaler path a T4 takes). fp32 convolutions run as TF32 on this
# card. Training = forward, L1, backward, Adam step; peak memory over the timed steps.
#
# | generator | fp32 fwd ms/img | fp32 train img/s | fp32 peak GiB | bf16 fwd ms/img | bf16 train img/s | bf16 peak GiB | fp16 train img/s |
# |---|---:|---:|---:|---:|---:|---:|---:|
# | msrresnet | 1.01 | 304.6 | 6.43 | 0.69 | 511.2 | 3.28 | 473.9 |
# | msrresnet_deep | 1.20 | 254.6 | 7.43 | 0.82 | 433.3 | 3.78 | 398.8 |
# | rcan_lite | 1.24 | 238.5 | 8.41 | 0.89 | 317.9 | 4.30 | 318.3 |
# | plksr | 0.98 | 299.0 | 6.59 | 0.87 | 400.7 | 3.44 | 375.4 |
#
# Repeats (bf16, 50 steps) were within 1 % for the other three; `rcan_lite` ranged 293–372 img/s over five runs
# (cuDNN's algorithm choices vary between runs). Without channels_last, bf16 training is 12–18 % slower for
# three of them (msrresnet 440, msrresnet_deep 356, plksr 352 img/s; rcan_lite 342, inside its noise). `plksr` with `norm='group'`/`'layer'`:
# 320/324 img/s bf16. Under fp16 autocast, all four give finite outputs (full size, 4×128×128) and 10 fp16
# training steps with a GradScaler skipped none (the scale stayed at 65,536).
#
# H100 / T4 rows: _to be filled from `python -m blindsr.models --device cuda --json bench_<card>.json`._
#
# ## Which generator for a 12-hour T4 -
#
# **`msrresnet_deep`.** Among the cap-filling generators it has the highest fp16 training throughput (399 img/s
# on the H200 against 375 for `plksr` and 318 for `rcan_lite`); it is made only of 64-channel 3×3 convolutions,
# the case cuDNN's fp16 tensor-core kernels on a T4 (sm_75, no bf16) are best at; and it is the one design with a
# measured result on this task (26.57 dB val, 26.65 test after 300k iterations). A T4 has roughly 1/15 of an
# H200's fp16 tensor throughput and memory bandwidth (65 vs ~990 TFLOP/s; 320 GB/s vs 4.8 TB/s), so expect about
# 25–30 img/s at 128→512 — some 1.1M images, ~220 passes over 5,000 faces, in 12 hours before the degradation's
# own cost (an estimate, not a measurement). With that few samples, a known-good recipe beats an untried one.
#
# `plksr` is the one to try in a pilot: its throughput is within 6–8 % of `msrresnet_deep`'s, a receptive field covering the whole
# face, and the fewest FLOPs; but its 17×17 convolutions over 16 channels are the kernel most likely to run worse
# on a T4 than on an H200, and nobody has scored it on this task yet. Run both for the same hour first and keep the
# one ahead in validation PSNR at equal wall-clock. `rcan_lite`'s throughput is 14–32 % lower for a gain the RCAN
# paper puts at 0.1–0.2 dB at equal depth, which that time would more likely buy as extra iterations.

# %%
#| slow
print(benchmark_table(benchmark_generators(device='cpu', iters=3, warmup=1)))

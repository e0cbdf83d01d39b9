# %% [markdown]
# # Devices
# > Which device to run on and what it can do: a GPU this torch build cannot run is caught before any work, mixed precision and compilation are chosen by the card, and benchmarks name and synchronise it.

# %%
#| default_exp device

# %%
#| export
from __future__ import annotations

import platform
import warnings

import torch
from torch import nn

# %%
#| hide
from contextlib import ExitStack
from unittest import mock

from fastcore.test import test_eq, test_fail


# %% [markdown]
# Every part of blindsr that touches a GPU asks this module: the trainer (device, mixed precision, `channels_last`,
# `torch.compile`), inference (a device that falls back to the CPU), and the benchmarks (a device's name, waiting
# for its queue). One place, so a rule about cards is written once.
#
# ## Choosing a device -
#
# A P100 (compute capability 6.0) under a torch build compiled without `sm_60` is the trap this section exists
# for: `torch.cuda.is_available()` says True, then the first kernel dies with "no kernel image is available for
# execution on the device". We check the card's capability against `torch.cuda.get_arch_list()` before any work,
# with CUDA's compatibility rules: a cubin `sm_XY` runs on the same major version with an equal or higher minor
# (`sm_80` runs on `sm_86`), and PTX `compute_XY` is compiled on the fly for any card at or above `XY`.

# %%
#| export
class UnsupportedGPUError(RuntimeError):
    "The GPU is visible, but this torch build has no kernels for its architecture."


# CUDA's rule lives in `blindsr.cuda_guard` (standard library only, so the Kaggle kernel can run it before torch
# is installed); blindsr.device uses the same function.
from blindsr.cuda_guard import arch_supported as cuda_arch_supported

# %%
test_eq(cuda_arch_supported((6, 0), ['sm_75', 'sm_80', 'sm_86', 'sm_90', 'sm_100', 'sm_120']), False)  # P100, cu128
test_eq(cuda_arch_supported((6, 0), ['sm_50', 'sm_60', 'sm_70', 'sm_75', 'sm_80', 'sm_86', 'sm_90']), True)
test_eq(cuda_arch_supported((7, 5), ['sm_75', 'sm_80', 'sm_90']), True)                              # T4
test_eq(cuda_arch_supported((8, 6), ['sm_80', 'sm_90']), True)                                       # A10 runs sm_80
test_eq(cuda_arch_supported((8, 0), ['sm_86', 'sm_90']), False)
test_eq(cuda_arch_supported((9, 0), ['sm_80', 'compute_80']), True)                                  # via PTX
test_eq(cuda_arch_supported((9, 0), ['sm_90a']), True)
test_eq(cuda_arch_supported((7, 0), []), False)                                                      # CPU build

# %% [markdown]
# When the build lacks the card, the error says what to install instead. The last PyTorch builds that still
# carry `sm_60`/`sm_70` (P100, V100) are the CUDA 12.6 ones, up to torch 2.14; their pins carry the local label
# `+cu126`, without which pip keeps an installed `2.14.1+cu130` (see `nbs/09_cuda_guard.ipynb`). Newer cards get
# the current default build, CUDA 13.0.

# %%
#| export
from blindsr.cuda_guard import LEGACY_INDEX, LEGACY_TORCH   # the last builds with sm_60/sm_70 kernels and their index


def torch_build_hint(capability: tuple[int, int],  # (major, minor) of the unsupported GPU
                    ) -> str:  # a pip command that installs a torch build for that GPU
    "The pip command that installs a torch build able to run on a GPU of `capability`."
    if capability < (7, 5):
        return f'pip install {LEGACY_TORCH} --index-url {LEGACY_INDEX}'
    return 'pip install -U torch torchvision --index-url https://download.pytorch.org/whl/cu130'


# %%
test_eq(torch_build_hint((6, 0)), 'pip install torch==2.14.1+cu126 torchvision==0.29.1+cu126 '
                                  '--index-url https://download.pytorch.org/whl/cu126')
test_eq(torch_build_hint((7, 0)), torch_build_hint((6, 0)))
test_eq(torch_build_hint((7, 5)), 'pip install -U torch torchvision --index-url https://download.pytorch.org/whl/cu130')


# %%
#| export
def _check_cuda_device(index: int) -> None:
    "Raise UnsupportedGPUError if torch cannot run kernels on CUDA device `index`."
    cap = tuple(torch.cuda.get_device_capability(index))
    arch_list = torch.cuda.get_arch_list()
    if cuda_arch_supported(cap, arch_list): return
    name = torch.cuda.get_device_name(index)
    raise UnsupportedGPUError(
        f'GPU {index} ({name}) has compute capability {cap[0]}.{cap[1]} (sm_{cap[0]}{cap[1]}), but this torch '
        f'{torch.__version__} was built for {", ".join(arch_list) or "no GPU"}: every CUDA kernel would fail with '
        f'"no kernel image is available". Install a build that has sm_{cap[0]}{cap[1]}:\n    '
        f'{torch_build_hint(cap)}\nor run on the CPU with device="cpu".')


def get_device(device: str | torch.device | None = None,  # None: the best available; or 'cpu', 'cuda', 'cuda:1', 'mps'
              ) -> torch.device:
    """The device to run on: CUDA if present and usable, else Apple MPS, else CPU.

    A device asked for that is not there (`cuda` without a GPU, `cuda:3` on a one-GPU machine, `mps` off a Mac) or
    that torch does not know (`gpu`) raises `ValueError` naming the `--device` flag (the commands' name for this
    argument) and what to use instead. A CUDA GPU that this torch build cannot run (e.g. a P100 under a build
    without sm_60) raises `UnsupportedGPUError` naming the build to install, instead of failing later inside a kernel."""
    if device is not None:
        try: dev = torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            raise ValueError(f"--device {device!r} is not a device torch knows; use cpu, cuda, cuda:N (N = a GPU's "
                             "number) or mps, or leave it out for the best available") from None
        if dev.type == 'cuda':
            if not torch.cuda.is_available():
                raise ValueError(f'--device {device!r} asked for a GPU, but torch {torch.__version__} sees no CUDA GPU '
                                 'on this machine; use --device cpu (device="cpu"), leave --device out, or install a '
                                 'CUDA build of torch')
            n = torch.cuda.device_count()
            if dev.index is not None and dev.index >= n:
                raise ValueError(f'--device {device!r}: this machine has {n} CUDA GPU(s), numbered 0 to {n - 1}; '
                                 'use one of those, or --device cuda for the first')
            _check_cuda_device(dev.index if dev.index is not None else torch.cuda.current_device())
        elif dev.type == 'mps' and not (getattr(torch.backends, 'mps', None) is not None and torch.backends.mps.is_available()):
            raise ValueError(f'--device {device!r}: Apple MPS is not available on this machine; use --device cpu')
        return dev
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()): _check_cuda_device(i)
        return torch.device('cuda')
    if getattr(torch.backends, 'mps', None) is not None and torch.backends.mps.is_available():
        return torch.device('mps')
    return torch.device('cpu')


# %% [markdown]
# With no GPU we get the CPU; with a P100 mocked under a build without `sm_60` we get the error and its fix, and
# with a T4 under the same build we get CUDA:

# %%
test_eq(get_device('cpu'), torch.device('cpu'))
cu128 = ['sm_75', 'sm_80', 'sm_86', 'sm_90', 'sm_100', 'sm_120']
def fake_gpu(cap, arch, name='Tesla P100-PCIE-16GB'):
    return [mock.patch.object(torch.cuda, 'is_available', return_value=True),
            mock.patch.object(torch.cuda, 'device_count', return_value=1),
            mock.patch.object(torch.cuda, 'current_device', return_value=0),
            mock.patch.object(torch.cuda, 'get_device_capability', return_value=cap),
            mock.patch.object(torch.cuda, 'get_device_name', return_value=name),
            mock.patch.object(torch.cuda, 'get_arch_list', return_value=arch)]
with ExitStack() as st:
    for p in fake_gpu((6, 0), cu128): st.enter_context(p)
    test_fail(get_device, contains='sm_60')
    test_fail(get_device, contains='cu126')
    try: get_device()
    except UnsupportedGPUError as e: print(e)
with ExitStack() as st:
    for p in fake_gpu((7, 5), cu128, 'Tesla T4'): st.enter_context(p)
    test_eq(get_device(), torch.device('cuda'))
with mock.patch.object(torch.cuda, 'is_available', return_value=False):
    test_fail(lambda: get_device('cuda'), contains="--device 'cuda' asked for a GPU")
    test_fail(lambda: get_device('cuda:1'), contains='--device cpu')
    test_eq(get_device().type in ('cpu', 'mps'), True)
with ExitStack() as st:
    for p in fake_gpu((7, 5), cu128, 'Tesla T4'): st.enter_context(p)
    test_fail(lambda: get_device('cuda:1'), contains='1 CUDA GPU(s), numbered 0 to 0')
test_fail(lambda: get_device('gpu'), contains="--device 'gpu' is not a device torch knows")
try: get_device('gpu')
except ValueError as e: assert type(e) is ValueError         # a user's mistake: commands report it in one line


# %% [markdown]
# Restoring a few faces needs no GPU, so inference asks for `usable_device`: the same choice, except that with no
# device asked for, a GPU this torch cannot run falls back to the CPU with a warning instead of stopping. A device
# asked for by name is still checked strictly.

# %%
#| export
def usable_device(device: str | torch.device | None = None,  # None: the best usable; or 'cpu', 'cuda', …
                 ) -> torch.device:
    "`get_device`, except that with no device asked for, a GPU torch cannot use falls back to the CPU (with a warning)."
    if device is not None: return get_device(device)
    try: return get_device()
    except UnsupportedGPUError as e:
        warnings.warn(f'{e}\nRunning on the CPU instead.')
        return torch.device('cpu')


def model_device(model: nn.Module) -> torch.device:
    "The device of a model's first parameter (the CPU for a model without parameters)."
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device('cpu')


# %%
test_eq(usable_device('cpu'), torch.device('cpu'))
test_eq(model_device(nn.Linear(2, 2)), torch.device('cpu'))
with ExitStack() as st:
    for p in fake_gpu((6, 0), ['sm_75', 'sm_80', 'sm_90']): st.enter_context(p)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        test_eq(usable_device(), torch.device('cpu'))           # a P100 under a build without sm_60: CPU
    assert 'sm_60' in str(caught[0].message)
    test_fail(lambda: usable_device('cuda'), contains='sm_60')  # asked for explicitly: the error stands


# %% [markdown]
# ## What a card can do -
#
# Mixed precision follows the card: bf16 autocast on sm_80+ (A100, H100, L4: no loss scaling needed), fp16 with a
# gradient scaler on sm_60/sm_70/sm_75 (P100, V100, T4 — the T4 has no bf16 and its tensor cores run fp16), fp32 on
# the CPU. Compute capability 7.0 is the other line that matters: tensor cores (so `channels_last` pays) and
# Triton's minimum (so `torch.compile` can run).

# %%
#| export
def amp_dtype(device: torch.device) -> torch.dtype | None:
    "The autocast dtype we train with on `device`: bf16 on CUDA sm_80+, fp16 below, None (fp32) elsewhere."
    if device.type != 'cuda': return None
    return torch.bfloat16 if torch.cuda.get_device_capability(device) >= (8, 0) else torch.float16


def is_cuda_sm70_or_newer(device: torch.device) -> bool:
    "A CUDA card of compute capability 7.0 or newer: tensor cores, and Triton's minimum for torch.compile."
    return device.type == 'cuda' and torch.cuda.get_device_capability(device) >= (7, 0)


def grad_scaler(enabled: bool):
    "A CUDA GradScaler (fp16 training) on torch >= 2.3 (torch.amp) and on older torch (torch.cuda.amp)."
    if hasattr(torch.amp, 'GradScaler'): return torch.amp.GradScaler('cuda', enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


# %%
test_eq(amp_dtype(torch.device('cpu')), None)
test_eq(is_cuda_sm70_or_newer(torch.device('cpu')), False)
for cap, want, sm70 in (((6, 0), torch.float16, False), ((7, 5), torch.float16, True), ((9, 0), torch.bfloat16, True)):
    with mock.patch.object(torch.cuda, 'get_device_capability', return_value=cap):
        test_eq(amp_dtype(torch.device('cuda')), want); test_eq(is_cuda_sm70_or_newer(torch.device('cuda')), sm70)
test_eq(grad_scaler(False).is_enabled(), False)


# %% [markdown]
# ## Timing and naming -
#
# CUDA runs asynchronously: a timer must wait for the card's queue to drain before reading the clock, and a
# benchmark row should say which card (or how many CPU threads) it was measured on.

# %%
#| export
def synchronize(device: torch.device) -> None:
    "Wait until every kernel queued on `device` has run (nothing to wait for off CUDA)."
    if device.type == 'cuda': torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    "A card's name and compute capability, or the CPU's kind and torch's thread count."
    if device.type == 'cuda':
        return f'{torch.cuda.get_device_name(device)} (sm_{"".join(map(str, torch.cuda.get_device_capability(device)))})'
    return f'{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)'


# %%
synchronize(torch.device('cpu'))
print(device_name(torch.device('cpu')))
assert device_name(torch.device('cpu')).startswith('cpu (') and 'threads' in device_name(torch.device('cpu'))
with ExitStack() as st:
    for p in fake_gpu((6, 0), cu128): st.enter_context(p)
    test_eq(device_name(torch.device('cuda')), 'Tesla P100-PCIE-16GB (sm_60)')

# %% [markdown]
# # Degradation
# > The organisers' LQ synthesis, exactly: blur kernels, resize, noise, JPEG and 8-bit rounding as pure functions; presets as data; sampling separate from application; a numpy/OpenCV backend per image and a torch backend per batch.

# %%
#| default_exp degradation

# %%
#| export
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

# %%
#| hide
import json
import textwrap

import matplotlib.pyplot as plt
from fastcore.test import test_eq, test_fail, test_close, test_ne
from nbdev.showdoc import show_doc

import blindsr.degradation as packaged          # this notebook's exported module: the picture at the top uses it
from blindsr.core import img_to_tensor, tensor_to_img
from blindsr.metrics import bicubic_psnr, psnr
from blindsr.samples import astronaut_face


def test_face(h=128, w=128, seed=0):
    "A smooth synthetic 'face-like' image with edges and texture, (h, w, 3) uint8."
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = 0.5 + 0.25 * np.sin(6 * xx + r.random() * 3)[..., None] * np.array([1, 0.8, 0.6])
    img += 0.2 * (((xx - 0.5) ** 2 + (yy - 0.45) ** 2) < 0.08)[..., None] * np.array([0.9, 0.6, 0.5])
    img += 0.05 * cv2.GaussianBlur(r.standard_normal((h, w, 3)), (0, 0), 1.5)
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def show_images(images, titles, size: float = 2.2, fontsize: int = 8):
    "A row of images (nearest-neighbour, so LQ pixels stay visible), each with its title."
    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size + 0.5), squeeze=False)
    for ax, img, title in zip(axes[0], images, titles):
        ax.imshow(img, interpolation='nearest', cmap='magma'); ax.set_title(title, fontsize=fontsize); ax.axis('off')
    fig.tight_layout()


def wrap(text: str, width: int = 34) -> str: return '\n'.join(textwrap.wrap(text, width))


# %% [markdown]
# Use it to make LQ faces the way the organisers made theirs: draw the random parameters of a degradation with
# `sample`, then apply them with `degrade_image` (one image, numpy, on the CPU) or `degrade_batch` (a batch, torch,
# on any device):
#
# ```python
# params = sample('ai6126_2024', np.random.default_rng(0))   # one draw of the 2024 course pipeline
# lq = degrade_image(hq, params)                             # (512, 512, 3) uint8 -> (128, 128, 3) uint8
# ```
#
# One face through each preset (seed 0), the LQ shown at the HQ's size:

# %%
#| exec_doc
#| echo: false
hq = astronaut_face(512)
show_images([hq] + [packaged.degrade_image(hq, packaged.sample(name, np.random.default_rng(0))) for name in packaged.PRESETS],
            ['HQ 512×512'] + [f'{name}: LQ 128×128' for name in packaged.PRESETS], size=2.6)


# %% [markdown]
# The LQ faces a model learns from are made on the fly from HQ faces. The 2024 course used Real-ESRGAN's
# second-order pipeline (blur → resize → noise → JPEG, twice, then a final resize + sinc + JPEG in random order,
# then 8-bit rounding) run on the GPU with BasicSR's functions and its `DiffJPEG`; the 2023 course a single-order
# OpenCV pipeline. If our LQ differ from theirs, every model trained with blindsr scores worse on their test set,
# so each piece below is the same mathematics as the reference, written as a small pure function and checked
# against a direct computation.
#
# The notebook builds the pipeline in the order it runs: kernels, presets (data), the typed parameters a preset's
# sampler draws (`sample`), the numpy and torch operations, and the two backends that apply parameters —
# `degrade_image`, one image on the CPU, and `degrade_batch`, a batch on any device (what training uses, per batch).
# Writing LQ sets to disk (`blindsr_degrade`) is `blindsr.lqset`.
#
# Layout and range conventions: numpy images are `(H, W, 3)` float32 RGB in [0, 1]; torch batches are
# `(B, 3, H, W)` float32 RGB in [0, 1]; `hq` is the sharp input, `lq` the degraded output at a quarter of its size.

# %% [markdown]
# ## Blur kernels
#
# Every kernel lives on a centred grid of odd size (21 for the 2024 pipeline, 41 for 2023): a kernel of size
# `k < pad_to` is zero outside its own `k × k` window, exactly as BasicSR pads a `k × k` kernel with zeros.
# The Gaussian family is one formula on the quadratic form `q = [x y] Σ⁻¹ [x y]ᵀ` with `Σ = R(θ) diag(σx², σy²) R(θ)ᵀ`:
#
# | kind | kernel ∝ |
# |---|---|
# | `iso` / `aniso` | `exp(-q/2)` (iso: σy = σx, θ = 0) |
# | `generalized_iso` / `generalized_aniso` | `exp(-q^β / 2)` |
# | `plateau_iso` / `plateau_aniso` | `1 / (q^β + 1)` |
# | `sinc` | `ωc J₁(ωc r) / (2π r)`, `ωc²/(4π)` at the centre (circular low-pass, cutoff ωc) |
#
# All kernels are computed in float64 with torch, vectorised over a batch of parameter sets (no Python loop, no
# per-pixel host work), on any device, normalised to sum 1 and returned as float32. The batched degradation builds
# them on the host and copies them over once: a few dozen small array operations, cheap on a CPU, where on a GPU
# each would be a kernel launch — and the torch degradation is bound by its launches, not by the GPU. For the same
# reason a stage blurs its whole batch in one FFT even when some images draw no blur (they are put back
# unchanged): cuFFT plans are then keyed by the image size alone, so the plan cache fills early in a run. (The
# measurements behind both choices are in `08_bench`.)

# %%
#| export
def to_device(a,  # numpy array or nested list of numbers
              device: torch.device,
              dtype: torch.dtype | None = None,
             ) -> torch.Tensor:
    "Host values -> a tensor on `device` without stalling the GPU (pinned memory, non-blocking copy)."
    t = torch.as_tensor(np.asarray(a), dtype=dtype)
    if torch.device(device).type != 'cuda': return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


_CONSTS: dict = {}


def _const(name: str, device: torch.device, make) -> torch.Tensor:
    "A constant tensor made once per device (no host-to-device copy in the hot path)."
    key = (name, str(device))
    if key not in _CONSTS: _CONSTS[key] = make().to(device)
    return _CONSTS[key]


# %%
#| export
KERNEL_KINDS = ('none', 'iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso',
                'sinc')
_KIND_CODE = {k: i for i, k in enumerate(KERNEL_KINDS)}


def make_kernels(kind: Sequence[str],  # one of KERNEL_KINDS per kernel
                 size: Sequence[int],  # odd support size k <= pad_to per kernel
                 sigma_x: Sequence[float],  # σx (pixels) per kernel; Gaussian family only
                 sigma_y: Sequence[float],  # σy (pixels); ignored for *_iso
                 theta: Sequence[float],  # rotation (radians); ignored for *_iso
                 beta: Sequence[float],  # shape β for generalized (exp(-q^β/2)) and plateau (1/(q^β+1))
                 cutoff: Sequence[float],  # ωc (radians) for sinc
                 pad_to: int = 21,  # size of the returned grid
                 device: torch.device | str | None = None,  # where to build them (the GPU path builds them on the GPU)
                ) -> torch.Tensor:  # (N, pad_to, pad_to) float32 on `device`, each kernel sums to 1
    "Blur kernels of any kind, vectorised over N parameter sets (float64 maths, float32 result)."
    codes = [_KIND_CODE.get(k, -1) for k in np.asarray(kind).tolist()]
    if -1 in codes: raise ValueError(f'unknown kernel kind(s) {sorted({k for k, c in zip(np.asarray(kind).tolist(), codes) if c < 0})}; valid: {KERNEL_KINDS}')
    n = len(codes)
    vals = np.stack([np.broadcast_to(np.asarray(v, np.float64), (n,)) for v in (size, sigma_x, sigma_y, theta, beta, cutoff)])
    size_np = vals[0]
    if np.any((size_np % 2 != 1) | (size_np > pad_to)): raise ValueError(f'kernel sizes must be odd and <= {pad_to}, got {size_np}')
    if pad_to % 2 != 1: raise ValueError(f'kernel grid size must be odd, got {pad_to}')
    dev = torch.device(device) if device is not None else torch.device('cpu')
    dt = torch.float32 if dev.type == 'mps' else torch.float64
    v = to_device(np.nan_to_num(vals), dev, dt)                     # one copy of all parameters
    code = to_device(np.asarray(codes), dev)
    size, sx, sy, th, beta, wc = (t.view(n, 1, 1) for t in v)
    code = code.view(n, 1, 1)
    ax = torch.arange(-(pad_to // 2), pad_to // 2 + 1, dtype=dt, device=dev)
    yy, xx = torch.meshgrid(ax, ax, indexing='ij')                   # xx varies along columns, yy along rows
    iso = (code == 1) | (code == 3) | (code == 5)
    sy = torch.where(iso, sx, sy); th = torch.where(iso, torch.zeros_like(th), th)
    # inverse covariance of R diag(sx², sy²) Rᵀ is R diag(1/sx², 1/sy²) Rᵀ
    c, s = torch.cos(th), torch.sin(th)
    u = c * xx + s * yy            # coordinates in the rotated frame: Rᵀ [x y]ᵀ
    w = -s * xx + c * yy
    q = u ** 2 / sx.clamp_min(1e-12) ** 2 + w ** 2 / sy.clamp_min(1e-12) ** 2
    qb = q.pow(beta)
    k = torch.where((code == 3) | (code == 4), torch.exp(-0.5 * qb),
                    torch.where((code == 5) | (code == 6), 1.0 / (qb + 1.0), torch.exp(-0.5 * q)))
    r = torch.sqrt(xx ** 2 + yy ** 2)
    wr = wc * r
    sinc = torch.where(r == 0, wc ** 2 / (4 * math.pi), wc * torch.special.bessel_j1(wr) / (2 * math.pi * r.clamp_min(1e-12)))
    k = torch.where(code == 7, sinc, k)
    k = torch.where(code == 0, (r == 0).to(dt).expand_as(k), k)
    half = torch.div(size, 2, rounding_mode='floor')
    k = k * ((xx.abs() <= half) & (yy.abs() <= half))
    k = k / k.sum(dim=(1, 2), keepdim=True)
    return k.float()


# %% [markdown]
# One kernel of every kind, each on the 21×21 grid:

# %%
#| exec_doc
kernels = make_kernels(KERNEL_KINDS, size=[1, 15, 21, 15, 21, 15, 21, 21], sigma_x=[0, 2, 3, 2, 3, 2, 3, 0],
                       sigma_y=[0, 2, 1, 2, 1, 2, 1, 0], theta=[0, 0, 0.6, 0, 0.6, 0, 0.6, 0],
                       beta=[1, 1, 1, 0.6, 3, 1.5, 1.5, 1], cutoff=[0, 0, 0, 0, 0, 0, 0, 1.2])
kernels.shape, kernels.sum((1, 2))

# %%
#| exec_doc
#| echo: false
show_images(list(kernels.numpy()), KERNEL_KINDS, size=1.6)


# %% [markdown]
# A direct, one-kernel-at-a-time reference written from the formulas (the covariance matrix built and inverted
# explicitly, the Bessel function from its integral definition, zero padding by `np.pad`) agrees to float32
# precision for every kind.

# %%
#| hide
def ref_kernel(kind, k, sx, sy, th, beta, wc, pad_to=21):
    ax = np.arange(-(k // 2), k // 2 + 1, dtype=np.float64); xx, yy = np.meshgrid(ax, ax)
    if kind in ('iso', 'generalized_iso', 'plateau_iso'): sy, th = sx, 0.0
    if kind != 'sinc':
        R = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
        inv = np.linalg.inv(R @ np.diag([sx ** 2, sy ** 2]) @ R.T)
        g = np.stack([xx, yy], -1)
        q = np.einsum('...i,ij,...j->...', g, inv, g)
    if kind in ('iso', 'aniso'): ker = np.exp(-0.5 * q)
    elif kind.startswith('generalized'): ker = np.exp(-0.5 * q ** beta)
    elif kind.startswith('plateau'): ker = 1 / (q ** beta + 1)
    elif kind == 'sinc':
        r = np.sqrt(xx ** 2 + yy ** 2)
        t = np.linspace(0, np.pi, 20001)
        j1 = lambda z: np.trapezoid(np.cos(t[None] - z[:, None] * np.sin(t[None])), t, axis=1) / np.pi
        with np.errstate(invalid='ignore', divide='ignore'):
            ker = (wc * j1(wc * r.ravel()).reshape(r.shape)) / (2 * np.pi * r)
        ker[k // 2, k // 2] = wc ** 2 / (4 * np.pi)
    ker = ker / ker.sum()
    p = (pad_to - k) // 2
    return np.pad(ker, p)

cases = [('iso', 7, 1.3, 0, 0, 1, 0), ('aniso', 21, 2.5, 0.4, 0.7, 1, 0), ('aniso', 13, 0.3, 2.9, -2.0, 1, 0),
         ('generalized_iso', 9, 1.1, 0, 0, 0.6, 0), ('generalized_aniso', 15, 2.0, 1.0, 1.2, 3.5, 0),
         ('plateau_iso', 11, 1.5, 0, 0, 1.7, 0), ('plateau_aniso', 21, 2.2, 0.8, -0.4, 1.2, 0),
         ('sinc', 7, 0, 0, 0, 0, 2.0), ('sinc', 19, 0, 0, 0, 0, 0.8)]
got = make_kernels(*zip(*cases)).numpy()
for c, kg in zip(cases, got):
    test_close(kg, ref_kernel(*c), eps=2e-6)
test_close(got.sum((1, 2)), np.ones(len(cases)), eps=1e-5)
test_eq(make_kernels(['none'], [7], [0], [0], [0], [0], [0])[0, 10, 10].item(), 1.0)
test_fail(lambda: make_kernels(['box'], [7], [1], [1], [0], [1], [0]), contains='box')

# %% [markdown]
# ## Presets are data
#
# A preset is a `DegradationConfig`: one `StageConfig` per order (blur → resize → noise → JPEG), a
# `FinalConfig`, and the two codecs that are part of what made the organisers' LQ: which JPEG (`'torch'`, the
# DiffJPEG mathematics BasicSR runs on the GPU, or `'opencv'`, libjpeg through `cv2.imencode`) and whose resize
# semantics (`'torch'`: `F.interpolate` with `scale_factor`, as Real-ESRGAN; `'opencv'`: `cv2.resize`).
# Second order is simply two stages.

# %%
#| export
PI = math.pi
SIZES_7_21 = tuple(range(7, 22, 2))
MIXED_KINDS = ('iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso')
MIXED_PROBS = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
MODES = ('area', 'bilinear', 'bicubic')


@dataclass(frozen=True)
class BlurConfig:
    "How one blur kernel is drawn."
    prob: float = 1.0                           # chance of blurring at all (else identity)
    sizes: tuple = SIZES_7_21                   # odd kernel sizes, drawn uniformly
    pad_to: int = 21                            # kernels are zero-padded to this size
    sinc_prob: float = 0.1                      # chance of a sinc (circular low-pass) kernel instead
    sinc_cutoff_small: tuple = (PI / 3, PI)     # ωc range when size < sinc_small_below
    sinc_cutoff_large: tuple = (PI / 5, PI)     # ωc range otherwise
    sinc_small_below: int = 13
    kinds: tuple = MIXED_KINDS                  # kernel families of the non-sinc kernels …
    kind_probs: tuple = MIXED_PROBS             # … and their probabilities
    sigma: tuple = (0.2, 3.0)                   # σx, σy ~ U(sigma) (pixels)
    rotation: tuple = (-PI, PI)                 # θ ~ U(rotation)
    beta_generalized: tuple = (0.5, 4.0)        # β: U(lo, 1) or U(1, hi), 50/50
    beta_plateau: tuple = (1.0, 2.0)


@dataclass(frozen=True)
class ResizeConfig:
    "How one resize is drawn."
    probs: tuple = (0.2, 0.7, 0.1)              # up / down / keep
    up: tuple = (1.0, 1.5)                      # scale ~ U(up) when up
    down: tuple = (0.2, 1.0)                    # scale ~ U(down) when down
    modes: tuple = MODES                        # interpolation, drawn uniformly
    relative_to: str = 'input'                  # 'input': scale the current image; 'lq': size = LQ size × scale
    scale_dist: str = 'uniform'                 # 'uniform' in scale, or 'inverse' (uniform in 1/scale)


@dataclass(frozen=True)
class NoiseConfig:
    "How one noise is drawn: Gaussian with `gaussian_prob`, else Poisson."
    gaussian_prob: float = 0.5
    sigma: tuple = (1.0, 20.0)                  # Gaussian σ in 1/255 units
    poisson_scale: tuple = (0.05, 2.0)          # Poisson noise multiplier
    gray_prob: float = 0.4                      # same noise on all three channels


@dataclass(frozen=True)
class StageConfig:
    "One order of degradation: blur → resize → noise → JPEG (each may be None)."
    blur: BlurConfig | None = BlurConfig()
    resize: ResizeConfig | None = ResizeConfig()
    noise: NoiseConfig | None = NoiseConfig()
    jpeg: tuple | None = (50, 95)               # quality ~ U(jpeg)


@dataclass(frozen=True)
class FinalConfig:
    "The last step to the LQ size."
    modes: tuple = MODES                        # resize mode to the LQ size
    resize_first_prob: float = 0.5             # [resize → sinc → JPEG] with this chance, else [JPEG → resize → sinc]
    sinc_prob: float = 0.8                      # final sinc filter (else identity)
    sinc_cutoff: tuple = (PI / 3, PI)
    sinc_sizes: tuple = SIZES_7_21
    jpeg: tuple | None = (70, 95)
    via_hq: bool = False                        # 2023: first resize back to the HQ size (a mode from `modes`) and round to 8 bits; the resize to the LQ size is then 'area'


@dataclass(frozen=True)
class DegradationConfig:
    "A whole LQ synthesis pipeline; the presets below are instances."
    name: str
    stages: tuple                               # StageConfig per order (2 = second order)
    final: FinalConfig = FinalConfig()
    jpeg_codec: str = 'torch'                   # 'torch' (DiffJPEG mathematics) or 'opencv' (libjpeg)
    resize_codec: str = 'torch'                 # 'torch' (F.interpolate) or 'opencv' (cv2.resize)
    scale: int = 4                              # HQ size / LQ size

    def __post_init__(self):
        if self.jpeg_codec not in ('torch', 'opencv'): raise ValueError(f"jpeg_codec must be 'torch' or 'opencv', got {self.jpeg_codec!r}")
        if self.resize_codec not in ('torch', 'opencv'): raise ValueError(f"resize_codec must be 'torch' or 'opencv', got {self.resize_codec!r}")


# %% [markdown]
# The three course presets, with every number from the course handouts (`../shared/course-spec.md`), and a
# plain bicubic ×4 downscale for sanity checks (classical, non-blind SR):

# %%
#| export
AI6126_2024 = DegradationConfig(
    name='ai6126_2024',
    stages=(StageConfig(),
            StageConfig(blur=BlurConfig(prob=0.8, sigma=(0.2, 1.5)),
                        resize=ResizeConfig(probs=(0.3, 0.4, 0.3), up=(1.0, 1.2), down=(0.3, 1.0), relative_to='lq'),
                        noise=NoiseConfig(sigma=(1.0, 15.0), poisson_scale=(0.05, 1.5)),
                        jpeg=None)),
    final=FinalConfig())

AI6126_2023 = DegradationConfig(
    name='ai6126_2023',
    stages=(StageConfig(blur=BlurConfig(sizes=(41,), pad_to=41, sinc_prob=0.0, kinds=('iso', 'aniso'),
                                        kind_probs=(0.5, 0.5), sigma=(0.2, 5.0)),
                        resize=ResizeConfig(probs=(0.0, 1.0, 0.0), down=(0.0625, 1.0)),
                        noise=NoiseConfig(gaussian_prob=1.0, sigma=(0.0, 25.0), gray_prob=0.0),
                        jpeg=(50, 95)),),
    final=FinalConfig(resize_first_prob=1.0, sinc_prob=0.0, jpeg=None, via_hq=True),
    jpeg_codec='opencv', resize_codec='opencv')

SEED_REPORT_2024 = DegradationConfig(
    name='seed_report_2024',
    stages=(StageConfig(blur=BlurConfig(sinc_prob=0.0, kinds=('iso',), kind_probs=(1.0,), sigma=(0.2, 3.0)),
                        resize=ResizeConfig(probs=(0.0, 0.0, 1.0), modes=('bicubic',), relative_to='lq'),
                        noise=NoiseConfig(gaussian_prob=1.0, sigma=(15.0, 15.0), gray_prob=0.0),
                        jpeg=(5, 50)),),
    final=FinalConfig(modes=('bicubic',), resize_first_prob=1.0, sinc_prob=0.0, jpeg=None),
    jpeg_codec='opencv', resize_codec='opencv')

BICUBIC = DegradationConfig(     # classical (non-blind) x4 SR: bicubic downscaling only; for sanity checks and tests
    name='bicubic',
    stages=(StageConfig(blur=None, resize=ResizeConfig(probs=(0.0, 0.0, 1.0), modes=('bicubic',), relative_to='lq'),
                        noise=None, jpeg=None),),
    final=FinalConfig(modes=('bicubic',), resize_first_prob=1.0, sinc_prob=0.0, jpeg=None),
    jpeg_codec='opencv', resize_codec='opencv')

PRESETS = {c.name: c for c in (AI6126_2024, AI6126_2023, SEED_REPORT_2024, BICUBIC)}


def get_preset(name: str | DegradationConfig = 'ai6126_2024') -> DegradationConfig:
    "A preset by name (or a config passed through)."
    if isinstance(name, DegradationConfig): return name
    if name not in PRESETS: raise KeyError(f'unknown degradation preset {name!r}; choose one of {sorted(PRESETS)}')
    return PRESETS[name]


# %% [markdown]
# A preset is plain data to read: the 2024 pipeline's second-order noise, and the presets there are.

# %%
#| exec_doc
list(PRESETS), get_preset('ai6126_2024').stages[1].noise

# %%
#| hide
test_eq(get_preset().name, 'ai6126_2024')
test_eq(len(get_preset('ai6126_2024').stages), 2)
test_fail(lambda: get_preset('ai6126_2025'), contains='ai6126_2023')
test_fail(lambda: replace(AI6126_2024, jpeg_codec='pil'), contains='jpeg_codec')


# %% [markdown]
# ## Parameters, typed
#
# Everything random about a degradation is decided before any pixel is touched, and written down in small
# dataclasses, one per step, whose fields are numpy columns with one value per image: `n` images' blur kernels
# are one `BlurParams`, not `n` dicts. A stage (one order) is a `StageParams` of blur, resize, noise and JPEG
# quality; the last step to the LQ size is a `FinalParams`; `DegParams` holds a stage per order, the final step,
# the preset they were drawn from and a per-image seed for the noise realisations. A value a draw does not use
# is NaN (numbers), `''` (modes) or `'none'` (kinds), so every image has the same fields.

# %%
#| export
class ParamColumns:
    """What the parameter dataclasses share: every field is a numpy column with one value per image (or a nested
    `ParamColumns`), so n images' parameters index like one array."""
    def __len__(self) -> int: return len(getattr(self, fields(self)[0].name))

    def __getitem__(self, idx):
        "The parameters of some images: an int gives length 1, a slice, index array or bool mask the selected ones."
        if isinstance(idx, (int, np.integer)): idx = [int(idx)]
        return replace(self, **{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def record(self, i: int) -> dict:
        "Image i's values as plain JSON (unused values as None, floats to 4 decimals)."
        return {f.name: _plain(getattr(self, f.name), i) for f in fields(self)}


def _plain(column, i):
    "Image i's value of a column, JSON-ready (or the record of a nested ParamColumns)."
    if isinstance(column, ParamColumns): return column.record(i)
    x = column[i].item()
    if isinstance(x, float): return None if math.isnan(x) else round(x, 4)
    return None if x == '' else x


# %% [markdown]
# One dataclass per step. Their fields are named as the step's own words (a blur's `kind`, `size`, `sigma_x`; a
# resize's `scale`, `mode`), so a stage reads `stage.blur.sigma_x`, `stage.resize.scale`, `stage.noise.level`.

# %%
#| export
@dataclass(frozen=True)
class BlurParams(ParamColumns):
    "The blur kernel of each image (the formulas of `make_kernels`)."
    kind: np.ndarray        # (n,) str: one of KERNEL_KINDS; 'none' leaves the image unblurred
    size: np.ndarray        # (n,) int: odd support k of the kernel (1 when kind is 'none')
    pad_to: np.ndarray      # (n,) int: side of the kernel grid (the preset's BlurConfig.pad_to)
    sigma_x: np.ndarray     # (n,) float: σx in pixels (Gaussian families; else NaN)
    sigma_y: np.ndarray     # (n,) float: σy in pixels (= σx for the *_iso kinds)
    theta: np.ndarray       # (n,) float: rotation in radians (0 for the *_iso kinds)
    beta: np.ndarray        # (n,) float: shape β of the generalized and plateau kinds
    cutoff: np.ndarray      # (n,) float: ωc in radians of a sinc kernel

    def kernels(self, device: torch.device | str | None = None,  # where to build them
               ) -> torch.Tensor:  # (n, pad_to, pad_to) float32, each sums to 1
        "The n kernels as one tensor."
        return make_kernels(self.kind, self.size, self.sigma_x, self.sigma_y, self.theta, self.beta, self.cutoff,
                            pad_to=int(self.pad_to[0]), device=device)


@dataclass(frozen=True)
class ResizeParams(ParamColumns):
    "The resize of each image within a stage."
    scale: np.ndarray       # (n,) float: size factor (1: keep the size)
    mode: np.ndarray        # (n,) str: 'area', 'bilinear' or 'bicubic'
    relative_to: np.ndarray # (n,) str: 'input' (scale the current image) or 'lq' (size = LQ size × scale)

    def out_size(self, i: int, hw: tuple[int, int], lq_hw: tuple[int, int]) -> tuple[int, int]:
        "Image i's (height, width) after the resize: floor(side · scale) of its input `hw`, or of the LQ size."
        base = hw if self.relative_to[i] == 'input' else lq_hw
        return int(base[0] * self.scale[i]), int(base[1] * self.scale[i])


@dataclass(frozen=True)
class NoiseParams(ParamColumns):
    "The noise of each image within a stage."
    kind: np.ndarray        # (n,) str: 'gaussian', 'poisson' or 'none'
    level: np.ndarray       # (n,) float: Gaussian σ in 1/255 units, or the Poisson noise multiplier
    gray: np.ndarray        # (n,) bool: one noise field for all three channels


@dataclass(frozen=True)
class StageParams(ParamColumns):
    "One order of degradation per image: blur → resize → noise → JPEG."
    blur: BlurParams
    resize: ResizeParams
    noise: NoiseParams
    jpeg_quality: np.ndarray  # (n,) float: JPEG quality, NaN for no JPEG


@dataclass(frozen=True)
class FinalParams(ParamColumns):
    "The last step to the LQ size per image: [resize → sinc → JPEG] or [JPEG → resize → sinc]."
    resize_first: np.ndarray  # (n,) bool: resize and sinc before the JPEG (else after it)
    mode: np.ndarray          # (n,) str: mode of the resize to the LQ size
    via_hq: np.ndarray        # (n,) bool: before it, resize to the HQ size and round to 8 bits (the 2023 pipeline)
    via_hq_mode: np.ndarray   # (n,) str: mode of that resize to the HQ size ('' when not via_hq)
    sinc_cutoff: np.ndarray   # (n,) float: ωc of the final sinc filter, NaN for none
    sinc_size: np.ndarray     # (n,) int: its odd support (1 for none)
    jpeg_quality: np.ndarray  # (n,) float: JPEG quality, NaN for no JPEG


# %% [markdown]
# Two blur kernels written by hand: indexing selects images, `record` gives one image's plain values, `kernels`
# builds them.

# %%
#| exec_doc
blur = BlurParams(kind=np.array(['iso', 'sinc']), size=np.array([7, 13]), pad_to=np.array([21, 21]),
                  sigma_x=np.array([1.5, np.nan]), sigma_y=np.array([1.5, np.nan]), theta=np.array([0.0, np.nan]),
                  beta=np.array([np.nan, np.nan]), cutoff=np.array([np.nan, 1.2]))
print(len(blur), blur[1].kind, blur.kernels().shape)
print(blur.record(1))

# %%
show_doc(ParamColumns.record)

# %%
show_doc(BlurParams.kernels)

# %%
show_doc(ResizeParams.out_size)

# %%
#| hide
test_eq(len(blur), 2); test_eq(len(blur[1]), 1); test_eq(blur[1].record(0), blur.record(1))
test_eq(blur.record(1), {'kind': 'sinc', 'size': 13, 'pad_to': 21, 'sigma_x': None, 'sigma_y': None, 'theta': None,
                         'beta': None, 'cutoff': 1.2})
test_eq(blur.kernels().shape, (2, 21, 21))
test_eq(blur[np.array([False, True])].kernels(), blur.kernels()[1:])
resize = ResizeParams(scale=np.array([0.5, 1.0]), mode=np.array(['area', 'bicubic']), relative_to=np.array(['input', 'lq']))
test_eq([resize.out_size(i, (64, 48), (16, 12)) for i in range(2)], [(32, 24), (16, 12)])


# %% [markdown]
# `DegParams` is what `sample` returns and the backends take: the stages, the final step, the preset and the
# noise seeds of n images.

# %%
#| export
@dataclass(frozen=True)
class DegParams:
    "The sampled parameters of n degradations under one preset."
    cfg: DegradationConfig              # the preset they were drawn from (its codecs and scale apply them)
    stages: tuple[StageParams, ...]     # one per order of the preset
    final: FinalParams
    noise_seed: np.ndarray              # (n,) int64: seed of each image's noise realisations (CPU backend)

    def __len__(self) -> int: return len(self.noise_seed)

    def __getitem__(self, idx) -> DegParams:
        "The parameters of some images: an int gives length 1, a slice, index array or bool mask the selected ones."
        if isinstance(idx, (int, np.integer)): idx = [int(idx)]
        return DegParams(self.cfg, tuple(s[idx] for s in self.stages), self.final[idx], self.noise_seed[idx])

    def records(self) -> list[dict]:
        "One plain, JSON-ready dict per image, keyed as the dataclasses' fields."
        return [{'preset': self.cfg.name, 'noise_seed': int(self.noise_seed[i]),
                 'stages': [s.record(i) for s in self.stages], 'final': self.final.record(i)} for i in range(len(self))]

    def caption(self, i: int = 0) -> str:
        "A short human-readable summary of image i's degradation (for contact sheets)."
        parts = []
        for s in self.stages:
            blur, resize, noise = s.blur, s.resize, s.noise
            if blur.kind[i] == 'sinc': parts.append(f"sinc{blur.size[i]} ωc={blur.cutoff[i]:.2f}")
            elif blur.kind[i] != 'none': parts.append(f"{blur.kind[i]}{blur.size[i]} σ={blur.sigma_x[i]:.1f}")
            if resize.scale[i] != 1: parts.append(f"{resize.mode[i]}×{resize.scale[i]:.2f}")
            if noise.kind[i] != 'none':
                parts.append(('gray ' if noise.gray[i] else '') +
                             (f'σ={noise.level[i]:.0f}' if noise.kind[i] == 'gaussian' else f'poisson {noise.level[i]:.2f}'))
            if not np.isnan(s.jpeg_quality[i]): parts.append(f"q{s.jpeg_quality[i]:.0f}")
        final = self.final
        if final.via_hq[i]: parts.append(f"{final.via_hq_mode[i]} to HQ, area to LQ")
        if not np.isnan(final.jpeg_quality[i]): parts.append(f"final q{final.jpeg_quality[i]:.0f}")
        if not np.isnan(final.sinc_cutoff[i]): parts.append(f"sinc ωc={final.sinc_cutoff[i]:.2f}")
        return ', '.join(parts)


# %%
show_doc(DegParams.records)

# %%
show_doc(DegParams.caption)


# %% [markdown]
# ## Sampling
#
# `sample(cfg, rng, n)` draws every random choice of `n` degradations at once from one `numpy.random.Generator`
# and returns their `DegParams`. Nothing random happens after this point: `degrade_image` and `degrade_batch`
# are deterministic given the params (noise realisations come from the per-image `noise_seed`, or from the torch
# generator the batch backend is given).
#
# `group` makes consecutive images share their resize draws (scale, mode and the final order). The batched
# torch path needs equal sizes to batch, and sharing within small groups keeps the marginal distribution of
# every image exactly as specified while the batch still mixes many degradations (Real-ESRGAN shares them across
# the whole batch and re-mixes through a 180-sample pool instead).
#
# The order of the draws is part of the contract: a training run resumed from a checkpoint replays the same
# batches only if `sample` asks its generator for the same numbers in the same order, so a change here must
# leave every call below as it is.

# %%
#| export
def _uniform(rng, lo_hi, n): return rng.uniform(lo_hi[0], lo_hi[1], n) if lo_hi[1] > lo_hi[0] else np.full(n, float(lo_hi[0]))


def _shared(rng, draw, n, group):
    "Draw ceil(n/group) values with `draw(rng, m)` and repeat each `group` times (group sharing)."
    m = -(-n // group)
    return np.repeat(draw(rng, m), group)[:n]


def _sample_blur(bc: BlurConfig | None, rng, n) -> BlurParams:
    if bc is None: bc = BlurConfig(prob=0.0)
    on = rng.random(n) < bc.prob
    size = rng.choice(np.asarray(bc.sizes), n)
    sinc = rng.random(n) < bc.sinc_prob
    kind = np.asarray(bc.kinds)[rng.choice(len(bc.kinds), n, p=np.asarray(bc.kind_probs) / np.sum(bc.kind_probs))]
    sx, sy, th = _uniform(rng, bc.sigma, n), _uniform(rng, bc.sigma, n), _uniform(rng, bc.rotation, n)
    low = rng.random(n) < 0.5
    bg = np.where(low, _uniform(rng, (bc.beta_generalized[0], 1), n), _uniform(rng, (1, bc.beta_generalized[1]), n))
    bp = np.where(low, _uniform(rng, (bc.beta_plateau[0], 1), n), _uniform(rng, (1, bc.beta_plateau[1]), n))
    wc = np.where(size < bc.sinc_small_below, _uniform(rng, bc.sinc_cutoff_small, n), _uniform(rng, bc.sinc_cutoff_large, n))
    kind = np.where(sinc, 'sinc', kind)
    kind = np.where(on, kind, 'none').astype('<U20')
    iso = np.isin(kind, ('iso', 'generalized_iso', 'plateau_iso'))
    gauss = np.isin(kind, MIXED_KINDS)
    nan = np.full(n, np.nan)
    return BlurParams(kind=kind, size=np.where(on, size, 1).astype(np.int64), pad_to=np.full(n, bc.pad_to),
                      sigma_x=np.where(gauss, sx, nan), sigma_y=np.where(gauss & ~iso, sy, np.where(gauss, sx, nan)),
                      theta=np.where(gauss & ~iso, th, np.where(gauss, 0.0, nan)),
                      beta=np.where(np.char.startswith(kind, 'generalized'), bg, np.where(np.char.startswith(kind, 'plateau'), bp, nan)),
                      cutoff=np.where(kind == 'sinc', wc, nan))


def _sample_resize(rc: ResizeConfig | None, rng, n, group) -> ResizeParams:
    if rc is None: return ResizeParams(np.ones(n), np.full(n, 'bilinear', '<U8'), np.full(n, 'input', '<U5'))
    def scale(r, m):
        up_down_keep = r.choice(3, m, p=np.asarray(rc.probs) / np.sum(rc.probs))
        if rc.scale_dist == 'inverse':   # uniform in the divisor 1/scale
            up = 1 / _uniform(r, (1 / rc.up[1], 1 / rc.up[0]), m); down = 1 / _uniform(r, (1 / rc.down[1], 1 / rc.down[0]), m)
        else:
            up, down = _uniform(r, rc.up, m), _uniform(r, rc.down, m)
        return np.where(up_down_keep == 0, up, np.where(up_down_keep == 1, down, 1.0))
    s = _shared(rng, scale, n, group)
    mode = _shared(rng, lambda r, m: np.asarray(rc.modes)[r.choice(len(rc.modes), m)], n, group)
    return ResizeParams(scale=s, mode=mode.astype('<U8'), relative_to=np.full(n, rc.relative_to, '<U5'))


def _sample_noise(nc: NoiseConfig | None, rng, n) -> NoiseParams:
    if nc is None: return NoiseParams(np.full(n, 'none', '<U8'), np.zeros(n), np.zeros(n, bool))
    gauss = rng.random(n) < nc.gaussian_prob
    level = np.where(gauss, _uniform(rng, nc.sigma, n), _uniform(rng, nc.poisson_scale, n))
    gray = rng.random(n) < nc.gray_prob
    return NoiseParams(kind=np.where(gauss, 'gaussian', 'poisson').astype('<U8'), level=level, gray=gray)


def _sample_final(fc: FinalConfig, rng, n, group) -> FinalParams:
    resize_first = _shared(rng, lambda r, m: r.random(m) < fc.resize_first_prob, n, group)
    mode = _shared(rng, lambda r, m: np.asarray(fc.modes)[r.choice(len(fc.modes), m)], n, group).astype('<U8')
    hq_mode = _shared(rng, lambda r, m: np.asarray(fc.modes)[r.choice(len(fc.modes), m)], n, group).astype('<U8')
    sinc = rng.random(n) < fc.sinc_prob
    cutoff, size = _uniform(rng, fc.sinc_cutoff, n), rng.choice(np.asarray(fc.sinc_sizes), n)
    jpeg = _uniform(rng, fc.jpeg, n) if fc.jpeg else np.full(n, np.nan)
    via_hq = np.full(n, fc.via_hq)
    return FinalParams(resize_first=resize_first, mode=np.where(via_hq, 'area', mode).astype('<U8'), via_hq=via_hq,
                       via_hq_mode=np.where(via_hq, hq_mode, '').astype('<U8'),
                       sinc_cutoff=np.where(sinc, cutoff, np.nan), sinc_size=np.where(sinc, size, 1).astype(np.int64),
                       jpeg_quality=jpeg)


def sample(cfg: DegradationConfig | str,  # a preset or its name
           rng: np.random.Generator,  # the only source of randomness
           n: int = 1,  # number of images
           group: int = 1,  # consecutive images sharing resize draws (1: every image its own)
          ) -> DegParams:
    "Draw the parameters of `n` degradations."
    cfg = get_preset(cfg)
    stages = []
    for stage in cfg.stages:
        blur = _sample_blur(stage.blur, rng, n)
        resize = _sample_resize(stage.resize, rng, n, group)
        noise = _sample_noise(stage.noise, rng, n)
        jpeg = _uniform(rng, stage.jpeg, n) if stage.jpeg else np.full(n, np.nan)
        stages.append(StageParams(blur, resize, noise, jpeg))
    final = _sample_final(cfg.final, rng, n, group)
    noise_seed = rng.integers(0, 2 ** 63 - 1, n, dtype=np.int64)
    return DegParams(cfg, tuple(stages), final, noise_seed)


# %% [markdown]
# One image's draw, as a record (what `blindsr_degrade` writes to `degradation.json`) and as a caption:

# %%
#| exec_doc
p = sample('ai6126_2024', np.random.default_rng(0), 8, group=4)
print(p.caption(0))
print(json.dumps(p.records()[0], indent=1))

# %% [markdown]
# Indexing takes images like an array indexes rows; the same generator state gives the same draws; the records are
# plain JSON.

# %%
#| hide
test_eq(len(p), 8); test_eq(len(p[3]), 1); test_eq(len(p[2:6]), 4); test_eq(len(p[np.array([0, 7])]), 2)
test_eq(p[3].stages[1].noise.level, p.stages[1].noise.level[3:4])
test_eq(p[np.arange(8) % 2 == 0].final.jpeg_quality, p.final.jpeg_quality[::2])
test_eq(p.stages[0].resize.scale[:4], np.repeat(p.stages[0].resize.scale[0], 4))    # shared within a group
test_eq(json.loads(json.dumps(p.records())), p.records())                              # plain values
test_eq(p.records()[5], p[5].records()[0])
q = sample('ai6126_2024', np.random.default_rng(0), 8, group=4)
test_eq(p.records(), q.records())                                                      # same seed, same draws
test_eq(set(p.records()[0]['stages'][0]), {'blur', 'resize', 'noise', 'jpeg_quality'})
test_eq(p.records()[0]['final']['via_hq_mode'], None)
v = sample('ai6126_2023', np.random.default_rng(0), 4).final
test_eq((v.via_hq.all(), set(v.mode), set(v.via_hq_mode) <= set(MODES)), (True, {'area'}, True))


# %% [markdown]
# The draws themselves are pinned: these numbers are what `sample` gave before its parameters were typed, and a
# training run resumed from an old checkpoint replays its batches only while they stay the same.

# %%
#| hide
def fingerprint(d):
    "Sums of every drawn column (NaN as 0), stage by stage, then the final step's."
    out = []
    for s in d.stages:
        b = s.blur
        out += [np.nansum(c) for c in (b.size, b.sigma_x, b.sigma_y, b.theta, b.beta, b.cutoff, s.resize.scale, s.noise.level, s.jpeg_quality)]
        out += [s.noise.gray.sum()]
    f = d.final
    out += [f.resize_first.sum(), np.nansum(f.sinc_cutoff), f.sinc_size.sum(), np.nansum(f.jpeg_quality)]
    return [round(float(x), 6) for x in out]

d = sample('ai6126_2024', np.random.default_rng(123), 6, group=3)
test_eq(fingerprint(d), [96.0, 6.566994, 10.520972, 4.595202, 1.748351, 0.0, 1.940861, 49.398325, 437.851546, 2,
                         88.0, 4.999458, 5.038436, -2.271608, 0.0, 0.0, 5.833257, 39.229378, 0.0, 3, 3, 9.315716, 34, 518.029929])
test_eq(d.noise_seed[[0, -1]].tolist(), [978578905178146807, 2575009810824532732])
test_eq([list(s.noise.kind) for s in d.stages], [['gaussian'] * 3 + ['poisson'] * 2 + ['gaussian'], ['gaussian'] * 6])
test_eq(list(d.final.mode), ['bicubic'] * 3 + ['bilinear'] * 3)
d = sample('ai6126_2023', np.random.default_rng(123), 6, group=3)
test_eq(fingerprint(d), [246.0, 14.617264, 17.535383, 4.600202, 0.0, 0.0, 4.183192, 103.939551, 436.920321, 0, 6, 0.0, 6, 0.0])
test_eq(d.noise_seed[[0, -1]].tolist(), [2509169969079965893, 2014552602887855234])
test_eq(list(d.final.via_hq_mode), ['bicubic'] * 3 + ['area'] * 3)

# %% [markdown]
# Over many draws the sampled values follow the handout's numbers: kernel families with the right frequencies,
# resize up/down/keep 20/70/10 in the first order and 30/40/30 in the second, Gaussian vs Poisson 50/50, gray 40 %.

# %%
#| hide
big = sample('ai6126_2024', np.random.default_rng(1), 200_000)
s0, s1 = big.stages
freq = lambda a, v: float(np.mean(a == v))
test_close(freq(s0.blur.kind, 'sinc'), 0.1, eps=0.005)
test_close(freq(s0.blur.kind, 'iso'), 0.9 * 0.45, eps=0.005)
test_close(freq(s1.blur.kind, 'none'), 0.2, eps=0.005)
test_close(float(np.mean(s0.resize.scale > 1)), 0.2, eps=0.005)
test_close(float(np.mean(s0.resize.scale < 1)), 0.7, eps=0.005)
test_close(float(np.mean(s1.resize.scale == 1)), 0.3, eps=0.005)
test_close(freq(s0.noise.kind, 'gaussian'), 0.5, eps=0.005)
test_close(float(np.mean(s1.noise.gray)), 0.4, eps=0.005)
test_close(float(np.mean(big.final.resize_first)), 0.5, eps=0.005)
test_close(float(np.mean(~np.isnan(big.final.sinc_cutoff))), 0.8, eps=0.005)
assert np.nanmin(s0.blur.sigma_x) >= 0.2 and np.nanmax(s1.blur.sigma_x) <= 1.5
assert 50 <= s0.jpeg_quality.min() and s0.jpeg_quality.max() <= 95 and np.isnan(s1.jpeg_quality).all()
sinc0 = s0.blur.kind == 'sinc'
small = s0.blur.size[sinc0] < 13
wcs = s0.blur.cutoff[sinc0]
assert wcs[small].min() >= PI / 3 and wcs[~small].min() < PI / 3


# %% [markdown]
# ## Operations, numpy/OpenCV
#
# The CPU backend works on one `(H, W, 3)` float32 image. OpenCV's `filter2D` with `BORDER_REFLECT_101` is the
# same correlation with the same border as torch's `F.pad(mode='reflect')` + `conv2d` that BasicSR uses; resizing
# follows the preset's codec; noise is drawn from a numpy generator seeded by the image's seed.

# %%
#| export
def blur_np(img: np.ndarray,  # (H, W, 3) float32 in [0, 1]
            kernel: np.ndarray,  # (k, k) float32, k odd
           ) -> np.ndarray:  # (H, W, 3) float32, reflect-101 border
    "Correlate with `kernel` (the symmetric kernels here make this a convolution)."
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


_CV2_MODES = {'area': cv2.INTER_AREA, 'bilinear': cv2.INTER_LINEAR, 'bicubic': cv2.INTER_CUBIC, 'nearest': cv2.INTER_NEAREST}


def resize_np(img: np.ndarray,  # (H, W, 3) float32
              size: tuple[int, int],  # (height, width) of the output
              mode: str,  # 'area', 'bilinear' or 'bicubic'
              codec: str = 'opencv',  # 'opencv': cv2.resize; 'torch': F.interpolate on the CPU (Real-ESRGAN semantics)
              scale_factor: float | None = None,  # torch codec: the scale factor used for coordinates, as F.interpolate(scale_factor=)
             ) -> np.ndarray:  # (height, width, 3) float32
    "Resize one image with OpenCV or torch semantics (no antialiasing in either, as the references)."
    if tuple(size) == img.shape[:2] and (scale_factor in (None, 1.0)): return img
    if codec == 'opencv': return cv2.resize(img, (size[1], size[0]), interpolation=_CV2_MODES[mode])
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
    return resize_pt(x, size, mode, scale_factor)[0].permute(1, 2, 0).numpy()


def gaussian_noise_np(shape: tuple,  # (H, W, 3)
                      sigma: float,  # in 1/255 units
                      gray: bool,  # one field for all channels
                      rng: np.random.Generator,
                     ) -> np.ndarray:  # (H, W, 3) float32 noise
    "Gaussian noise of σ/255, colour or gray."
    n = rng.standard_normal(shape[:2] + ((1,) if gray else (3,)), dtype=np.float32)
    return np.broadcast_to(n, shape) * np.float32(sigma / 255.0)


_GRAY = np.array([0.2989, 0.587, 0.114], np.float32)   # torchvision's rgb_to_grayscale weights, as BasicSR's pt noise


def poisson_noise_np(img: np.ndarray,  # (H, W, 3) float32 in [0, 1]
                     scale: float,  # noise multiplier
                     gray: bool,  # noise from the gray image, same on all channels
                     rng: np.random.Generator,
                    ) -> np.ndarray:  # (H, W, 3) float32 noise
    """Shot noise as BasicSR's `generate_poisson_noise_pt`: the image rounded to 8-bit levels, photon counts
    `vals = 2^ceil(log2(#distinct levels))`, noise = Poisson(img·vals)/vals − img, times `scale`."""
    base = img @ _GRAY if gray else img
    base = np.clip(np.round(base * 255.0), 0, 255) / 255.0
    vals = 2.0 ** np.ceil(np.log2(len(np.unique(base))))
    noise = (rng.poisson(base * vals) / vals - base).astype(np.float32)
    return np.broadcast_to(noise[..., None], img.shape) * np.float32(scale) if gray else noise * np.float32(scale)


def jpeg_opencv(img: np.ndarray,  # (H, W, 3) float32 in [0, 1], RGB
                quality: float,  # JPEG quality; truncated to an integer as OpenCV takes it
               ) -> np.ndarray:  # (H, W, 3) float32 in [0, 1]
    "libjpeg through OpenCV (4:2:0, standard tables), RGB handled as RGB."
    u8 = np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)[..., ::-1]
    ok, buf = cv2.imencode('.jpg', u8, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok: raise RuntimeError(f'OpenCV failed to encode a JPEG at quality {quality}')
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0


def quantize(x):
    "Round to 8-bit levels and clamp: clamp(round(255 x), 0, 255) / 255 (numpy or torch)."
    if isinstance(x, torch.Tensor): return torch.clamp(torch.round(x * 255.0), 0, 255) / 255.0
    return (np.clip(np.round(x * 255.0), 0, 255) / 255.0).astype(np.float32)


# %% [markdown]
# ## Operations, torch
#
# The batched twins. Blur runs through the FFT: with reflect padding of `k//2`, the circular convolution of the
# padded image equals the linear one on the valid region, and a 21×21 kernel on a 512² face costs a few FFTs
# instead of 441 multiply-adds per pixel. JPEG is written out below.

# %%
#| export
def _fft_size(n: int) -> int:
    "The smallest 5-smooth number (only factors 2, 3, 5) >= n: fast FFT sizes, and few distinct plans to cache."
    m = n
    while True:
        k = m
        for f in (2, 3, 5):
            while k % f == 0: k //= f
        if k == 1: return m
        m += 1


def blur_pt(x: torch.Tensor,  # (B, C, H, W) float
            kernels: torch.Tensor,  # (B, k, k) float, k odd; one kernel per image
           ) -> torch.Tensor:  # (B, C, H, W), reflect border, correlation as F.conv2d
    """Per-image blur of a batch: FFT correlation of the reflect-padded images. Zero-padding the padded image up to
    an FFT-friendly size keeps the valid region exact (the kernel never wraps into it)."""
    B, C, H, W = x.shape
    k = kernels.shape[-1]; p = k // 2
    if p >= min(H, W): raise ValueError(f'a {k}x{k} kernel needs images larger than {p} pixels, got {H}x{W}')
    xp = F.pad(x.float(), (p, p, p, p), mode='reflect')
    Hf, Wf = _fft_size(H + 2 * p), _fft_size(W + 2 * p)
    # correlation with k == convolution with k flipped; place the flipped kernel's centre at (0, 0)
    kf = torch.zeros(B, Hf, Wf, dtype=torch.float32, device=x.device)
    kf[:, :k, :k] = kernels.float().flip(-1, -2)
    kf = torch.roll(kf, shifts=(-p, -p), dims=(-2, -1))
    out = torch.fft.irfft2(torch.fft.rfft2(xp, s=(Hf, Wf)) * torch.fft.rfft2(kf)[:, None], s=(Hf, Wf))
    return out[..., p:p + H, p:p + W].to(x.dtype)


def resize_pt(x: torch.Tensor,  # (B, C, H, W) float
              size: tuple[int, int],  # (height, width) of the output
              mode: str,  # 'area', 'bilinear', 'bicubic' (or 'nearest')
              scale_factor: float | None = None,  # if given, F.interpolate(scale_factor=) semantics (Real-ESRGAN's first resize)
             ) -> torch.Tensor:  # (B, C, height, width)
    "F.interpolate as Real-ESRGAN calls it (align_corners=False, no antialiasing)."
    if scale_factor is not None and scale_factor != 1.0:
        out = F.interpolate(x, scale_factor=scale_factor, mode=mode)
        if tuple(out.shape[-2:]) != tuple(size): raise ValueError(f'scale {scale_factor} gives {tuple(out.shape[-2:])}, expected {size}')
        return out
    if tuple(size) == tuple(x.shape[-2:]): return x
    return F.interpolate(x, size=tuple(size), mode=mode)


def gaussian_noise_pt(x: torch.Tensor,  # (B, 3, H, W) float; only its shape/device are used
                      sigma: torch.Tensor,  # (B,) σ in 1/255 units
                      gray: torch.Tensor,  # (B,) bool: one field for all channels
                      generator: torch.Generator | None = None,
                     ) -> torch.Tensor:  # (B, 3, H, W) noise
    "Gaussian noise per image; gray images reuse channel 0's field on all channels (same distribution)."
    n = torch.randn(x.shape, generator=generator, device=x.device, dtype=torch.float32)
    n = torch.where(gray.view(-1, 1, 1, 1), n[:, :1].expand_as(n), n)
    return n * (sigma.float().view(-1, 1, 1, 1) / 255.0)


def _level_count(levels: torch.Tensor) -> torch.Tensor:
    "(B, ...) integer levels 0..255 -> (B,) number of distinct levels per image, without a host sync."
    B = levels.shape[0]
    seen = torch.zeros(B, 256, device=levels.device, dtype=torch.float32)
    seen.scatter_(1, levels.reshape(B, -1), 1.0)
    return seen.sum(1)


def poisson_noise_pt(x: torch.Tensor,  # (B, 3, H, W) float in [0, 1]
                     scale: torch.Tensor,  # (B,) noise multiplier
                     gray: torch.Tensor,  # (B,) bool
                     generator: torch.Generator | None = None,
                    ) -> torch.Tensor:  # (B, 3, H, W) noise
    "Shot noise per image, as BasicSR's generate_poisson_noise_pt (distinct-level count without host syncs)."
    w = _const('gray', x.device, lambda: torch.tensor(_GRAY.tolist()).view(1, 3, 1, 1))
    base = torch.where(gray.view(-1, 1, 1, 1), (x * w).sum(1, keepdim=True).expand_as(x), x)
    levels = torch.clamp(torch.round(base * 255.0), 0, 255)
    base = levels / 255.0
    cnt = torch.where(gray, _level_count(levels[:, :1].long()), _level_count(levels.long()))
    vals = torch.exp2(torch.ceil(torch.log2(cnt))).view(-1, 1, 1, 1)
    noisy = torch.poisson(base * vals, generator=generator) / vals
    noise = noisy - base
    noise = torch.where(gray.view(-1, 1, 1, 1), noise[:, :1].expand_as(noise), noise)
    return noise * scale.float().view(-1, 1, 1, 1)


# %% [markdown]
# ### JPEG in torch (the DiffJPEG mathematics)
#
# The organisers' 2024 LQ went through BasicSR's `DiffJPEG(differentiable=False)`, which is not libjpeg:
# RGB → YCbCr (JFIF matrix) on the float image ×255 without rounding to integers, 4:2:0 chroma by 2×2 averaging,
# zero padding to a multiple of 16 at the bottom/right, 8×8 DCT, division by the standard tables ×
# `factor(q)` (`(200 − 2q)/100` for q ≥ 50, `50/q` below; neither rounded nor clamped as libjpeg would, and q
# need not be an integer), rounding half to even, and the inverse with nearest-neighbour chroma upsampling and a
# clamp to [0, 255]. The tables are used transposed (vertical frequency along the table's columns), which is how
# DiffJPEG lays them out; we do the same because the organisers' LQ have that property.

# %%
#| export
_STD_LUMA = [[16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
             [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
             [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]]
_STD_CHROMA = [[17, 18, 24, 47, 99, 99, 99, 99], [18, 21, 26, 66, 99, 99, 99, 99], [24, 26, 56, 99, 99, 99, 99, 99],
               [47, 66, 99, 99, 99, 99, 99, 99]] + [[99] * 8] * 4


def jpeg_factor(quality: torch.Tensor) -> torch.Tensor:
    "Quality (any float in (0, 100]) -> table multiplier, the libjpeg formula without integer rounding."
    q = quality.float()   # float32, as DiffJPEG computes it on its quality tensor
    return torch.where(q < 50, 5000.0 / q / 100.0, (200.0 - q * 2) / 100.0)


def _dct_matrix(device) -> torch.Tensor:
    "C[u, x] = a(u)/2 cos((2x+1)uπ/16), a(0) = 1/√2: the JPEG 8-point DCT-II as a matrix (C X Cᵀ)."
    u = torch.arange(8, dtype=torch.float64).view(8, 1); x = torch.arange(8, dtype=torch.float64).view(1, 8)
    c = torch.cos((2 * x + 1) * u * math.pi / 16) / 2
    c[0] /= math.sqrt(2)
    return c.float().to(device)


def _code_blocks(ch: torch.Tensor, table: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """ch (B, H, W) level-shifted plane, H and W multiples of 8; table (B, 8, 8); K = kron(C, C), the 2-D DCT of a
    flattened 8x8 block as one 64x64 matrix (one GEMM for all blocks) -> decoded plane (B, H, W)."""
    B, H, W = ch.shape
    blk = ch.view(B, H // 8, 8, W // 8, 8).permute(0, 1, 3, 2, 4).reshape(B, -1, 64)   # (B, blocks, 64)
    t = table.reshape(B, 1, 64)
    coef = torch.round((blk @ K.T) / t) * t
    blk = coef @ K
    return blk.view(B, H // 8, W // 8, 8, 8).permute(0, 1, 3, 2, 4).reshape(B, H, W)


def jpeg_pt(x: torch.Tensor,  # (B, 3, H, W) float RGB in [0, 1] (clamp first, as the reference does)
            quality: torch.Tensor,  # (B,) JPEG quality per image, float
           ) -> torch.Tensor:  # (B, 3, H, W) float in [0, 1], not rounded to 8 bits
    "JPEG compression and decompression of a batch with per-image quality (DiffJPEG mathematics)."
    B, _, H, W = x.shape
    ph, pw = (-H) % 16, (-W) % 16
    img = F.pad(x.float(), (0, pw, 0, ph), mode='constant', value=0.0) * 255.0
    r, g, b = img.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128.0
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128.0
    cbcr = F.avg_pool2d(torch.stack([cb, cr], 1), 2)
    factor = jpeg_factor(quality.to(x.device)).float().view(B, 1, 1)
    ly = _const('luma', x.device, lambda: torch.tensor(_STD_LUMA, dtype=torch.float32).T.contiguous())
    lc = _const('chroma', x.device, lambda: torch.tensor(_STD_CHROMA, dtype=torch.float32).T.contiguous())
    K = _const('dct', x.device, lambda: torch.kron(_dct_matrix('cpu'), _dct_matrix('cpu')))
    y = _code_blocks(y - 128.0, ly * factor, K) + 128.0
    Hc, Wc = cbcr.shape[-2:]
    c2 = _code_blocks(cbcr.reshape(B * 2, Hc, Wc) - 128.0, (lc * factor).repeat_interleave(2, 0), K) + 128.0
    c2 = c2.view(B, 2, Hc, Wc).repeat_interleave(2, -2).repeat_interleave(2, -1)
    cb, cr = c2[:, 0] - 128.0, c2[:, 1] - 128.0
    rgb = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1)
    return (rgb.clamp(0, 255) / 255.0)[..., :H, :W].to(x.dtype)


# %% [markdown]
# The JPEG checked against a direct computation: per 8×8 block, the 2-D DCT written as the double sum of the
# JPEG standard in float64, quantised with the transposed tables, inverted the same way. Agreement is to float32
# rounding (≤ 2e-4 of a level), except where a coefficient sits on a rounding boundary.

# %%
#| hide
def ref_jpeg(img, q):
    "img (3, H, W) float64 in [0,1], H, W multiples of 16."
    img = img * 255
    r, g, b = img
    Y = 0.299 * r + 0.587 * g + 0.114 * b
    Cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    Cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    sub = lambda c: c.reshape(c.shape[0] // 2, 2, c.shape[1] // 2, 2).mean((1, 3))
    f = (200 - 2 * q) / 100 if q >= 50 else 50 / q
    a = np.array([1 / np.sqrt(2)] + [1] * 7)
    xs = np.arange(8)
    cos = np.cos((2 * xs[:, None] + 1) * xs[None, :] * np.pi / 16)   # cos[x, u]
    def code(c, table):
        out = np.empty_like(c)
        for i in range(0, c.shape[0], 8):
            for j in range(0, c.shape[1], 8):
                blk = c[i:i + 8, j:j + 8] - 128
                D = 0.25 * np.outer(a, a) * np.einsum('xy,xu,yv->uv', blk, cos, cos)
                D = np.round(D / (table * f)) * table * f
                out[i:i + 8, j:j + 8] = 0.25 * np.einsum('uv,xu,yv->xy', np.outer(a, a) * D, cos, cos) + 128
        return out
    Y = code(Y, np.array(_STD_LUMA, float).T)
    up = lambda c: np.repeat(np.repeat(c, 2, 0), 2, 1)
    Cb = up(code(sub(Cb), np.array(_STD_CHROMA, float).T)) - 128
    Cr = up(code(sub(Cr), np.array(_STD_CHROMA, float).T)) - 128
    rgb = np.stack([Y + 1.402 * Cr, Y - 0.344136 * Cb - 0.714136 * Cr, Y + 1.772 * Cb])
    return np.clip(rgb, 0, 255) / 255

rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:32, 0:48] / 32.0
smooth = np.stack([0.5 + 0.4 * np.sin(3 * xx + yy), 0.5 + 0.3 * np.cos(2 * yy), 0.4 + 0.3 * xx * yy])
smooth = np.clip(smooth + 0.02 * rng.standard_normal(smooth.shape), 0, 1)
for q in [95.0, 71.3, 50.0, 30.0]:
    got = jpeg_pt(torch.tensor(smooth[None], dtype=torch.float32), torch.tensor([q]))[0].double().numpy()
    want = ref_jpeg(smooth, q)
    err = np.abs(got - want) * 255
    assert np.mean(err < 2e-3) > 0.99 and np.median(err) < 1e-3, (q, np.mean(err < 2e-3))
# per-image quality inside one batch, and sizes that need padding to 16
two = torch.tensor(np.stack([smooth, smooth[:, ::-1]]).copy(), dtype=torch.float32)
out = jpeg_pt(two, torch.tensor([90.0, 40.0]))
test_close(out[0], jpeg_pt(two[:1], torch.tensor([90.0]))[0], eps=1e-5)
test_close(out[1], jpeg_pt(two[1:], torch.tensor([40.0]))[0], eps=1e-5)
test_eq(jpeg_pt(two[..., :30, :45], torch.tensor([90.0, 40.0])).shape, (2, 3, 30, 45))
assert (out[0] - two[0]).abs().mean() < (out[1] - two[1]).abs().mean()     # lower quality, larger error

# %% [markdown]
# Each operation on its own, on a 128×128 crop of a face (noise and JPEG exaggerated so that they show):

# %%
#| exec_doc
#| echo: false
crop = torch.from_numpy(astronaut_face(128)).permute(2, 0, 1)[None].float() / 255       # (1, 3, 128, 128) in [0, 1]
ops = {'input': crop,
       'blur_pt (aniso, σ 3 and 1)': blur_pt(crop, make_kernels(['aniso'], [21], [3.0], [1.0], [0.6], [1], [0])),
       'resize_pt to 32², bicubic': resize_pt(crop, (32, 32), 'bicubic'),
       'gaussian_noise_pt σ=25': crop + gaussian_noise_pt(crop, torch.tensor([25.0]), torch.tensor([False]), torch.Generator().manual_seed(0)),
       'poisson_noise_pt ×3, gray': crop + poisson_noise_pt(crop, torch.tensor([3.0]), torch.tensor([True]), torch.Generator().manual_seed(0)),
       'jpeg_pt quality 15': jpeg_pt(crop, torch.tensor([15.0]))}
show_images([tensor_to_img(x.clamp(0, 1))[0] for x in ops.values()], list(ops), size=1.9, fontsize=7)

# %% [markdown]
# Checks of the other ops against direct references: FFT blur vs grouped `conv2d` with reflect padding (the
# BasicSR formulation) and vs OpenCV; the two noises' statistics; resize semantics; quantisation.

# %%
#| hide
img = torch.rand(2, 3, 40, 36, generator=torch.Generator().manual_seed(0))
ks = sample('ai6126_2024', np.random.default_rng(2), 2).stages[0].blur.kernels()
direct = F.conv2d(F.pad(img, (10,) * 4, mode='reflect').view(1, 6, 60, 56), ks.repeat_interleave(3, 0)[:, None], groups=6).view(2, 3, 40, 36)
test_close(blur_pt(img, ks), direct, eps=1e-5)
test_eq([_fft_size(n) for n in (530, 523, 64, 127)], [540, 540, 64, 128])
test_close(blur_np(img[1].permute(1, 2, 0).numpy(), ks[1].numpy()), direct[1].permute(1, 2, 0).numpy(), eps=1e-5)

flat = torch.full((4, 3, 64, 64), 0.5)
gn = gaussian_noise_pt(flat, torch.tensor([5.0, 20.0, 20.0, 1.0]), torch.tensor([False, False, True, True]), torch.Generator().manual_seed(0))
test_close((gn.std((1, 2, 3)) * 255).tolist(), [5.0, 20.0, 20.0, 1.0], eps=0.6)
test_eq((gn[2, 0] == gn[2, 1]).all().item(), True); test_eq((gn[1, 0] == gn[1, 1]).any().item(), False)
gnp = gaussian_noise_np((64, 64, 3), 20.0, True, np.random.default_rng(0))
test_close(gnp.std() * 255, 20.0, eps=0.6); test_eq((gnp[..., 0] == gnp[..., 2]).all(), True)
# Poisson: variance of the noise = scale² · mean / vals with vals = 2^ceil(log2(#levels))
ramp = torch.linspace(0.1, 0.9, 64).view(1, 1, 1, 64).expand(1, 3, 64, 64).contiguous()
pn = poisson_noise_pt(ramp.repeat(2, 1, 1, 1), torch.tensor([1.0, 2.0]), torch.tensor([False, True]), torch.Generator().manual_seed(0))
levels = len(torch.unique(torch.round(ramp * 255))); vals = 2 ** math.ceil(math.log2(levels))
test_close(pn[0].var().item(), ramp.mean().item() / vals, eps=0.1 * ramp.mean().item() / vals)
test_eq((pn[1, 0] == pn[1, 2]).all().item(), True)
pnp = poisson_noise_np(ramp[0].permute(1, 2, 0).numpy(), 1.0, False, np.random.default_rng(0))
test_close(pnp.var(), ramp.mean().item() / vals, eps=0.1 * ramp.mean().item() / vals)
# resize: torch codec is F.interpolate; the OpenCV codec agrees for bilinear/bicubic at the same size
im = np.random.default_rng(3).random((40, 40, 3)).astype(np.float32)
for mode in ['bilinear', 'bicubic']:
    a = resize_np(im, (20, 20), mode, 'opencv'); b = resize_np(im, (20, 20), mode, 'torch')
    test_close(a, b, eps=1e-4)
test_eq(resize_pt(img, (20, 18), 'area').shape, (2, 3, 20, 18))
test_fail(lambda: resize_pt(img, (10, 10), 'bilinear', scale_factor=0.3), contains='expected')
test_eq(quantize(np.array([0.5 / 255 - 1e-6, 1.2, -0.1])).tolist(), [0.0, 1.0, 0.0])
# the OpenCV JPEG is libjpeg: 8-bit output, and at one quality close to (not equal to) the DiffJPEG mathematics
for q in (95, 60):
    jo = jpeg_opencv(smooth.transpose(1, 2, 0).astype(np.float32), q)
    jt = jpeg_pt(torch.tensor(smooth[None], dtype=torch.float32), torch.tensor([float(q)]))[0].permute(1, 2, 0).numpy()
    assert np.allclose(jo * 255, np.round(jo * 255))
    assert 0 < np.abs(jo - jt).mean() < 0.01, np.abs(jo - jt).mean()


# %% [markdown]
# ## Applying parameters, one image (numpy/OpenCV)
#
# `degrade_once_np` is one order; the CPU backend calls it once per stage of the preset (twice for second
# order), then the final step. The HQ side must be divisible by the scale (4): the LQ is exactly a quarter.

# %%
#| export
def check_hq_size(h: int, w: int, scale: int = 4) -> tuple[int, int]:
    "The LQ size (h/scale, w/scale); an HQ size not divisible by `scale` is an error naming it."
    if h % scale or w % scale or h < 16 * scale or w < 16 * scale:
        raise ValueError(f'HQ images must be at least {16 * scale}x{16 * scale} with sides divisible by {scale} '
                         f'(LQ = HQ/{scale}); got {w}x{h} (width x height). Crop or resize the HQ first.')
    return h // scale, w // scale


# %%
#| hide
test_eq(check_hq_size(512, 512), (128, 128))
test_fail(lambda: check_hq_size(512, 510), contains='510x512')


# %%
#| export
def degrade_once_np(img: np.ndarray,  # (H, W, 3) float32 in [0, 1]
                    stage: StageParams,  # one image's parameters of this order (length 1)
                    lq_hw: tuple[int, int],  # final LQ (height, width)
                    cfg: DegradationConfig,  # for the codecs
                    rng: np.random.Generator,  # noise realisations
                   ) -> np.ndarray:  # (h, w, 3) float32 in [0, 1]
    "One order of degradation on one image: blur → resize → noise → JPEG."
    if stage.blur.kind[0] != 'none': img = blur_np(img, stage.blur.kernels()[0].numpy())
    resize = stage.resize
    scale = float(resize.scale[0])
    img = resize_np(img, resize.out_size(0, img.shape[:2], lq_hw), str(resize.mode[0]), cfg.resize_codec,
                    scale_factor=scale if resize.relative_to[0] == 'input' else None)
    kind, level, gray = str(stage.noise.kind[0]), float(stage.noise.level[0]), bool(stage.noise.gray[0])
    if kind == 'gaussian': img = np.clip(img + gaussian_noise_np(img.shape, level, gray, rng), 0, 1)
    elif kind == 'poisson': img = np.clip(img + poisson_noise_np(img, level, gray, rng), 0, 1)
    quality = float(stage.jpeg_quality[0])
    if not math.isnan(quality): img = _jpeg_np(np.clip(img, 0, 1), quality, cfg.jpeg_codec)
    return img.astype(np.float32)


def _jpeg_np(img, quality, codec):
    if codec == 'opencv': return jpeg_opencv(img, quality)
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None]
    return jpeg_pt(t, torch.tensor([quality]))[0].permute(1, 2, 0).numpy()


def _final_np(img, final: FinalParams, lq_hw, hq_hw, cfg):
    "The final step of one image: [resize → sinc → JPEG] or [JPEG → resize → sinc], after 2023's trip to the HQ size."
    if final.via_hq[0]: img = quantize(resize_np(img, hq_hw, str(final.via_hq_mode[0]), cfg.resize_codec))
    cutoff, quality = float(final.sinc_cutoff[0]), float(final.jpeg_quality[0])
    sinc = None if math.isnan(cutoff) else make_kernels(['sinc'], final.sinc_size, [0], [0], [0], [0], [cutoff])[0].numpy()
    def resize_sinc(x):
        x = resize_np(x, lq_hw, str(final.mode[0]), cfg.resize_codec)
        return x if sinc is None else blur_np(x, sinc)
    def jpeg(x): return x if math.isnan(quality) else _jpeg_np(np.clip(x, 0, 1), quality, cfg.jpeg_codec)
    return jpeg(resize_sinc(img)) if final.resize_first[0] else resize_sinc(jpeg(img))


def degrade_image(hq: np.ndarray,  # (H, W, 3) uint8, or float in [0, 1]; H, W divisible by 4
                  params: DegParams,  # one image's parameters (len 1)
                 ) -> np.ndarray:  # (H/4, W/4, 3) uint8 LQ
    "The CPU backend: degrade one image with sampled parameters (deterministic)."
    if len(params) != 1: raise ValueError(f'degrade_image takes the params of one image, got {len(params)}')
    if hq.ndim != 3 or hq.shape[2] != 3: raise ValueError(f'hq must be (H, W, 3) RGB, got {hq.shape}; read files with blindsr.core.read_image')
    img = hq.astype(np.float32) / 255.0 if hq.dtype == np.uint8 else hq.astype(np.float32)
    cfg = params.cfg
    lq_hw = check_hq_size(*img.shape[:2], cfg.scale)
    rng = np.random.default_rng(int(params.noise_seed[0]))
    for stage in params.stages: img = degrade_once_np(img, stage, lq_hw, cfg, rng)
    img = _final_np(img, params.final, lq_hw, hq.shape[:2], cfg)
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


# %% [markdown]
# One face through the 2024 preset: a 128×128 face becomes 32×32, and the same parameters give the same bytes.

# %%
#| exec_doc
face = test_face(128, 128, 0)
one = sample('ai6126_2024', np.random.default_rng(4))
lq = degrade_image(face, one)
print(one.caption(0), '->', lq.shape, lq.dtype)

# %% [markdown]
# Six draws of the 2024 preset on one face: how far apart two LQ of the same preset can be.

# %%
#| exec_doc
#| echo: false
hq = astronaut_face(256)
six = sample('ai6126_2024', np.random.default_rng(1), 6)
show_images([degrade_image(hq, six[i]) for i in range(6)], [wrap(six.caption(i)) for i in range(6)], size=2.2, fontsize=6)

# %%
#| hide
test_eq(lq.shape, (32, 32, 3)); test_eq(lq.tobytes(), degrade_image(face, one).tobytes())
test_fail(lambda: degrade_image(face, sample('ai6126_2024', np.random.default_rng(4), 2)), contains='one image')
test_fail(lambda: degrade_image(face[..., 0], one), contains='read_image')


# %% [markdown]
# ## Applying parameters, a batch (torch, any device)
#
# The same steps on a `(B, 3, H, W)` batch: kernels, noise levels, gray flags and JPEG qualities per image;
# images that share their resize draws are processed together (one group per distinct resize), everything
# else is batched. All branching is decided by the host-side parameters, so there is no host/device sync.

# %%
#| export
def _subset(x, mask, fn):
    "Apply fn to the images where mask (host bool array) is True; the others pass through."
    if mask.all(): return fn(x, slice(None))
    if not mask.any(): return x
    idx = np.nonzero(mask)[0]
    it = to_device(idx, x.device)
    out = x.clone()
    out[it] = fn(x[it], idx)
    return out


def _blur_where(x, mask, make_kernels_fn):
    """Blur the images where `mask` (host bool array) is True with the (B, k, k) kernels `make_kernels_fn()` builds on
    the host for the whole batch (identity where mask is False), called only if some image is blurred. The whole
    batch goes through one FFT, so cuFFT plans depend on the image size only, not on how many images a draw left
    unblurred; the unblurred images are kept exactly."""
    if not mask.any(): return x
    y = blur_pt(x, to_device(make_kernels_fn(), x.device))
    return y if mask.all() else torch.where(to_device(mask, x.device).view(-1, 1, 1, 1), y, x)


def _resize_batch(x, size, mode, codec, scale_factor=None):
    "Resize a batch with the preset's codec; OpenCV semantics go through cv2 on the CPU, image by image."
    if codec == 'torch': return resize_pt(x, size, mode, scale_factor)
    if tuple(size) == tuple(x.shape[-2:]): return x
    outs = [resize_np(im.permute(1, 2, 0).cpu().numpy(), size, mode, 'opencv') for im in x]
    return torch.from_numpy(np.stack(outs)).permute(0, 3, 1, 2).to(x.device)


def _jpeg_batch(x, quality, codec):
    "JPEG with per-image quality (host array), torch or OpenCV codec."
    x = x.clamp(0, 1)
    if codec == 'torch': return jpeg_pt(x, to_device(quality, x.device, torch.float32))
    outs = [jpeg_opencv(im.permute(1, 2, 0).cpu().numpy(), float(q)) for im, q in zip(x, quality)]
    return torch.from_numpy(np.stack(outs)).permute(0, 3, 1, 2).to(x.device)


def degrade_once_pt(x: torch.Tensor,  # (B, 3, H, W) float in [0, 1]; the B images share their resize draw
                    stage: StageParams,  # this order's parameters of the B images
                    lq_hw: tuple[int, int],  # final LQ (height, width)
                    cfg: DegradationConfig,
                    generator: torch.Generator | None = None,  # on x.device
                   ) -> torch.Tensor:  # (B, 3, h, w)
    "One order of degradation on a batch: blur → resize → noise → JPEG."
    dev = x.device
    x = _blur_where(x, stage.blur.kind != 'none', stage.blur.kernels)     # kernels built on the host, one copy
    resize = stage.resize
    scale = float(resize.scale[0])
    x = _resize_batch(x, resize.out_size(0, x.shape[-2:], lq_hw), str(resize.mode[0]), cfg.resize_codec,
                      scale_factor=scale if resize.relative_to[0] == 'input' else None)
    noise = stage.noise
    level = lambda idx: to_device(noise.level[idx], dev, torch.float32)
    gray = lambda idx: to_device(noise.gray[idx], dev)
    x = _subset(x, noise.kind == 'gaussian',
                lambda xs, idx: (xs + gaussian_noise_pt(xs, level(idx), gray(idx), generator)).clamp(0, 1))
    x = _subset(x, noise.kind == 'poisson',
                lambda xs, idx: (xs + poisson_noise_pt(xs, level(idx), gray(idx), generator)).clamp(0, 1))
    quality = stage.jpeg_quality
    return _subset(x, ~np.isnan(quality), lambda xs, idx: _jpeg_batch(xs, quality[idx], cfg.jpeg_codec))


def _final_pt(x, final: FinalParams, lq_hw, hq_hw, cfg):
    "The final step of a batch that shares its final resize draw (see _final_np)."
    if final.via_hq[0]: x = quantize(_resize_batch(x, hq_hw, str(final.via_hq_mode[0]), cfg.resize_codec))
    cutoff, quality = final.sinc_cutoff, final.jpeg_quality
    on = ~np.isnan(cutoff)
    sinc = lambda: make_kernels(np.where(on, 'sinc', 'none'), final.sinc_size, 0, 0, 0, 0, np.nan_to_num(cutoff))
    def resize_sinc(xs): return _blur_where(_resize_batch(xs, lq_hw, str(final.mode[0]), cfg.resize_codec), on, sinc)
    def jpeg(xs): return _subset(xs, ~np.isnan(quality), lambda xx, idx: _jpeg_batch(xx, quality[idx], cfg.jpeg_codec))
    return jpeg(resize_sinc(x)) if final.resize_first[0] else resize_sinc(jpeg(x))


def _group_keys(params: DegParams) -> list[tuple]:
    "Per image, the draws that fix its intermediate sizes; images with equal keys are batched together."
    cols = [c for s in params.stages for c in (s.resize.scale, s.resize.mode)]
    cols += [params.final.resize_first, params.final.mode, params.final.via_hq_mode]
    return list(zip(*[c.tolist() for c in cols]))


@torch.no_grad()
def degrade_batch(hq: torch.Tensor,  # (B, 3, H, W) float in [0, 1], any device; H, W divisible by 4
                  params: DegParams,  # B images' parameters
                  generator: torch.Generator | None = None,  # noise source on hq.device
                 ) -> torch.Tensor:  # (B, 3, H/4, W/4) float in [0, 1], on 8-bit levels
    "The torch backend: degrade a batch with per-image parameters."
    if hq.ndim != 4 or hq.shape[1] != 3: raise ValueError(f'hq must be (B, 3, H, W), got {tuple(hq.shape)}')
    if len(params) != hq.shape[0]: raise ValueError(f'{len(params)} parameter sets for a batch of {hq.shape[0]}')
    cfg = params.cfg
    hq_hw = tuple(hq.shape[-2:])
    lq_hw = check_hq_size(*hq_hw, cfg.scale)
    def run(x, p):
        x = x.float()
        for stage in p.stages: x = degrade_once_pt(x, stage, lq_hw, cfg, generator)
        return quantize(_final_pt(x, p.final, lq_hw, hq_hw, cfg))
    groups: dict[tuple, list[int]] = {}
    for i, k in enumerate(_group_keys(params)): groups.setdefault(k, []).append(i)
    if len(groups) == 1: return run(hq, params)
    out = hq.new_empty(hq.shape[0], 3, *lq_hw, dtype=torch.float32)
    for idx in groups.values():
        it = to_device(idx, hq.device)
        out[it] = run(hq[it], params[np.asarray(idx)])
    return out


# %% [markdown]
# A batch of four faces, two resize draws (`group=2`), with a seeded noise generator:

# %%
#| exec_doc
hq4 = img_to_tensor(np.stack([test_face(64, 64, i) for i in range(4)]))
p4 = sample('ai6126_2024', np.random.default_rng(3), 4, group=2)
lq4 = degrade_batch(hq4, p4, torch.Generator().manual_seed(0))
print(tuple(lq4.shape), lq4.dtype)
for i in range(4): print(p4.caption(i))

# %%
#| hide
test_eq(lq4.shape, (4, 3, 16, 16))
test_eq(lq4, torch.round(lq4 * 255) / 255)                              # on 8-bit levels


# %% [markdown]
# ## The two backends agree
#
# Fed the same parameters, the CPU backend (`degrade_image`) and the torch backend (`degrade_batch`) must give
# nearly the same LQ. They cannot be bit-identical, by design:
#
# - noise realisations come from different generators (numpy's per-image seed vs a torch generator), so the
#   comparison switches noise off and checks the noise separately (statistics above);
# - the blur is OpenCV's `filter2D` on one side and an FFT on the other (float32 rounding, ~1e-6);
# - float rounding can move a JPEG coefficient across a quantisation boundary, and one flipped DCT coefficient
#   changes its 8×8 block by up to a few levels; the final 8-bit rounding turns tiny differences into ±1 level.
#
# So the tolerance is statistical: over 24 images of all three presets, at least 97 % of LQ pixels identical
# and the LQ-vs-LQ PSNR above 45 dB (a ±1-level difference on every pixel would be 48 dB).

# %%
#| hide
def noiseless(p):
    for stage in p.stages: stage.noise.kind[:] = 'none'
    return p

for preset in PRESETS:
    hqs = np.stack([test_face(128, 128, i) for i in range(8)])
    p = noiseless(sample(preset, np.random.default_rng(7), 8))
    cpu = np.stack([degrade_image(h, p[i]) for i, h in enumerate(hqs)])
    pt = tensor_to_img(degrade_batch(img_to_tensor(hqs), p))
    same = float(np.mean(cpu == pt)); gap = psnr(cpu, pt)
    print(f'{preset:17s} identical pixels {same:.4f}, LQ-vs-LQ PSNR {gap:.1f} dB')
    assert same > 0.97 and gap > 45, (preset, same, gap)

# %% [markdown]
# With noise on, the two backends degrade alike in distribution: over 240 draws of the 2024 preset, their mean
# bicubic PSNR (LQ upsampled vs HQ) agrees within 0.3 dB.

# %%
#| hide
n = 240
hqs = np.stack([test_face(64, 64, i) for i in range(n)])
p = sample('ai6126_2024', np.random.default_rng(11), n)
cpu = [bicubic_psnr(degrade_image(hqs[i], p[i]), hqs[i]) for i in range(n)]
lqs = tensor_to_img(degrade_batch(img_to_tensor(hqs), p, torch.Generator().manual_seed(0)))
pt = [bicubic_psnr(lqs[i], hqs[i]) for i in range(n)]
print(f'mean bicubic PSNR: CPU {np.mean(cpu):.3f} dB, torch {np.mean(pt):.3f} dB')
assert abs(np.mean(cpu) - np.mean(pt)) < 0.3

# %% [markdown]
# Determinism: the same seed gives byte-identical LQ on the CPU backend (and on the torch backend on the CPU).

# %%
#| hide
h = test_face(96, 64, 3)
a = degrade_image(h, sample('ai6126_2024', np.random.default_rng(5))[0])
b = degrade_image(h, sample('ai6126_2024', np.random.default_rng(5))[0])
test_eq(a.tobytes(), b.tobytes()); test_eq(a.shape, (24, 16, 3))
c = degrade_image(h, sample('ai6126_2024', np.random.default_rng(6))[0])
test_ne(a.tobytes(), c.tobytes())
pp = sample('ai6126_2024', np.random.default_rng(5), 4, group=2)
x4 = img_to_tensor(np.stack([h] * 4))
test_eq(degrade_batch(x4, pp, torch.Generator().manual_seed(1)), degrade_batch(x4, pp, torch.Generator().manual_seed(1)))
test_fail(lambda: degrade_image(test_face(98, 64), sample('ai6126_2024', np.random.default_rng(0))), contains='64x98')
test_fail(lambda: degrade_batch(x4, pp[:2]), contains='2 parameter sets')

# %% [markdown]
# ## Speed
#
# How fast each backend degrades is measured in `08_bench` (`bench_cpu_degradation`, `bench_degradation`;
# `blindsr_bench speed --parts degradation`), with the numbers it found.

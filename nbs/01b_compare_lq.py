# %% [markdown]
# # Comparing LQ sets
# > Does my training degradation match their test set? Per-image statistics of two LQ sets, a two-sample test per statistic, a plain verdict, and `blindsr_compare_lq`.

# %% [markdown]
# Use it to check that the LQ you train on look like the LQ you will be tested on:
# `blindsr_compare_lq runs/val_LQ_ours data/val/LQ --gt data/val/GT` measures both sets image by image and says
# "same degradation" (exit 0) or which statistics differ and in which direction (exit 1), with histograms.

# %%
#| default_exp compare_lq

# %%
#| export
from __future__ import annotations

import argparse
import json
import math
import os
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from blindsr.cli import HelpFormatter, UserError, check_output_file, examples, png_made_by, positive_int, probability, run_cli
from blindsr.core import ImageReadError, PathLike
from blindsr.metrics import bicubic_psnr, image_set

# %%
#| hide
import io
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from fastcore.test import test_eq, test_fail, test_close
from matplotlib.figure import Figure
from nbdev.showdoc import show_doc
from blindsr.metrics import psnr
from scipy.stats import ks_2samp

tmp = Path(tempfile.mkdtemp())
rng = np.random.default_rng(0)


# %% [markdown]
# A model trained on one degradation and tested on another loses decibels without telling you why. The
# competition gives the test LQ but never its GT, so the question "is my synthetic LQ like theirs?" has to be
# answered from the LQ images alone: we measure a few things per image that a degradation changes (noise level,
# whether the noise is gray or coloured, JPEG blocks, sharpness, tone), then ask, for each statistic, whether the
# two per-image distributions could be one distribution. When GT is at hand (our own val set) we also measure the
# LQ against it.
#
# The tests below use small synthetic "faces": smooth random colour fields with a few hard-edged shapes, made at
# 128×128 as GT and degraded to 64×64 LQ. The real FFHQ check is at the end and runs only where the faces exist.

# %%
#| hide
#| exec_doc
def fake_gt(rng, size=128):
    "A smooth random colour field with three hard-edged discs and bars: (size, size, 3) uint8."
    img = cv2.resize(rng.uniform(40, 215, (6, 6, 3)), (size, size), interpolation=cv2.INTER_CUBIC)
    for _ in range(3):
        c = tuple(int(v) for v in rng.integers(0, size, 2))
        cv2.circle(img, c, int(rng.integers(size // 10, size // 4)), tuple(float(v) for v in rng.uniform(30, 225, 3)), -1)
        y = int(rng.integers(0, size - 8))
        img[y:y + int(rng.integers(3, 8))] = rng.uniform(30, 225, 3)
    return np.clip(np.round(cv2.GaussianBlur(img, (0, 0), 0.7)), 0, 255).astype(np.uint8)

def area_down(gt, lq_size=64): return cv2.resize(gt, (lq_size, lq_size), interpolation=cv2.INTER_AREA)

def jpeg(img, quality):
    "cv2 (libjpeg) round trip of an RGB uint8 image at an integer quality."
    ok, buf = cv2.imencode('.jpg', img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()

def add_noise(img, rng, sigma, gray=False):
    n = rng.normal(0, sigma, img.shape[:2] + ((1,) if gray else (3,)))
    return np.clip(np.round(img + n), 0, 255).astype(np.uint8)

gt0 = fake_gt(rng)
test_eq((gt0.shape, gt0.dtype), ((128, 128, 3), np.uint8))

# %% [markdown]
# ## Statistics from the LQ alone
#
# All statistics work on luma `Y = 0.299 R + 0.587 G + 0.114 B` (JFIF's, so JPEG's own Y) in gray levels 0–255.

# %%
#| export
_LUMA = np.array([0.299, 0.587, 0.114])

def luma(img: np.ndarray,  # (H, W, 3) uint8 or float RGB in [0, 255]
        ) -> np.ndarray:  # (H, W) float64 in [0, 255]
    "JFIF luma of an RGB image."
    return np.asarray(img, np.float64) @ _LUMA


# %%
test_close(luma(np.full((2, 2, 3), 200, np.uint8)), np.full((2, 2), 200.0), eps=1e-9)

# %% [markdown]
# ### Noise level
#
# Immerkær's 3×3 mask `[1 -2 1; -2 4 -2; 1 -2 1] / 6` cancels every linear ramp, so on a smooth face what is left
# is noise, with unit gain for white noise. The median of its absolute value (×1.4826, the Gaussian MAD factor)
# ignores the few edges that leak through. We report σ in gray levels of luma: colour noise of σ per channel shows
# as about 0.67 σ, gray noise as σ.

# %%
#| export
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64) / 6.0

def highpass(x: np.ndarray,  # (H, W) float, any range
            ) -> np.ndarray:  # (H-2, W-2) float: Immerkær residual, unit gain for white noise
    "The Immerkær noise residual of a 2-D image, border pixels dropped."
    return cv2.filter2D(np.asarray(x, np.float64), cv2.CV_64F, _IMMERKAER)[1:-1, 1:-1]


def noise_level(lq: np.ndarray,  # (H, W, 3) uint8 RGB
               ) -> float:  # robust σ of the luma noise, gray levels (0-255 scale)
    "Luma noise σ from the median absolute Immerkær residual."
    return float(1.4826 * np.median(np.abs(highpass(luma(lq)))))


# %% [markdown]
# On a flat image the estimate is the σ we added; on a synthetic face with its edges it is within 10 %, and a
# clean face reads near zero:

# %%
flat = np.full((96, 96, 3), 120.0)
test_close(noise_level(add_noise(flat, rng, 6, gray=True)), 6, eps=0.3)
test_close(noise_level(add_noise(area_down(gt0).astype(float), rng, 8, gray=True)), 8, eps=0.6)
test_close(noise_level(add_noise(area_down(gt0).astype(float), rng, 8)), 8 * 0.67, eps=0.5)
assert noise_level(area_down(gt0)) < 1.0


# %% [markdown]
# ### Gray or colour noise
#
# The 2024 pipeline makes gray noise (one noise field for all three channels) 40 % of the time, the 2023 one
# never. Gray noise makes the high-frequency residuals of R, G and B move together; colour noise leaves them
# independent. We correlate the per-channel residuals over the flattest 30 % of the image (where edges, which are
# correlated in every photo, are rare): 1 = gray noise, 0 = independent colour noise. A later JPEG takes colour
# noise out with its chroma subsampling, so the 2023 LQ (colour noise, then JPEG) still read grayer (0.88 on
# average) than the 2024 LQ (0.67).

# %%
#| export
def noise_corr(lq: np.ndarray,  # (H, W, 3) uint8 RGB
              ) -> float:  # mean pairwise correlation of the R, G, B residuals in flat areas, in [-1, 1]; nan if flat
    "Cross-channel correlation of the noise residual: 1 for gray noise, ~0 for colour noise."
    x = np.asarray(lq, np.float64)
    r = np.stack([highpass(x[..., c]) for c in range(3)], -1)
    g = cv2.GaussianBlur(luma(x), (0, 0), 1.0)
    grad = np.hypot(cv2.Sobel(g, cv2.CV_64F, 1, 0), cv2.Sobel(g, cv2.CV_64F, 0, 1))[1:-1, 1:-1]
    flat = r[grad <= np.quantile(grad, 0.3)]
    flat = flat - flat.mean(0)
    sd = np.sqrt((flat ** 2).mean(0))
    if np.any(sd < 1e-9): return math.nan
    c = (flat.T @ flat) / len(flat) / np.outer(sd, sd)
    return float((c[0, 1] + c[0, 2] + c[1, 2]) / 3)


# %%
base = area_down(gt0).astype(float)
assert noise_corr(add_noise(base, rng, 6, gray=True)) > 0.95
assert abs(noise_corr(add_noise(base, rng, 6))) < 0.15
test_eq(math.isnan(noise_corr(np.full((32, 32, 3), 9, np.uint8))), True)


# %% [markdown]
# ### Blockiness
#
# JPEG quantises 8×8 blocks independently, so a JPEG made at the final size leaves steps on the 8-pixel grid.
# Comparing the mean absolute luma difference across the grid lines with that one pixel to either side of them
# (positions 6|7 and 8|9) cancels the face's own gradient: 0 = no grid, > 0 = visible blocks.

# %%
#| export
def blockiness(lq: np.ndarray,  # (H, W, 3) uint8 RGB, at least 10×10, any aspect ratio
              ) -> float:  # log ratio of |Δ| across the 8-px grid to |Δ| one pixel beside it; ~0 without blocks
    "8×8 JPEG grid strength: log(mean |Δ| on block borders / mean |Δ| next to them), both directions."
    g = luma(lq)
    across = np.abs(np.diff(g, axis=1))                  # across[:, j]: column j vs j + 1
    down = np.abs(np.diff(g, axis=0))                    # down[i]: row i vs i + 1
    pa, pd = np.arange(across.shape[1]) % 8, np.arange(down.shape[0]) % 8
    on = np.concatenate([across[:, pa == 7].ravel(), down[pd == 7].ravel()])
    beside = np.concatenate([across[:, (pa == 6) | (pa == 0)].ravel(), down[(pd == 6) | (pd == 0)].ravel()])
    return float(np.log(on.mean() + 1e-3) - np.log(beside.mean() + 1e-3))


# %%
faces = [area_down(fake_gt(rng)) for _ in range(30)]
blk = {q: np.mean([blockiness(jpeg(f, q) if q else f) for f in faces]) for q in [0, 60, 20]}
test_close(blk[0], 0, eps=0.15)
assert blk[20] > blk[60] + 0.1 > blk[0] + 0.2, blk

# %% [markdown]
# Faces need not be square: a 96×128 LQ is measured along both directions, and a picture turned a quarter
# reads the same.

# %%
tall = jpeg(cv2.resize(fake_gt(rng), (96, 128), interpolation=cv2.INTER_AREA), 20)
test_close(blockiness(tall), blockiness(np.ascontiguousarray(tall.transpose(1, 0, 2))), eps=1e-9)
assert blockiness(tall) > 0.2

# %% [markdown]
# ### JPEG quality
#
# An image whose last step was a JPEG at its final size has DCT coefficients (8×8 blocks of Y, on the grid) that
# sit on multiples of the quantisation table, up to the rounding to 8 bits. We try every table a JPEG of quality
# 1–99 would use and keep the one whose lattice explains the coefficients best (a log-likelihood ratio against
# "no lattice", summed over the 15 lowest frequencies, counting only coefficients off the zero bin, which fit every
# table). Two table families exist in our world: libjpeg's (PIL, OpenCV: integer steps `⌊(T·s + 50)/100⌋`) and
# the GPU DiffJPEG of BasicSR / Real-ESRGAN (float steps `T·s/100`, the table transposed, any float quality, and a
# cubic soft rounding that widens the lattice by ~5 % of a step). A shortlist of 8 qualities per family comes
# from the three lowest frequencies; the float family is then refined in steps of 0.1.
#
# The answer is 100 when no lattice is found: no JPEG, a JPEG above quality ~93 (steps under 2.5 drown in the
# 8-bit rounding), or a JPEG made before a resize (the 2023 pipeline, and the 2024 branch that resizes after its
# last JPEG). On the 200 reference 2024 LQ it finds a JPEG in 110, at qualities 70–95.

# %%
#| export
_JPEG_LUMA = np.array([[16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
                       [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
                       [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
                       [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], np.float64)
_LOW15 = [(u, d - u) for d in range(5) for u in range(d + 1)]  # the 15 frequencies with u + v <= 4
_JPEG_FOUND = 20.0  # nats of evidence for a lattice; unquantised images score <= 0

def _jpeg_steps(quality: np.ndarray,  # (K,) float qualities in [1, 100)
                family: str,  # 'libjpeg' (integer steps) or 'diffjpeg' (float steps, transposed table)
               ) -> np.ndarray:  # (K, 15) quantisation steps of the 15 lowest frequencies
    s = np.where(quality < 50, 5000 / quality, 200 - 2 * quality)[:, None, None]
    t = np.clip(np.floor((_JPEG_LUMA * s + 50) / 100), 1, 255) if family == 'libjpeg' else _JPEG_LUMA.T * s / 100
    return np.stack([t[:, u, v] for u, v in _LOW15], 1)


def _dct8(n: int = 8) -> np.ndarray:
    "The orthonormal DCT-II matrix, which is JPEG's FDCT."
    k = np.arange(n)
    m = np.cos(np.pi * (2 * k[None] + 1) * k[:, None] / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m

_DCT8 = _dct8()


def _block_dct(lq: np.ndarray) -> np.ndarray:
    "(H, W, 3) uint8 -> (N, 15) low-frequency DCT coefficients of the level-shifted Y of each grid-aligned 8×8 block."
    y = luma(lq) - 128
    h, w = (y.shape[0] // 8) * 8, (y.shape[1] // 8) * 8
    b = y[:h, :w].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
    c = _DCT8 @ b @ _DCT8.T
    return np.stack([c[:, u, v] for u, v in _LOW15], 1)


def _lattice_llr(c: np.ndarray,  # (N, F) DCT coefficients
                 steps: np.ndarray,  # (K, F) candidate quantisation steps
                 slack: np.ndarray | float = 0.0,  # (K, F) extra σ per multiple of the step (a coarse grid's error)
                 max_mult: int | None = None,  # count only coefficients within this many steps of zero
                ) -> np.ndarray:  # (K,) log-likelihood ratio of "on the lattice" vs "uniform", nats
    """Evidence that coefficients `c` sit on the lattice of each candidate's steps.

    Per coefficient off the zero bin: log of (Gaussian around the nearest multiple, σ² = 0.3² + (0.05 q)² for
    8-bit rounding and soft rounding, 2 % outliers) over the uniform density 1/q; log(a + b) is taken as
    max(log a, log b), which is within log 2 and needs no exp. Steps under 2.5 are skipped: 8-bit rounding
    hides them."""
    c, q = c[None].astype(np.float32), steps[:, None, :].astype(np.float32)
    k = np.rint(c * (1 / q))
    r = c - q * k
    sig2 = 0.09 + (0.05 * q) ** 2
    if np.any(slack): sig2 = sig2 + (np.broadcast_to(np.asarray(slack, np.float32), steps.shape)[:, None, :] * k) ** 2
    z = np.maximum(np.log(0.98 * q / np.sqrt(2 * np.pi * sig2)) - 0.5 * r * r / sig2, np.float32(math.log(0.02)))
    use = (k != 0) & (q >= 2.5)
    if max_mult is not None: use &= np.abs(k) <= max_mult
    return np.where(use, z, np.float32(0)).sum((1, 2))


# %%
#| export
_Q1 = np.arange(1.0, 100.0)

def jpeg_quality(lq: np.ndarray,  # (H, W, 3) uint8 RGB, at least 32×32
                ) -> float:  # estimated quality 1-99 of a JPEG on this image's 8×8 grid; 100 when none is found
    "Estimate the quality of the last, grid-aligned JPEG from the lattice of the DCT coefficients."
    c = _block_dct(lq)
    if len(c) < 16: return math.nan
    best = (-math.inf, 100.0)
    for family in ('libjpeg', 'diffjpeg'):
        steps = _jpeg_steps(_Q1, family)
        slack = np.abs(_jpeg_steps(_Q1 + 0.5, family) - steps) if family == 'diffjpeg' else np.zeros_like(steps)
        mm = 4 if family == 'diffjpeg' else None     # the float family's integer grid is only near its lattice
        top = np.argsort(-_lattice_llr(c[:, :3], steps[:, :3], slack[:, :3], mm))[:8]   # shortlist on 3 frequencies
        if family == 'libjpeg': qs, llr = _Q1[top], _lattice_llr(c, steps[top])
        else:                                         # the best integer quality, then 0.1 steps around it
            q0 = _Q1[top][np.argmax(_lattice_llr(c, steps[top], slack[top], mm))]
            qs = np.clip(np.arange(q0 - 0.8, q0 + 0.801, 0.1), 1, 99.99)
            llr = _lattice_llr(c, _jpeg_steps(qs, family))
        tied = qs[llr >= llr.max() - 1e-6 * abs(llr.max())]   # qualities with identical tables: report the middle
        if llr.max() > best[0]: best = (float(llr.max()), float(tied.mean()))
    return round(best[1], 2) if best[0] > _JPEG_FOUND else 100.0


# %% [markdown]
# libjpeg (OpenCV) qualities come back exactly, or as the middle of two neighbours whose tables agree on these
# frequencies (75 and 74 share them: 74.5); a PNG, or a JPEG made at twice the size and then
# downscaled, reads 100:

# %%
lq0 = area_down(fake_gt(rng, 256), 128)
for q in [15, 40, 75, 88]: test_close(jpeg_quality(jpeg(lq0, q)), q, eps=0.51)
test_eq(jpeg_quality(lq0), 100.0)
test_eq(jpeg_quality(area_down(jpeg(fake_gt(rng, 256), 30), 128)), 100.0)
test_eq(jpeg_quality(add_noise(lq0.astype(float), rng, 5)), 100.0)


# %% [markdown]
# A DiffJPEG-style quantisation (float steps, transposed table, soft rounding, float quality) is found to ±0.1:

# %%
def diffjpeg_like(img, quality):
    "Quantise the Y DCT with DiffJPEG's float table and cubic soft rounding; keep chroma; back to uint8 RGB."
    x = img.astype(np.float64)
    y = luma(x); cbcr = x - y[..., None]
    s = 5000 / quality if quality < 50 else 200 - 2 * quality
    t = _JPEG_LUMA.T * s / 100
    b = (y - 128).reshape(16, 8, 16, 8).transpose(0, 2, 1, 3)
    c = _DCT8 @ b @ _DCT8.T / t
    c = np.round(c) + (c - np.round(c)) ** 3
    y2 = (_DCT8.T @ (c * t) @ _DCT8).transpose(0, 2, 1, 3).reshape(128, 128) + 128
    return np.clip(np.round(y2[..., None] + cbcr), 0, 255).astype(np.uint8)

for q in [72.33, 81.7, 86.2]: test_close(jpeg_quality(diffjpeg_like(lq0, q)), q, eps=0.11)


# %% [markdown]
# ### Sharpness and tone
#
# Sharpness is the energy of the fine band (difference of Gaussians σ 1–2 px) relative to the coarse band
# (σ 2–4 px), in log: a blur takes more from the fine band, so lower is blurrier, whatever the face's own
# contrast. Noise adds to the fine band, which is why the noise level is measured separately.

# %%
#| export
def sharpness(lq: np.ndarray,  # (H, W, 3) uint8 RGB
             ) -> float:  # log(fine-band energy / coarse-band energy); lower = blurrier
    "Log energy ratio of the σ 1-2 px band to the σ 2-4 px band of luma."
    g = luma(lq)
    b1, b2, b4 = (cv2.GaussianBlur(g, (0, 0), s) for s in (1.0, 2.0, 4.0))
    return float(np.log(np.mean((b1 - b2) ** 2) + 1e-6) - np.log(np.mean((b2 - b4) ** 2) + 1e-6))


# %%
blurred = cv2.GaussianBlur(lq0, (0, 0), 1.2)
assert sharpness(blurred) < sharpness(lq0) - 0.3


# %% [markdown]
# Brightness, contrast and saturation describe the face more than the degradation, but a pipeline that shifts
# colours (a gamma, a colour-space slip, a different resize clamping) moves them, and they cost nothing.

# %%
#| export
def tone(lq: np.ndarray,  # (H, W, 3) uint8 RGB
        ) -> dict[str, float]:  # brightness, contrast: luma mean and std, gray levels; saturation: HSV S mean in [0, 1]
    "Brightness, contrast and saturation of an image."
    x = np.asarray(lq, np.float64)
    g = luma(x)
    mx, mn = x.max(2), x.min(2)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-9), 0.0)
    return {'brightness': float(g.mean()), 'contrast': float(g.std()), 'saturation': float(sat.mean())}


# %%
test_eq(tone(np.full((4, 4, 3), (200, 100, 0), np.uint8))['saturation'], 1.0)
test_close(tone(np.full((4, 4, 3), 80, np.uint8)), {'brightness': 80.0, 'contrast': 0.0, 'saturation': 0.0}, eps=1e-9)


# %% [markdown]
# ## Statistics against the GT
#
# With the GT of each LQ (paired by file stem), we can measure the degradation itself. `ref` is the GT
# area-downscaled to the LQ's size, the clean LQ; `err = lq − ref` is what the degradation added.
# The bicubic PSNR is the organisers' PSNR of the PIL-bicubic upsampled LQ, the score of the "do nothing" model.
# PSNRs are capped at 100 dB so that a perfect copy stays a finite number.

# %%
#| export
def gt_stats(lq: np.ndarray,  # (h, w, 3) uint8 RGB LQ
             gt: np.ndarray,  # (H, W, 3) uint8 RGB GT of the same face, same aspect ratio (e.g. 4h × 4w)
            ) -> dict[str, float]:  # the gt_* statistics; see STATS for each one's meaning
    "Statistics of an LQ measured against its GT."
    (h, w), (H, W) = lq.shape[:2], gt.shape[:2]
    if abs(H / h - W / w) > 0.02 * max(H / h, W / w):
        raise ValueError(f'LQ {w}x{h} and GT {W}x{H} differ in aspect ratio; is this the right GT?')
    ref = cv2.resize(np.asarray(gt, np.float64), (w, h), interpolation=cv2.INTER_AREA)
    x = np.asarray(lq, np.float64)
    err = x - ref
    mse = max(float(np.mean(err ** 2)), 1e-10 * 255 ** 2)
    fine = err - cv2.GaussianBlur(err, (0, 0), 2.0)                 # what the degradation added, fine scale
    fc = fine.reshape(-1, 3) - fine.reshape(-1, 3).mean(0)
    sd = np.sqrt((fc ** 2).mean(0))
    cc = (fc.T @ fc) / len(fc) / np.outer(sd, sd) if np.all(sd > 1e-9) else np.full((3, 3), np.nan)
    hf = lambda im: np.mean((luma(im) - cv2.GaussianBlur(luma(im), (0, 0), 1.0)) ** 2)
    return {'psnr_bicubic': min(bicubic_psnr(np.asarray(lq, np.uint8), np.asarray(gt, np.uint8)), 100.0),
            'psnr_lr': min(20 * math.log10(255 / math.sqrt(mse)), 100.0),
            'gt_sharpness': float(np.log(hf(x) + 1e-6) - np.log(hf(ref) + 1e-6)),
            'gt_fine_error': float(luma(fine).std()),
            'gt_error_corr': float((cc[0, 1] + cc[0, 2] + cc[1, 2]) / 3),
            'gt_bias': float(err.mean())}


# %% [markdown]
# `gt_fine_error` is the part of the error finer than a σ = 2 px blur: noise, but also the fine detail a blur
# removed and JPEG's ringing, so a blurrier, less noisy set can still have more of it. The clean area-downscale is
# the reference itself up to uint8 rounding (no bias, next to no error); added noise and blur show where they should:

# %%
s0 = gt_stats(area_down(gt0), gt0)
test_eq(s0['psnr_lr'] > 50, True); test_close(s0['gt_bias'], 0, eps=0.5); test_close(s0['gt_sharpness'], 0, eps=0.05)
sn = gt_stats(add_noise(area_down(gt0).astype(float), rng, 8, gray=True), gt0)
assert sn['gt_fine_error'] > 5 and sn['gt_error_corr'] > 0.9 and sn['psnr_lr'] < 31
assert gt_stats(cv2.GaussianBlur(area_down(gt0), (0, 0), 1.5), gt0)['gt_sharpness'] < -0.5
test_close(gt_stats(area_down(gt0), gt0)['psnr_bicubic'], psnr(np.asarray(Image.fromarray(area_down(gt0)).resize((128, 128), Image.BICUBIC)), gt0), eps=1e-9)
test_fail(lambda: gt_stats(area_down(gt0), gt0[:, :64]), contains='aspect ratio')


# %% [markdown]
# ## All statistics of one image
#
# `STATS` names every statistic with one line on what it measures and the words for "ours is higher / lower",
# which the verdict uses. It is the one list the table, the JSON and the picture follow.

# %%
#| export
class StatInfo(NamedTuple):
    "What one statistic measures, and how to say that one set is higher or lower in it."
    meaning: str
    higher: str
    lower: str
    needs_gt: bool = False


STATS: dict[str, StatInfo] = {
    'noise':         StatInfo('luma noise σ, gray levels (robust Immerkær residual)', 'noisier', 'cleaner'),
    'noise_corr':    StatInfo('R/G/B noise correlation in flat areas: 1 gray noise, 0 colour noise',
                              'grayer noise', 'more colour noise'),
    'blockiness':    StatInfo('log |Δ| on the 8-px grid vs beside it: 0 none, >0 JPEG blocks', 'blockier', 'less blocky'),
    'jpeg_quality':  StatInfo('quality of a JPEG on the final 8x8 grid; 100 = none found',
                              'lighter final JPEG', 'heavier final JPEG'),
    'sharpness':     StatInfo('log energy of the σ1-2 px band over the σ2-4 px band', 'sharper', 'blurrier'),
    'brightness':    StatInfo('mean luma, gray levels', 'brighter', 'darker'),
    'contrast':      StatInfo('luma standard deviation, gray levels', 'more contrast', 'less contrast'),
    'saturation':    StatInfo('mean HSV saturation, 0-1', 'more saturated', 'less saturated'),
    'psnr_bicubic':  StatInfo('PSNR (dB) of the bicubic-upsampled LQ vs GT, as scored',
                              'closer to the GT (milder)', 'further from the GT (harsher)', True),
    'psnr_lr':       StatInfo('PSNR (dB) of the LQ vs the area-downscaled GT',
                              'closer to the clean downscale', 'further from the clean downscale', True),
    'gt_sharpness':  StatInfo('log fine-detail energy of LQ over the clean downscale; <0 blurred',
                              'sharper against the GT', 'blurrier against the GT', True),
    'gt_fine_error': StatInfo('σ of the fine-scale error LQ - clean downscale (noise, lost detail, artefacts)',
                              'more fine-scale error', 'less fine-scale error', True),
    'gt_error_corr': StatInfo('R/G/B correlation of that error: 1 gray, 0 colour',
                              'grayer error', 'more colour in the error', True),
    'gt_bias':       StatInfo('mean LQ - clean downscale, gray levels', 'brighter than its GT', 'darker than its GT', True),
}


def stat_names(with_gt: bool,  # include the statistics that need GT
              ) -> list[str]:
    "The statistics computed with or without GT, in table order."
    return [k for k, v in STATS.items() if with_gt or not v.needs_gt]


# %%
#| export
def lq_stats(lq: np.ndarray,  # (h, w, 3) uint8 RGB LQ, at least 32×32
             gt: np.ndarray | None = None,  # (H, W, 3) uint8 RGB GT of the same face, or None
            ) -> dict[str, float]:  # statistic -> value, in the order of `stat_names(gt is not None)`
    "Every statistic of one LQ image (and, with its GT, the GT-referenced ones)."
    lq = np.asarray(lq)
    if lq.ndim != 3 or lq.shape[2] != 3 or lq.dtype != np.uint8:
        raise ValueError(f'lq_stats needs an (H, W, 3) uint8 image, got {lq.dtype} {lq.shape}')
    if min(lq.shape[:2]) < 32: raise ValueError(f'lq_stats needs images of at least 32x32 pixels, got {lq.shape[1]}x{lq.shape[0]}')
    out = {'noise': noise_level(lq), 'noise_corr': noise_corr(lq), 'blockiness': blockiness(lq),
           'jpeg_quality': jpeg_quality(lq), 'sharpness': sharpness(lq), **tone(lq)}
    if gt is not None: out.update(gt_stats(lq, gt))
    return {k: out[k] for k in stat_names(gt is not None)}


# %%
test_eq(list(lq_stats(area_down(gt0))), stat_names(False))
test_eq(list(lq_stats(area_down(gt0), gt0)), list(STATS))
test_fail(lambda: lq_stats(np.zeros((16, 16, 3), np.uint8)), contains='32x32')
t0 = time.time(); lq_stats(lq0, fake_gt(rng, 512)); print(f'one 128x128 LQ with its 512x512 GT: {1000 * (time.time() - t0):.0f} ms')


# %% [markdown]
# ## Collecting a set
#
# A set is a folder (or zip) of LQ images; with GT, each LQ is paired with the GT of the same stem, and a missing
# partner is an error listing the stems (extra GT images are fine: one GT folder serves two halves of a split). A GT
# must be `scale` times its LQ (4: the course's 128 → 512); a GT of the LQ's own size, or the LQ given twice, would
# give PSNR 100 and empty rows instead of an error. `open_set` checks all this from the image headers; `collect_stats`
# then reads and measures the images on threads (numpy and OpenCV release the GIL).

# %%
#| export
@dataclass
class StatTable:
    "Per-image statistics of one LQ set."
    src: str                      # the LQ folder or zip
    stems: list[str]              # image stems, sorted
    values: dict[str, np.ndarray] # statistic -> (n,) float64, nan where undefined
    gt: str | None = None         # the GT folder the LQ were measured against, if any
    size: tuple[int, int] | None = None  # (width, height) shared by every LQ of the set

    def __len__(self): return len(self.stems)
    def __getitem__(self, name: str) -> np.ndarray: return self.values[name]


class LQSet(NamedTuple):
    "An LQ set checked from its image headers, ready to measure."
    src: PathLike                 # the LQ folder or zip
    lqs: dict                     # stem -> image reference (blindsr.metrics.image_set)
    gt: PathLike | None           # the GT folder or zip, or None
    gts: dict | None              # stem -> GT image reference, or None
    size: tuple[int, int]         # (width, height) shared by every LQ


def open_set(src: PathLike,  # folder or zip of LQ images
             gt: PathLike | None = None,  # folder or zip of GT images with the same stems, or None
             scale: int = 4,  # a GT is this many times its LQ in width and height
             gt_flag: str = '--gt',  # how a message names the GT (the command's flag)
             workers: int = 4,  # threads reading the image headers
            ) -> LQSet:
    "List an LQ set and check it before any image is decoded: one size, at least 32x32, and GT partners `scale`x it."
    lqs = image_set(src)
    gts = image_set(gt) if gt is not None else None
    if gts is not None:
        missing = [s for s in lqs if s not in gts]
        if missing:
            shown = ', '.join(missing[:20]) + (f' … ({len(missing)} in all)' if len(missing) > 20 else '')
            raise ValueError(f'{len(missing)} LQ image(s) in {src} have no GT partner in {gt}: {shown}')
    with ThreadPoolExecutor(workers) as ex: sizes = dict(zip(lqs, ex.map(lambda s: lqs[s].size(), lqs)))   # headers only
    size = max(set(sizes.values()), key=list(sizes.values()).count)
    small = [f'{Path(lqs[s].label).name} ({w}x{h})' for s, (w, h) in sizes.items() if min(w, h) < 32]
    if small:
        raise ValueError(f'{src} holds {len(small)} LQ image(s) smaller than 32x32, too small to measure noise and JPEG '
                         f'blocks: {", ".join(small[:5])}{" …" if len(small) > 5 else ""}')
    odd = [f'{Path(lqs[s].label).name} ({w}x{h})' for s, (w, h) in sizes.items() if (w, h) != size]
    if odd:
        shown = ', '.join(odd[:5]) + (f' … ({len(odd)} in all)' if len(odd) > 5 else '')
        raise ValueError(f'{src} holds LQ images of mixed sizes: {len(sizes) - len(odd)} are {size[0]}x{size[1]}, but '
                         f'{shown}; every statistic depends on scale, so a set must share one size (an LQ set made by '
                         'one degradation does) — remove or resize the odd ones')
    if gts is not None:
        with ThreadPoolExecutor(workers) as ex: gt_sizes = dict(zip(lqs, ex.map(lambda s: gts[s].size(), lqs)))
        wrong = [s for s in lqs if gt_sizes[s] != (scale * sizes[s][0], scale * sizes[s][1])]
        if wrong:
            s0, (w, h), (W, H) = wrong[0], sizes[wrong[0]], gt_sizes[wrong[0]]
            raise ValueError(f'{gt_flag} {gt} is not the GT of {src}: a GT must be {scale}x its LQ ({scale * w}x{scale * h} '
                             f'for {w}x{h}), but {Path(gts[s0].label).name} is {W}x{H} for the {w}x{h} LQ '
                             f'{Path(lqs[s0].label).name} ({len(wrong)} of {len(lqs)} pairs); give the {scale}x GT of these LQ')
    return LQSet(src, lqs, gt, gts, size)


def collect_stats(src: PathLike | LQSet,  # folder or zip of LQ images, or a set open_set checked
                  gt: PathLike | None = None,  # folder or zip of GT images with the same stems, or None
                  workers: int | None = None,  # threads; default: all cores
                  progress: bool = True,  # tqdm bar on stderr
                  desc: str | None = None,  # the bar's label; default: the folder name
                  scale: int = 4,  # a GT is this many times its LQ
                 ) -> StatTable:
    "Measure every image of an LQ set (against its GT when given); the set must share one size."
    if workers is not None and workers < 1: raise ValueError(f'workers must be a number of threads >= 1, got {workers}')
    workers = workers or os.cpu_count() or 1
    if not isinstance(src, LQSet): src = open_set(src, gt, scale, workers=workers)
    src, lqs, gt, gts, size = src

    def one(stem):
        ref = lqs[stem]
        try: return lq_stats(ref.read(), gts[stem].read() if gts is not None else None)
        except ImageReadError: raise                                  # it names its file already
        except ValueError as e: raise ValueError(f'{ref.label}: {e}') from e

    with ThreadPoolExecutor(workers) as ex:
        rows = list(tqdm(ex.map(one, lqs), total=len(lqs), desc=desc or Path(src).name, unit='img',
                         disable=not progress, leave=False))
    names = stat_names(gts is not None)
    return StatTable(str(src), list(lqs), {k: np.array([r[k] for r in rows], np.float64) for k in names},
                     None if gt is None else str(gt), size)


# %% [markdown]
# Two synthetic sets from the same pipeline (area-downscale, then libjpeg at a random quality 30–60), on different
# faces, and one from another pipeline with a similar PSNR (area-downscale, then colour Gaussian noise σ 3–7):

# %%
#| exec_doc
def make_set(name, degrade, n=40, seed=0):
    r = np.random.default_rng(seed)
    (tmp/name).mkdir(parents=True, exist_ok=True); (tmp/'gt').mkdir(exist_ok=True)
    for i in range(n):
        stem = f'{seed:02d}{i:03d}'
        g = fake_gt(r)
        Image.fromarray(g).save(tmp/'gt'/f'{stem}.png')
        Image.fromarray(degrade(area_down(g), r)).save(tmp/name/f'{stem}.png')
    return tmp/name

def jpeg_pipe(lq, r): return jpeg(lq, r.integers(30, 61))
def noise_pipe(lq, r): return add_noise(lq.astype(float), r, r.uniform(3, 7))

jA, jB, nA = make_set('jpegA', jpeg_pipe, seed=1), make_set('jpegB', jpeg_pipe, seed=2), make_set('noiseA', noise_pipe, seed=3)
t0 = time.time()
tA = collect_stats(jA, progress=False)
print(f'40 LQ 64x64 without GT: {time.time() - t0:.2f} s')
test_eq((len(tA), tA.stems[0], tA.gt, tA.size), (40, '01000', None, (64, 64)))
test_eq(list(tA.values), stat_names(False))
assert np.all((tA['jpeg_quality'] >= 30) & (tA['jpeg_quality'] <= 60))
tAg = collect_stats(jA, tmp/'gt', progress=False, scale=2)
test_eq(list(tAg.values), list(STATS))
test_eq(tAg['noise'], tA['noise'])

# %% [markdown]
# An LQ without its GT partner is named:

# %%
#| hide
(tmp/'orphan').mkdir(); Image.fromarray(area_down(gt0)).save(tmp/'orphan'/'99999.png')
test_fail(lambda: collect_stats(tmp/'orphan', tmp/'gt', progress=False, scale=2), contains='no GT partner in')
test_fail(lambda: collect_stats(tmp/'orphan', tmp/'gt', progress=False, scale=2), contains='99999')

# %% [markdown]
# A GT that is not `scale`× its LQ (the LQ folder itself, or a GT at the wrong scale) is refused from the headers,
# naming a pair and its sizes:

# %%
#| hide
test_fail(lambda: open_set(jA, jA, scale=2), contains='--gt')
test_fail(lambda: open_set(jA, tmp/'gt'), contains='a GT must be 4x its LQ (256x256 for 64x64), but 01000.png is 128x128')
test_eq(open_set(jA, tmp/'gt', scale=2).size, (64, 64))

# %% [markdown]
# A set of mixed sizes is refused, naming the odd image (its statistics would mix scales):

# %%
#| hide
(tmp/'mixed').mkdir()
for p in sorted(jA.iterdir())[:12]: (tmp/'mixed'/p.name).write_bytes(p.read_bytes())
Image.fromarray(area_down(gt0, 48)).save(tmp/'mixed'/'01099.png')
test_fail(lambda: collect_stats(tmp/'mixed', progress=False), contains='12 are 64x64, but 01099.png (48x48)')


# %% [markdown]
# ## The two-sample test
#
# For each statistic, the Kolmogorov–Smirnov distance is the largest gap between the two empirical CDFs: 0 for
# identical samples, 1 for samples that do not overlap. It needs no assumption about the distributions (ours are
# skewed, and `jpeg_quality` is a spike at 100 plus a spread) and works for sets of different sizes. A set that is
# "the same degradation" shows gaps of about `1/√n` from sampling alone; the 5 % critical value for `n` and `m`
# images is `c(α)·√((n+m)/(nm))` with `c(α) = √(−ln(α/2)/2)`. Testing k statistics at once, we use α/k
# (Bonferroni), so the chance that two sets of one degradation are called different stays under 5 %.

# %%
#| export
def ks_distance(a: np.ndarray,  # (n,) sample; nans are dropped
                b: np.ndarray,  # (m,) sample; nans are dropped
               ) -> float:  # sup |F_a - F_b| in [0, 1]; nan if a sample is empty
    "Two-sample Kolmogorov-Smirnov distance."
    a, b = np.sort(a[np.isfinite(a)]), np.sort(b[np.isfinite(b)])
    if len(a) == 0 or len(b) == 0: return math.nan
    x = np.concatenate([a, b])
    return float(np.max(np.abs(np.searchsorted(a, x, 'right') / len(a) - np.searchsorted(b, x, 'right') / len(b))))


def ks_critical(n: int,  # size of the first sample
                m: int,  # size of the second sample
                alpha: float = 0.05,  # the test's level, already divided by the number of tests if Bonferroni
               ) -> float:  # the KS distance above which the samples differ at level alpha (asymptotic)
    "Critical two-sample KS distance at level alpha."
    return math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))


# %% [markdown]
# The distance agrees with scipy's, and the critical value with the textbook 1.358·√((n+m)/(nm)) at 5 %:

# %%
a, b = rng.normal(0, 1, 57), rng.normal(0.5, 1.3, 91)
test_close(ks_distance(a, b), ks_2samp(a, b).statistic, eps=1e-12)
test_eq(ks_distance(a, a), 0.0); test_eq(ks_distance(a, a + 100), 1.0)
test_close(ks_distance(np.r_[a, np.nan], b), ks_distance(a, b), eps=1e-12)
test_close(ks_critical(200, 200), 1.3581 * 0.1, eps=1e-4)

# %% [markdown]
# ## Comparing two sets

# %%
#| export
PLOT_SOFTWARE = 'blindsr_compare_lq (matplotlib)'   # the PNG text chunk that marks the command's own pictures

@dataclass
class StatRow:
    "One statistic compared between the two sets."
    name: str
    mean_ours: float
    mean_theirs: float
    ks: float                 # KS distance
    critical: float           # KS critical value at alpha / k
    differs: bool             # ks > critical

    @property
    def direction(self) -> str:
        "How ours differs from theirs in this statistic, from the means (e.g. 'noisier')."
        info = STATS[self.name]
        return info.higher if self.mean_ours > self.mean_theirs else info.lower


@dataclass
class CompareResult:
    "The verdict on two LQ sets: one row per statistic, and the per-image values behind it."
    ours: StatTable
    theirs: StatTable
    rows: list[StatRow]
    alpha: float = 0.05       # overall level; each statistic is tested at alpha / len(rows)

    @property
    def passed(self) -> bool:
        "True when no statistic tells the sets apart."
        return not any(r.differs for r in self.rows)

    @property
    def verdict(self) -> str:
        if self.passed:
            w = max(self.rows, key=lambda r: r.ks / r.critical if r.critical > 0 else 0)
            return (f'same degradation: no statistic tells the sets apart '
                    f'(closest: {w.name}, KS {w.ks:.3f} < {w.critical:.3f})')
        bad = sorted((r for r in self.rows if r.differs), key=lambda r: -r.ks)
        names = ', '.join(r.name for r in bad[:-1]) + (' and ' if len(bad) > 1 else '') + bad[-1].name
        how = ', '.join(list(dict.fromkeys(r.direction for r in bad))[:5]) + (', …' if len(bad) > 5 else '')
        return f'different: {names} differ{"s" if len(bad) == 1 else ""} (ours: {how})'

    def table(self) -> str:
        "The comparison as a text table, headed by the two sets and ending with the verdict."
        o, t = self.ours, self.theirs
        px = lambda s: f', {s.size[0]}x{s.size[1]}' if s.size else ''
        lines = [f'ours:   {o.src} ({len(o)} images{px(o)}{", GT " + o.gt if o.gt else ""})',
                 f'theirs: {t.src} ({len(t)} images{px(t)}{", GT " + t.gt if t.gt else ""})',
                 f'KS test per statistic at {self.alpha:g} / {len(self.rows)} (Bonferroni)', '',
                 f'{"statistic":<14}{"mean ours":>11}{"mean theirs":>13}{"KS":>8}{"critical":>10}  result']
        for r in self.rows:
            res = f'DIFFER ({r.direction})' if r.differs else ('pass' if math.isfinite(r.ks) else 'n/a')
            lines.append(f'{r.name:<14}{r.mean_ours:>11.3f}{r.mean_theirs:>13.3f}{r.ks:>8.3f}{r.critical:>10.3f}  {res}')
        if o.size and t.size and o.size != t.size:
            lines += ['', f'note: ours are {o.size[0]}x{o.size[1]}, theirs {t.size[0]}x{t.size[1]}: every statistic '
                          'depends on scale, so sets of different sizes differ whatever made them']
        return '\n'.join(lines + ['', self.verdict])

    def to_dict(self) -> dict:
        "Everything, JSON-ready (nan -> None): settings, one entry per statistic, per-image values."
        f = lambda v: None if v is None or not math.isfinite(v) else float(v)
        per = lambda s: {stem: {k: f(s.values[k][i]) for k in s.values} for i, stem in enumerate(s.stems)}
        med = lambda x: f(float(np.median(x[np.isfinite(x)]))) if np.isfinite(x).any() else None
        return {'ours': self.ours.src, 'theirs': self.theirs.src, 'gt_ours': self.ours.gt, 'gt_theirs': self.theirs.gt,
                'n_ours': len(self.ours), 'n_theirs': len(self.theirs), 'alpha': self.alpha,
                'n_statistics': len(self.rows), 'passed': self.passed, 'verdict': self.verdict,
                'statistics': {r.name: {'meaning': STATS[r.name].meaning, 'mean_ours': f(r.mean_ours),
                                        'mean_theirs': f(r.mean_theirs), 'median_ours': med(self.ours[r.name]),
                                        'median_theirs': med(self.theirs[r.name]), 'ks': f(r.ks),
                                        'critical': f(r.critical), 'differs': r.differs,
                                        'direction': r.direction if r.differs else None} for r in self.rows},
                'per_image': {'ours': per(self.ours), 'theirs': per(self.theirs)}}

    def to_json(self, path: PathLike) -> Path:
        "Write `to_dict()` as JSON to `path` (folders created); returns the path."
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    def plot(self, path: PathLike,  # the PNG to write (a PNG whatever the name's suffix)
             ours_label: str = 'ours', theirs_label: str = 'theirs',  # legend names
            ) -> Path:
        "Overlaid histograms of the two sets, one panel per statistic, the verdict as the title."
        from matplotlib.figure import Figure  # the object API draws with Agg and never touches pyplot's backend
        n = len(self.rows); cols = 4; nrows = math.ceil(n / cols)
        fig = Figure(figsize=(4 * cols, 2.9 * nrows + 0.8), layout='constrained')
        axs = fig.subplots(nrows, cols, squeeze=False).ravel()
        for ax, r in zip(axs, self.rows):
            a, b = self.ours[r.name], self.theirs[r.name]
            a, b = a[np.isfinite(a)], b[np.isfinite(b)]
            both = np.concatenate([a, b])
            lo, hi = (both.min(), both.max()) if len(both) else (0, 1)
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 31)
            ax.hist(a, bins, density=True, alpha=0.5, color='tab:blue', label=f'{ours_label} ({len(a)})')
            ax.hist(b, bins, density=True, alpha=0.5, color='tab:orange', label=f'{theirs_label} ({len(b)})')
            ax.set_title(f'{r.name}: KS {r.ks:.2f} {">" if r.differs else "≤"} {r.critical:.2f}', fontsize=10,
                         color='tab:red' if r.differs else 'black')
            ax.set_xlabel(STATS[r.name].meaning, fontsize=7); ax.tick_params(labelsize=7); ax.set_yticks([])
        axs[0].legend(fontsize=7)
        for ax in axs[n:]: ax.set_axis_off()
        fig.suptitle(textwrap.fill(self.verdict, 150), fontsize=11, color='tab:green' if self.passed else 'tab:red')
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=90, format='png', metadata={'Software': PLOT_SOFTWARE})   # a PNG at exactly `path`
        return path


# %%
show_doc(CompareResult.table)

# %%
show_doc(CompareResult.to_dict)

# %%
show_doc(CompareResult.to_json)

# %%
show_doc(CompareResult.plot)


# %%
#| export
def compare_stats(ours: StatTable,  # per-image statistics of our LQ set
                  theirs: StatTable,  # per-image statistics of theirs, same statistics
                  alpha: float = 0.05,  # overall level, split over the statistics (Bonferroni)
                 ) -> CompareResult:
    "KS distance and Bonferroni critical value for every statistic the two tables share."
    names = [k for k in ours.values if k in theirs.values]
    if set(names) != set(ours.values) | set(theirs.values):
        raise ValueError('one set was measured with GT and the other without; give GT for both or for neither')
    rows = []
    for k in names:
        a, b = ours[k][np.isfinite(ours[k])], theirs[k][np.isfinite(theirs[k])]
        ks = ks_distance(a, b)
        crit = ks_critical(len(a), len(b), alpha / len(names)) if len(a) and len(b) else math.nan
        rows.append(StatRow(k, float(a.mean()) if len(a) else math.nan, float(b.mean()) if len(b) else math.nan,
                            ks, crit, bool(ks > crit)))
    return CompareResult(ours, theirs, rows, alpha)


# %%
#| export
def compare_lq(ours: PathLike,  # folder or zip of our LQ images
               theirs: PathLike,  # folder or zip of theirs (e.g. a competition's test LQ)
               gt: PathLike | None = None,  # GT of ours (and of theirs, unless gt_theirs is given), paired by stem
               gt_theirs: PathLike | None = None,  # GT of theirs, when it lives elsewhere
               alpha: float = 0.05,  # overall level of the test
               workers: int | None = None,  # threads; default: all cores
               progress: bool = True,  # tqdm bars on stderr
               scale: int = 4,  # a GT is this many times its LQ
              ) -> CompareResult:
    "Do two LQ sets come from the same degradation? Statistics per image, a KS test per statistic, a verdict."
    if not 0 < alpha < 1: raise ValueError(f'alpha is the test level, between 0 and 1 (exclusive), got {alpha}')
    if Path(ours).resolve() == Path(theirs).resolve():
        raise ValueError(f'OURS and THEIRS are the same set ({ours}): it always matches itself; give two different sets')
    sets = (open_set(ours, gt, scale, '--gt'),                     # both sets checked before either is measured
            open_set(theirs, gt_theirs if gt_theirs is not None else gt, scale, '--gt-theirs' if gt_theirs else '--gt'))
    a, b = [collect_stats(x, workers=workers, progress=progress, desc=d) for x, d in zip(sets, ('ours', 'theirs'))]
    n, m = len(a), len(b)
    if ks_critical(n, m, alpha / len(a.values)) >= 1:
        raise ValueError(f'too few images to tell sets apart ({n} in {ours}, {m} in {theirs}): no KS distance can '
                         f'exceed the critical value; use at least 10 images per set, better 100')
    return compare_stats(a, b, alpha)


# %% [markdown]
# Same pipeline, different faces: same. JPEG against noise: different, in the statistics one expects (noise, its
# colour, the JPEG grid), both from the LQ alone and with GT:

# %%
#| exec_doc
r_same = compare_lq(jA, jB, progress=False)
print(r_same.table())
test_eq(r_same.passed, True)
r_diff = compare_lq(jA, nA, progress=False)
print(r_diff.table())
test_eq(r_diff.passed, False)
differ = {r.name for r in r_diff.rows if r.differs}
assert {'noise', 'jpeg_quality', 'blockiness'} <= differ, differ
assert 'cleaner' in r_diff.verdict and r_diff.verdict.startswith('different:')

# %% [markdown]
# The histograms of the two sets that differ, as `blindsr_compare_lq` draws them:

# %%
#| exec_doc
r_diff.plot(tmp/'histograms.png', 'jpeg', 'noise')
Image.open(tmp/'histograms.png')

# %%
#| hide
rg_same, rg_diff = compare_lq(jA, jB, gt=tmp/'gt', progress=False, scale=2), compare_lq(nA, jA, gt=tmp/'gt', progress=False, scale=2)
test_eq((rg_same.passed, rg_diff.passed), (True, False))
test_eq(len(rg_diff.rows), len(STATS))
assert rg_diff.rows[[r.name for r in rg_diff.rows].index('gt_fine_error')].differs
assert 'noisier' in rg_diff.verdict

# %% [markdown]
# Sets of different sizes are fine; too few images to decide is an error, and so are one set given twice and GT for one side only:

# %%
#| hide
(tmp/'few').mkdir()
for p in sorted(jB.iterdir())[:3]: (tmp/'few'/p.name).write_bytes(p.read_bytes())
test_fail(lambda: compare_lq(jA, tmp/'few', progress=False), contains='too few images')
test_fail(lambda: compare_lq(jA, jA, progress=False), contains='same set')
test_eq(compare_lq(jA, make_set('jpegC', jpeg_pipe, n=25, seed=4), progress=False).passed, True)
test_fail(lambda: compare_stats(tA, tAg), contains='with GT and the other without')

# %% [markdown]
# The JSON holds every number and every image's values; the picture shows the histograms:

# %%
d = json.loads(r_diff.to_json(tmp/'cmp.json').read_text())
test_eq((d['passed'], d['n_ours'], d['n_statistics']), (False, 40, len(stat_names(False))))
test_eq(d['statistics']['noise']['direction'], 'cleaner')
test_eq(len(d['per_image']['theirs']), 40)
r_diff.plot(tmp/'cmp.png', 'jpeg', 'noise')
test_eq(Image.open(tmp/'cmp.png').format, 'PNG')


# %% [markdown]
# ## The command
#
# `blindsr_compare_lq OURS THEIRS [--gt GT]` prints the table and the verdict, writes the histograms beside OURS
# (`OURS_vs_THEIRS.png`, or `--plot`) and optionally a JSON; the exit code is 0 when the sets match, 1 when they
# differ, 2 on a usage or input error. The outputs are checked before any image is measured: neither may be, or
# lie inside, an input, or replace a file the command did not write. When the folder beside OURS is read-only (a
# dataset under `/kaggle/input`), the default picture goes to the current folder instead.

# %%
#| export
def _default_plot(ours: Path, theirs: Path) -> Path:
    "OURS_vs_THEIRS.png beside OURS; parent folder names join in when the two names are equal (val/LQ vs test/LQ)."
    name = lambda p: p.stem if p.suffix.lower() == '.zip' else p.name
    a, b = name(ours), name(theirs)
    if a == b: a, b = f'{ours.resolve().parent.name}-{a}', f'{theirs.resolve().parent.name}-{b}'
    return ours.parent / f'{a}_vs_{b}.png'


def is_compare_json(path: PathLike) -> bool:
    "Is `path` a JSON that blindsr_compare_lq wrote (so that a rerun may replace it)?"
    try: d = json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError): return False
    return isinstance(d, dict) and {'verdict', 'statistics', 'per_image'} <= set(d)


def is_compare_png(path: PathLike) -> bool:
    "Is `path` a picture blindsr_compare_lq drew (its PNG `Software` text says so), which a rerun may replace?"
    return png_made_by(path, PLOT_SOFTWARE)


def compare_lq_parser() -> argparse.ArgumentParser:
    "The flags of blindsr_compare_lq."
    ap = argparse.ArgumentParser(
        prog='blindsr_compare_lq', formatter_class=HelpFormatter,
        description='Do two LQ sets come from the same degradation? Measures noise, its colour, JPEG blocks and quality,\n'
                    'sharpness and tone on every image (and, with GT, the degradation against it), runs a two-sample\n'
                    'Kolmogorov-Smirnov test per statistic and says which statistics differ and how.',
        epilog=examples(("is my synthetic val LQ like the competition's test LQ?", 'blindsr_compare_lq data/val/LQ data/test/LQ'),
                        ('the same, with GT-referenced statistics and every number in a JSON',
                         'blindsr_compare_lq my_lq data/val/LQ --gt data/val/GT --json cmp.json --no-plot'),
                        note='Exit status: 0 same degradation; 1 different; 2 a mistake in the inputs or outputs, named '
                             'on one line. Each set must hold images of one size, at least 32x32, 10 or more per set '
                             '(100 or more to tell small differences apart).'))
    g = ap.add_argument_group('the two LQ sets')
    g.add_argument('ours', metavar='OURS', help='folder or zip of our LQ images, e.g. LQ made by blindsr_degrade')
    g.add_argument('theirs', metavar='THEIRS', help="folder or zip of their LQ images, e.g. the competition's test/LQ")
    g.add_argument('--gt', default=None, metavar='DIR',
                   help='GT folder (or zip) of OURS, paired by stem, and of THEIRS unless --gt-theirs is given: adds 6 '
                        'statistics measured against the GT (default: none, LQ statistics only)')
    g.add_argument('--gt-theirs', default=None, metavar='DIR', help='GT folder of THEIRS when it is not --gt (needs --gt) (default: --gt for both)')
    g.add_argument('--scale', type=positive_int, default=4, metavar='N',
                   help="how many times a GT is larger than its LQ in width and height; a GT of any other size is "
                        "refused (default: 4, the course's 128x128 LQ of 512x512 GT)")
    g = ap.add_argument_group('outputs')
    g.add_argument('--plot', default=None, metavar='FILE.png',
                   help='the histogram picture (PNG), one panel per statistic; .png is added to a name without a suffix '
                        '(default: OURS_vs_THEIRS.png beside OURS, or in the current folder when that folder is read-only)')
    g.add_argument('--no-plot', action='store_true', help='do not draw the picture (default: draw it)')
    g.add_argument('--json', default=None, metavar='FILE.json',
                   help='also write every number, the verdict and each image\'s values to this JSON (default: none)')
    g = ap.add_argument_group('test and speed')
    g.add_argument('--alpha', type=probability, default=0.05, metavar='LEVEL',
                   help='overall test level, between 0 and 1 (exclusive), split over the statistics (Bonferroni); '
                        'smaller calls fewer sets different (default: 0.05)')
    g.add_argument('--workers', type=positive_int, default=None, metavar='N',
                   help=f'threads measuring images, a whole number >= 1; more than {MAX_WORKERS_PER_CORE} per core '
                        'is cut to that (default: all cores)')
    g.add_argument('--quiet', action='store_true', help='no progress bars (default: bars on stderr)')
    return ap


def _plot_path(plot: str) -> Path:
    "--plot as it will be written: a name without a suffix gets .png (as matplotlib would add it); another suffix is refused."
    p = Path(plot)
    if not p.name: raise UserError(f'--plot {plot!r} is not a file name; give one ending in .png')
    if p.suffix.lower() == '.png' or p.is_dir(): return p             # a folder: check_output_file names the mistake
    if p.suffix: raise UserError(f'--plot {plot}: the picture is a PNG; give a name ending in .png')
    return p.with_name(p.name + '.png')


def _output(path: PathLike, inputs: list, flag: str, own) -> Path:
    "`check_output_file`: not an input, not a user's file, and creatable (it tries, before any image is measured)."
    return check_output_file(path, inputs, flag, own=own)


def _compare_outputs(a: argparse.Namespace) -> tuple[Path | None, Path | None]:
    "The JSON and picture paths, checked before any image is measured (the picture may fall back to the current folder)."
    if a.gt_theirs and not a.gt: raise UserError('--gt-theirs needs --gt (the GT of OURS) too; give both, or neither')
    if a.plot is not None and a.no_plot: raise UserError(f'--plot {a.plot} and --no-plot contradict each other; give one')
    inputs = [x for x in (a.ours, a.theirs, a.gt, a.gt_theirs) if x]
    js = _output(a.json, inputs, '--json', is_compare_json) if a.json is not None else None
    plot = None if a.no_plot else _plot_path(a.plot) if a.plot is not None else None
    if plot is not None: plot = _output(plot, inputs, '--plot', is_compare_png)
    elif not a.no_plot:
        default = _default_plot(Path(a.ours), Path(a.theirs))
        try: plot = _output(default, inputs, '--plot', is_compare_png)
        except UserError as beside:
            try: plot = _output(Path.cwd() / default.name, inputs, '--plot', is_compare_png)
            except UserError: print(f'note: no picture: {beside} (and the current folder cannot take it either); pass --plot FILE.png')
            else: print(f'note: the picture goes to {plot}, because {beside}')
    if js is not None and plot is not None and js == plot:
        raise UserError(f'--plot {plot} and --json {a.json} are the same file: the picture would replace the JSON; '
                        'give them different names')
    return js, plot


MAX_WORKERS_PER_CORE = 4   # local cap on --workers until blindsr.cli has one shared `workers` type (the lead unifies)


def _workers(n: int | None) -> int | None:
    "--workers, cut to MAX_WORKERS_PER_CORE threads per core (more only costs memory), with a note when cut."
    cap = MAX_WORKERS_PER_CORE * (os.cpu_count() or 1)
    if n is None or n <= cap: return n
    print(f'note: --workers {n} is more threads than {os.cpu_count() or 1} cores can use; using {cap}')
    return cap


def compare_lq_cli(argv: list[str] | None = None) -> int:
    "blindsr_compare_lq OURS THEIRS [--gt GT]: do two LQ sets come from the same degradation?"
    a = compare_lq_parser().parse_args(argv)
    def body():
        js, plot = _compare_outputs(a)
        res = compare_lq(a.ours, a.theirs, a.gt, a.gt_theirs, a.alpha, _workers(a.workers), progress=not a.quiet, scale=a.scale)
        print(res.table())
        if js: print(f'json: {res.to_json(js)}')
        if plot: print(f'histograms: {res.plot(plot, Path(a.ours).name, Path(a.theirs).name)}')
        return 0 if res.passed else 1
    return run_cli('blindsr_compare_lq', body)


# %%
test_eq(compare_lq_cli([str(jA), str(jB), '--quiet']), 0)
assert (tmp/'jpegA_vs_jpegB.png').exists()
test_eq(compare_lq_cli([str(jA), str(jB), '--quiet']), 0)                      # its own picture: replaced
test_eq(compare_lq_cli([str(jA), str(nA), '--gt', str(tmp/'gt'), '--scale', '2', '--json', str(tmp/'c.json'), '--no-plot', '--quiet']), 1)
test_eq(json.loads((tmp/'c.json').read_text())['gt_ours'], str(tmp/'gt'))
test_eq(_default_plot(Path('data/val/LQ'), Path('data/test/LQ')), Path('data/val/val-LQ_vs_test-LQ.png'))
test_eq(_default_plot(Path('a/ours'), Path('b/sub.zip')), Path('a/ours_vs_sub.png'))

# %% [markdown]
# Every mistake is one line and exit status 2, found before any image is measured: a missing set, a set without
# its GT partners, an impossible level, and outputs that would land in an input or over a user's file.

# %%
#| hide
(tmp/'photo.png').write_bytes((jB/sorted(p.name for p in jB.iterdir())[0]).read_bytes())
Figure().savefig(tmp/'userplot.png')                                   # a user's own matplotlib figure
users = {p: p.read_bytes() for p in (tmp/'photo.png', tmp/'userplot.png')}
S, G, Q = [str(jA), str(jB)], ['--gt', str(tmp/'gt'), '--scale', '2'], ['--quiet']
mistakes = [([str(tmp/'nope'), str(jB)], 'nope'), ([str(tmp/'orphan'), str(jB), *G], 'no GT partner'),
            ([*S, '--alpha', '1.5'], '--alpha'), ([*S, '--json', str(jA/'stats.json')], '--json'),
            ([*S, '--plot', str(tmp/'photo.png')], 'photo.png'), ([*S, '--gt-theirs', str(tmp/'gt')], '--gt'),
            ([*S, '--plot', str(tmp/'userplot')], 'userplot.png'),           # matplotlib would write userplot.png
            ([*S, '--plot', str(tmp/'userplot.png')], 'not written by this command'),   # matplotlib drew it, not us
            ([*S, '--plot', str(tmp/'h.jpg')], '.png'), ([*S, '--plot', str(tmp/'h.png'), '--no-plot'], '--no-plot'),
            ([*S, '--plot', str(tmp/'same.png'), '--json', str(tmp/'same.png')], '--json'),
            ([*S, '--json', '/proc/blindsr/x.json', '--no-plot'], '--json /proc/blindsr/x.json'),
            ([str(jA), str(jA)], 'same set'), ([*S, '--gt', str(jA)], '--gt'), ([*S, *G[:2]], '256x256 for 64x64')]
for args, want in mistakes:
    with redirect_stderr(io.StringIO()) as err:
        try: test_eq(compare_lq_cli([*args, *Q]), 2)
        except SystemExit as e: test_eq(e.code, 2)                         # argparse's own refusal (--alpha)
    print(err.getvalue().strip()[-150:])
    test_eq(len([l for l in err.getvalue().splitlines() if 'error:' in l]), 1)
    assert want in err.getvalue(), (args, err.getvalue())
assert not (jA/'stats.json').exists() and not (tmp/'same.png').exists() and not (tmp/'h.png').exists()
test_eq({p: p.read_bytes() for p in users}, users)
test_eq([is_compare_png(p) for p in users], [False, False])

# %% [markdown]
# A `--plot` without a suffix is written, and reported, as the PNG it is; a thread count beyond use is cut down:

# %%
#| hide
with redirect_stdout(io.StringIO()) as out: test_eq(compare_lq_cli([*S, *Q, '--plot', str(tmp/'hist'), '--workers', '99999999']), 0)
assert f'histograms: {tmp/"hist.png"}' in out.getvalue() and 'note: --workers 99999999' in out.getvalue(), out.getvalue()
assert is_compare_png(tmp/'hist.png') and not (tmp/'hist').exists()
test_eq(compare_lq_cli([*S, *Q, '--plot', str(tmp/'hist')]), 0)              # its own picture: replaced

# %% [markdown]
# ## On real faces
#
# The 200 FFHQ faces beside the checkout (`../shared/data/ffhq200`, never part of the repo) come with LQ from the
# organisers' 2023 pipeline and from the reference 2024 pipeline. The check: 2023 vs 2024 must differ, with GT and
# without, and two halves of the 2024 set (same pipeline, other faces) must not. Skipped where the faces are absent.

# %%
#| slow
ffhq = Path(os.environ.get('BLINDSR_FFHQ200', '../../shared/data/ffhq200'))
if (ffhq/'gt').is_dir():
    for sub in ['a', 'b']: (tmp/f'h{sub}').mkdir(exist_ok=True)
    for i, p in enumerate(sorted((ffhq/'lq2024-ref').glob('*.png'))):
        (tmp/('ha' if i < 100 else 'hb')/p.name).write_bytes(p.read_bytes())
    for gt_dir in [None, ffhq/'gt']:
        r23 = compare_lq(ffhq/'lq2023', ffhq/'lq2024-ref', gt=gt_dir, progress=False)
        rh = compare_lq(tmp/'ha', tmp/'hb', gt=gt_dir, progress=False)
        print(r23.table(), '\n'); print(rh.verdict, '\n')
        test_eq((r23.passed, rh.passed), (False, True))

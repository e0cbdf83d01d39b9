# %% [markdown]
# # Inference
# > Restore faces with a trained generator: `restore()` for tensors and images, overlapping tiles and test-time augmentation, `blindsr_restore` for files and folders, and `blindsr_val` to restore and score a val set in one go.

# %% [markdown]
# Use it to turn LQ faces into restored ones with a model you have: `restore(model, lq)` in Python (one image, a
# batch, a PIL image or a tensor), `blindsr_restore LQ_FOLDER OUT --ckpt best.pt` for files, and
# `blindsr_val data/val/LQ data/val/GT OUT --ckpt best.pt` to restore the val set and print its PSNR in one go.

# %%
#| default_exp inference

# %%
#| export
from __future__ import annotations

import argparse
import math
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from blindsr.cli import (USER_ERRORS, HelpFormatter, UserError, check_output_dir, check_output_file, examples,
                         json_object, non_negative_int, positive_int, read_manifest, run_cli, worker_count,
                         write_manifest)
from blindsr.core import (IMAGE_EXTS, OTHER_IMAGE_EXTS, PathLike, img_to_tensor, list_images, read_image, read_image_size,
                          tensor_to_img, write_png)
from blindsr.device import UnsupportedGPUError, model_device, usable_device
from blindsr.metrics import EvalResult, bicubic_baseline, check_ssim_sizes, evaluate, image_set, scores_csv_path
from blindsr.checkpoint import CheckpointError, default_weights, load_generator
from blindsr.models import GENERATORS

# %%
#| hide
import io
import shutil
import tempfile
from contextlib import redirect_stderr
from fastcore.test import test_eq, test_fail, test_close, test_ne
from blindsr.checkpoint import export_weights
from blindsr.models import build_generator
from blindsr.samples import astronaut_face

tmp = Path(tempfile.mkdtemp())
rng = np.random.default_rng(0)
torch.manual_seed(0)

def tiny_net(seed=0, **kw):
    "A tiny MSRResNet (8 features, 1 block) with random weights: fast on a CPU, and a real receptive field."
    torch.manual_seed(seed)
    return build_generator('msrresnet', **{'num_feat': 8, 'num_block': 1, **kw}).eval().requires_grad_(False)

def rand_imgs(folder, n, h=16, w=16, start=0):
    "n random uint8 RGB PNGs 00000.png … in `folder`."
    for i in range(start, start + n): write_png(Path(folder) / f'{i:05d}.png', rng.integers(0, 256, (h, w, 3), dtype=np.uint8))

net = tiny_net()
export_weights(tmp/'w16.pt', net, 'msrresnet', {'num_feat': 8, 'num_block': 1}, {'val_psnr': 20.0}, half=True)   # a weights file to load

# %% [markdown]
# A trained generator maps a `(B, 3, h, w)` LQ batch in [0, 1] to `(B, 3, 4h, 4w)`. Everything in this notebook
# sits around that call: reading the weights whatever wrote them, feeding the network tensors or images of any
# size without running out of memory, averaging over flips, restoring folders of files, and scoring a val set. The
# CodaLab zip is `06a_submission`'s, the pictures and `blindsr_demo` are `06b_demo`'s, and what TTA is worth is
# measured in `08_bench`.

# %% [markdown]
# ## Loading a generator
#
# `blindsr.checkpoint.load_generator` reads any accepted file — blindsr weights (`best.pt`, the shipped
# `blindsr_default.pt`), a training checkpoint (`last.ckpt`, its EMA weights), a BasicSR `net_g_*.pth` or a bare
# state dict — and returns the float32 generator in eval mode on the best usable device; `default_weights()` is the
# shipped file.

# %% [markdown]
# ## Test-time augmentation
#
# TTA runs the network on transformed copies of the input, undoes each transform on the output, and averages (in
# float32, before any rounding). `flip` averages the face and its mirror image — a transform the training data is
# full of (horizontal flip is the course's advised augmentation). `x8` adds the three rotations of each; but faces
# are **not rotation-symmetric**: every training face is upright, so the network has never seen a face on its
# side or upside down, and its output on those is worse than on the upright face. Averaging in worse estimates
# usually helps less than `flip`, or hurts. `flip` is the candidate for a network trained on upright faces with
# mirror augmentation; whether it beats `off` is measured in `08_bench` (`bench_tta`): for the shipped generator,
# by about ±0.02 dB, so `off` stays the default. (`x8` costs 8 forward passes, `flip` 2.)

# %%
#| export
TTA_MODES: dict[str, list[tuple[int, bool]]] = {   # mode -> transforms: (quarter turns, horizontal flip after turning)
    'off': [(0, False)],
    'flip': [(0, False), (0, True)],
    'x8': [(k, f) for f in (False, True) for k in range(4)],
}


def tta_transform(x: torch.Tensor,  # (…, H, W)
                  k: int,  # quarter turns (counter-clockwise, torch.rot90)
                  flip: bool,  # then flip left-right
                 ) -> torch.Tensor:  # (…, H, W), or (…, W, H) after an odd number of turns
    "One test-time transform: turn `x` k quarter turns, then flip it left-right."
    if k: x = torch.rot90(x, k, dims=(-2, -1))
    return x.flip(-1) if flip else x


def tta_untransform(y: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    "The inverse of `tta_transform(·, k, flip)`: a restored output mapped back to the upright face."
    if flip: y = y.flip(-1)
    return torch.rot90(y, -k, dims=(-2, -1)) if k else y


def _autocast(device: torch.device, amp: str | None):
    if amp in (None, 'off'): return nullcontext()
    dtypes = {'bf16': torch.bfloat16, 'fp16': torch.float16}
    if amp not in dtypes: raise ValueError(f"amp must be None, 'off', 'bf16' or 'fp16', got {amp!r}")
    return torch.autocast(device.type, dtype=dtypes[amp])


def forward_tta(model: nn.Module,  # generator, (B,3,h,w) -> (B,3,4h,4w)
                lq: torch.Tensor,  # (B,3,h,w) float in [0,1], on the model's device
                tta: str = 'off',  # a key of TTA_MODES
                amp: str | None = None,  # None: float32; 'bf16' / 'fp16': autocast the network (the mean stays float32)
               ) -> torch.Tensor:  # (B,3,4h,4w) float32, the mean over the transforms (not clamped)
    "The network's output averaged over the test-time transforms of `tta`."
    if tta not in TTA_MODES: raise ValueError(f'tta must be one of {", ".join(TTA_MODES)}, got {tta!r}')
    acc = None
    for k, flip in TTA_MODES[tta]:
        with _autocast(lq.device, amp): y = model(tta_transform(lq, k, flip))
        y = tta_untransform(y.float(), k, flip)
        acc = y if acc is None else acc + y
    n = len(TTA_MODES[tta])
    return acc if n == 1 else acc / n


# %% [markdown]
# `flip` is exactly the mean of the plain and the mirrored pass, to the bit; and for a network that commutes with
# every turn and flip (nearest-neighbour upsampling), `x8` gives back the plain output (to float32 rounding of the
# sum) — the transforms and their inverses match:

# %%
lq = torch.rand(2, 3, 12, 17)
a, b = net(lq), net(lq.flip(-1)).flip(-1)
test_eq(forward_tta(net, lq, 'flip'), (a + b) / 2)
test_eq(forward_tta(net, lq, 'off'), a)
up = nn.Upsample(scale_factor=4, mode='nearest')
test_close(forward_tta(up, lq, 'x8'), up(lq), eps=1e-6)                # 8 equal terms, summed in float32
test_eq(len(TTA_MODES['x8']), len(set(TTA_MODES['x8'])))
assert not torch.allclose(forward_tta(net, lq, 'x8'), a)           # a real network is not rotation-equivariant
test_fail(lambda: forward_tta(net, lq, 'x4'), contains='off, flip, x8')
for k, f in TTA_MODES['x8']: test_eq(tta_untransform(tta_transform(lq, k, f), k, f), lq)

# %% [markdown]
# ## Tiles
#
# A 512×512 real-world photo restored to 2048×2048 needs several GB of activations at once (the last layers of
# MSRResNet hold 64 channels at the output size). So large inputs go through the network in tiles: the image is cut
# into near-equal tiles of at most `tile` LQ pixels a side, each is run with `tile_overlap` pixels of real context
# on every side, and only its centre (the tile itself) is kept. When the overlap covers the network's receptive
# field at the tile border, every kept pixel sees exactly what it would see in the whole image, so the result
# equals the untiled output up to float rounding, and memory is bounded by the tile size. The default overlap, 32
# LQ pixels, nearly covers the receptive field of a 16-block MSRResNet (35 pixels: 34 3×3 convolutions at LQ
# scale plus the upsampling tail; 51 for `msrresnet_deep`), and a pixel's influence fades well before the edge of
# the field. With random weights, `plksr` (17×17 kernels) in 64-pixel tiles agreed with the whole image to within
# one grey level at 16 pixels of overlap and to 2e-7 at 32. Networks with global operations — `rcan_lite`'s
# channel attention pools over the whole input — give slightly different, still seam-free, results when tiled.

# %%
#| export
AUTO_TILE_AREA = 256 * 256   # 'auto' tiles inputs with more LQ pixels than this (a 256² LQ is a 1024² output)
AUTO_TILE = 256              # the tile side 'auto' uses


def tile_spans(n: int,  # length of the side to cut
               tile: int,  # largest span
              ) -> list[tuple[int, int]]:  # (start, stop) of ceil(n / tile) near-equal spans covering range(n)
    "Cut range(n) into the fewest near-equal spans of at most `tile`."
    if tile < 1: raise ValueError(f'tile must be a positive number of LQ pixels, got {tile}')
    k = max(1, math.ceil(n / tile))
    edges = [round(i * n / k) for i in range(k + 1)]
    return list(zip(edges[:-1], edges[1:]))


def tiled(fn: Callable[[torch.Tensor], torch.Tensor],  # (B,C,h,w) -> (B,C',s·h,s·w), e.g. the network
          x: torch.Tensor,  # (B,C,H,W)
          tile: int,  # largest tile side, in input pixels
          overlap: int = 32,  # input pixels of context added on each side of a tile (and then cropped away)
         ) -> torch.Tensor:  # (B,C',s·H,s·W), as fn(x) up to rounding
    "Apply an upscaling `fn` to `x` tile by tile, with overlapping context cropped from each tile's output."
    B, _, H, W = x.shape
    out = None
    for y0, y1 in tile_spans(H, tile):
        for x0, x1 in tile_spans(W, tile):
            Y0, Y1, X0, X1 = max(0, y0 - overlap), min(H, y1 + overlap), max(0, x0 - overlap), min(W, x1 + overlap)
            piece = fn(x[..., Y0:Y1, X0:X1])
            s = piece.shape[-1] // (X1 - X0)
            if s < 1 or piece.shape[-2:] != (s * (Y1 - Y0), s * (X1 - X0)):
                raise ValueError(f'tiled: fn must scale both sides by one integer factor; a {Y1 - Y0}x{X1 - X0} '
                                 f'tile gave {tuple(piece.shape[-2:])}')
            if out is None: out = piece.new_empty(B, piece.shape[1], s * H, s * W)
            out[..., s * y0:s * y1, s * x0:s * x1] = piece[..., s * (y0 - Y0):s * (y1 - Y0), s * (x0 - X0):s * (x1 - X0)]
    return out


# %%
test_eq(tile_spans(300, 128), [(0, 100), (100, 200), (200, 300)])
test_eq(tile_spans(100, 128), [(0, 100)])
test_eq(tile_spans(129, 128), [(0, 64), (64, 129)])

# %% [markdown]
# Tiled equals untiled within rounding on a real (tiny) network: its receptive field is about five LQ pixels, so
# eight pixels of overlap are enough. As saved images (uint8) the two are identical:

# %%
x = torch.rand(2, 3, 45, 70)
with torch.no_grad():
    whole = net(x)
    parts = tiled(net, x, tile=20, overlap=8)                 # 3 x 4 tiles
test_eq(parts.shape, whole.shape)
test_close(parts, whole, eps=1e-5)
test_eq(tensor_to_img(parts), tensor_to_img(whole))
with torch.no_grad(): no_ctx = tiled(net, x, tile=20, overlap=0)
assert (no_ctx - whole).abs().max() > 1e-3                    # without context, the seams show


# %% [markdown]
# ## `restore`
#
# One call for every kind of input: a float tensor batch `(B, 3, h, w)` in [0, 1] gives a tensor (on the input's
# device, clamped to [0, 1]); a PIL image gives a PIL image; a uint8 `(h, w, 3)` array (or `(N, h, w, 3)`) gives
# uint8. It runs on the model's device under `torch.inference_mode`, in float32 by default (autocast is an option,
# but the score is computed on rounded fp32 outputs), tiling automatically when an image has more than
# `AUTO_TILE_AREA` LQ pixels (a tiled batch goes one image at a time, so memory is bounded by one tile).

# %%
#| export
def _as_batch(lq) -> tuple[torch.Tensor, Callable[[torch.Tensor], object]]:
    "Any supported input -> ((B,3,h,w) float tensor in [0,1], a function turning the output back into that type)."
    if isinstance(lq, torch.Tensor):
        if not lq.is_floating_point():
            raise ValueError(f'restore needs a float tensor in [0, 1], got {lq.dtype}; divide a uint8 tensor by 255')
        if lq.ndim == 3 and lq.shape[0] == 3: return lq[None], lambda y: y[0]
        if lq.ndim != 4 or lq.shape[1] != 3: raise ValueError(f'restore needs a (B,3,h,w) tensor, got {tuple(lq.shape)}')
        return lq, lambda y: y
    if isinstance(lq, Image.Image):
        return img_to_tensor(np.array(lq.convert('RGB'))), lambda y: Image.fromarray(tensor_to_img(y)[0])
    if isinstance(lq, np.ndarray):
        if lq.dtype != np.uint8 or lq.ndim not in (3, 4) or lq.shape[-1] != 3:
            raise ValueError(f'restore needs a uint8 (h,w,3) or (N,h,w,3) array, got {lq.dtype} {lq.shape}')
        return img_to_tensor(lq), (lambda y: tensor_to_img(y)[0]) if lq.ndim == 3 else tensor_to_img
    raise TypeError(f'restore takes a tensor, a PIL image or a uint8 array, got {type(lq).__name__}')


def _tile_for(tile: int | str | None, h: int, w: int) -> int | None:
    "The tile side to use for an h×w input, or None for one pass."
    if tile in (None, 0, 'off'): return None
    if tile == 'auto': return AUTO_TILE if h * w > AUTO_TILE_AREA else None
    if not isinstance(tile, int) or tile < 1:
        raise ValueError(f"tile must be 'auto', None/0 (never) or a positive number of LQ pixels, got {tile!r}")
    return tile if max(h, w) > tile else None


def restore(model: nn.Module,  # generator, (B,3,h,w) -> (B,3,4h,4w); see load_generator
            lq,  # (B,3,h,w) or (3,h,w) float tensor in [0,1]; a PIL image; a uint8 (h,w,3) or (N,h,w,3) array
            tta: str = 'off',  # 'off', 'flip' (identity + mirror, averaged) or 'x8' (turns and flips)
            tile: int | str | None = 'auto',  # LQ tile side; 'auto': AUTO_TILE when h·w > AUTO_TILE_AREA; None/0: never
            tile_overlap: int = 32,  # LQ pixels of context around each tile (see the section on tiles)
            batch: int | None = None,  # images per forward pass (None: the whole input at once)
            amp: str | None = None,  # None: float32 (exact); 'bf16' or 'fp16': autocast
           ):  # the restored image(s), of the input's type: tensor (clamped to [0,1]), PIL image, or uint8 array
    "Restore LQ face(s) with `model`, on the model's device."
    x, back = _as_batch(lq)
    dev = model_device(model)
    t = _tile_for(tile, *x.shape[-2:])
    step = 1 if t else (batch or len(x))         # tiled images go one at a time: memory is one tile's
    run = lambda v: forward_tta(model, v, tta, amp)
    was_training = model.training
    model.eval()
    outs = []
    try:
        with torch.inference_mode():
            for chunk in x.split(step):
                chunk = chunk.to(dev, torch.float32)
                y = tiled(run, chunk, t, tile_overlap) if t else run(chunk)
                outs.append(y.clamp_(0, 1).to(x.device))
    finally:
        model.train(was_training)
    return back(torch.cat(outs))   # outside inference mode: a normal tensor the caller may modify


# %% [markdown]
# The generator shipped with blindsr on a 128×128 copy of a face (left, nearest-neighbour so its pixels show),
# restored to 512×512 (right) in about a second on a CPU:

# %%
#| exec_doc
model = load_generator(default_weights(), device='cpu')                                    # the shipped MSRResNet
lq_face = np.asarray(Image.fromarray(astronaut_face()).resize((128, 128), Image.BICUBIC))   # (128,128,3) uint8
sr_face = restore(model, lq_face)                                                           # (512,512,3) uint8
print(lq_face.shape, '->', sr_face.shape, sr_face.dtype)
Image.fromarray(np.concatenate([np.asarray(Image.fromarray(lq_face).resize((512, 512), Image.NEAREST)), sr_face], 1))

# %% [markdown]
# Whatever comes in goes out: a float tensor in [0, 1] gives a float tensor, uint8 arrays give uint8 arrays, a PIL
# image a PIL image; a float array or a uint8 tensor is refused with the fix:

# %%
#| hide
sr = restore(net, torch.rand(3, 3, 10, 14))
test_eq(sr.shape, (3, 3, 40, 56)); test_eq(sr.requires_grad, False)
sr.mul_(1.0)                                                              # a normal tensor, not an inference tensor
assert 0 <= sr.min() and sr.max() <= 1
u8 = rng.integers(0, 256, (10, 14, 3), dtype=np.uint8)
out = restore(net, u8)
test_eq((out.shape, out.dtype), ((40, 56, 3), np.uint8))
test_eq(out, tensor_to_img(restore(net, img_to_tensor(u8)))[0])
test_eq(restore(net, np.stack([u8, u8])).shape, (2, 40, 56, 3))
pil = restore(net, Image.fromarray(u8))
test_eq((type(pil), pil.size), (Image.Image, (56, 40)))
test_eq(np.asarray(pil), out)
test_eq(restore(net, img_to_tensor(u8)[0]).shape, (3, 40, 56))
test_fail(lambda: restore(net, u8.astype(np.float32)), contains='uint8 (h,w,3)')
test_fail(lambda: restore(net, torch.zeros(1, 3, 8, 8, dtype=torch.uint8)), contains='divide a uint8 tensor by 255')

# %% [markdown]
# Batching, tiling and TTA compose: the `flip` output of `restore` is the mean of the two passes, and a large
# input tiled automatically matches the untiled pass (here with a lowered threshold to keep the test small):

# %%
x = torch.rand(5, 3, 24, 30)
test_close(restore(net, x, batch=2), restore(net, x), eps=1e-6)
with torch.no_grad(): want = ((net(x) + net(x.flip(-1)).flip(-1)) / 2).clamp(0, 1)
test_eq(restore(net, x, tta='flip'), want)
test_close(restore(net, x, tta='x8', tile=16, tile_overlap=8), restore(net, x, tta='x8', tile=None), eps=1e-5)
test_eq(_tile_for('auto', 512, 512), AUTO_TILE); test_eq(_tile_for('auto', 128, 128), None)   # 128² test LQ: one pass
test_eq(_tile_for(16, 24, 30), 16); test_eq(_tile_for(64, 24, 30), None); test_eq(_tile_for(0, 999, 999), None)
big = torch.rand(1, 3, 300, 260)                                             # a real-world-sized LQ: auto-tiled 2 x 2
test_close(restore(net, big), restore(net, big, tile=None), eps=1e-5)
test_fail(lambda: restore(net, x, tile=-3), contains="tile must be 'auto'")

# %% [markdown]
# With autocast the output stays close to float32 (bf16 here, on the CPU; fp16 or bf16 on a GPU):

# %%
#| hide
test_close(restore(net, x, amp='bf16'), restore(net, x), eps=0.05)
test_fail(lambda: restore(net, x, amp='fp8'), contains="amp must be")


# %% [markdown]
# ## Restoring files: `blindsr_restore`
#
# `restore_files` restores a list of image files into a folder: the same stems, as PNG, 4× the size. Sizes are
# read from the file headers first (so an unreadable file stops the run before any work, naming the file), images
# of equal size are batched, reading and writing run in threads beside the network, and a progress bar counts
# images.

# %%
#| export
def input_files(src: PathLike) -> list[Path]:
    "An image file, or the images of a folder (sorted); missing paths, empty folders and unread image types raise, naming them."
    src = Path(src)
    if src.is_dir(): return list_images(src)
    if not src.exists(): raise FileNotFoundError(f'input not found: {src}')
    if src.suffix.lower() not in IMAGE_EXTS:
        raise ValueError(f'{src} is not an image file ({", ".join(IMAGE_EXTS)}) or a folder'
                         + ('; convert it to PNG first' if src.suffix.lower() in OTHER_IMAGE_EXTS else ''))
    return [src]


def restore_files(model: nn.Module,  # generator on its device (see load_generator)
                  files: Sequence[PathLike],  # LQ images (any of IMAGE_EXTS, any mode: read as RGB)
                  out_dir: PathLike,  # output folder (created); each result is out_dir/<stem>.png
                  tta: str = 'off',
                  tile: int | str | None = 'auto',
                  tile_overlap: int = 32,
                  batch: int = 8,  # images of equal size per forward pass
                  amp: str | None = None,
                  compress_level: int = 1,  # PNG zlib level (1: fast; 9: ~10 % smaller, slower)
                  workers: int = 4,  # threads reading and writing images
                  progress: bool = True,
                  out_names: Sequence[str] | None = None,  # output file names instead of <stem>.png
                 ) -> list[Path]:  # the written PNGs, in the order of `files`
    "Restore image files into `out_dir` (same stems, PNG), batching images of equal size."
    if batch < 1 or workers < 1: raise ValueError(f'batch and workers must be >= 1, got batch={batch}, workers={workers}')
    files = [Path(f) for f in files]
    out_dir = Path(out_dir)
    outs = [out_dir / n for n in out_names] if out_names is not None else [out_dir / f'{f.stem}.png' for f in files]
    seen = {}
    for f, o in zip(files, outs):
        if o.name in seen: raise ValueError(f'{seen[o.name]} and {f} would both be written to {o}; rename one')
        seen[o.name] = f
        if o.resolve() == f.resolve(): raise ValueError(f'{o} would overwrite its input; write to another folder')
    sizes = [read_image_size(f) for f in files]        # headers (and PNG structure) of every file before any work
    by_size: dict[tuple, list[int]] = {}
    for i, s in enumerate(sizes): by_size.setdefault(s, []).append(i)
    jobs = [ix[j:j + batch] for ix in by_size.values() for j in range(0, len(ix), batch)]
    dev = model_device(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    from tqdm.auto import tqdm
    bar = tqdm(total=len(files), desc=f'restore (tta {tta})', unit='img', disable=not progress, dynamic_ncols=True)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        read = lambda job: [pool.submit(read_image, files[i]) for i in job]
        pending, writes = read(jobs[0]) if jobs else [], []
        for n, job in enumerate(jobs):
            imgs = [r.result() for r in pending]                 # a corrupt file raises here, naming itself
            if n + 1 < len(jobs): pending = read(jobs[n + 1])   # read ahead while the network runs
            sr = tensor_to_img(restore(model, img_to_tensor(imgs, dev), tta, tile, tile_overlap, amp=amp))
            writes += [pool.submit(write_png, outs[i], im, compress_level) for i, im in zip(job, sr)]
            while len(writes) > 2 * batch: writes.pop(0).result()
            bar.update(len(job))
        for w in writes: w.result()
    bar.close()
    return outs


# %%
rand_imgs(tmp/'lq', 5, 16, 16); rand_imgs(tmp/'lq', 2, 12, 20, start=5)   # two sizes: batched separately
Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(tmp/'lq'/'gray.jpg')
outs = restore_files(net, list_images(tmp/'lq'), tmp/'sr', batch=3, progress=False)
test_eq([p.name for p in sorted((tmp/'sr').iterdir())], [f'{i:05d}.png' for i in range(7)] + ['gray.png'])
test_eq([read_image(p).shape for p in outs], [(64, 64, 3)] * 5 + [(48, 80, 3)] * 2 + [(64, 64, 3)])
test_eq(read_image(outs[6]), restore(net, read_image(tmp/'lq'/'00006.png')))   # same as one image at a time

# %% [markdown]
# Missing and corrupt inputs stop the run and name the file; two inputs with one stem are refused:

# %%
#| hide
bad = tmp/'bad'; rand_imgs(bad, 2)
(bad/'00001.png').write_bytes(b'\x89PNG\r\n\x1a\n garbage')
test_fail(lambda: restore_files(net, list_images(bad), tmp/'sr_bad', progress=False), contains='00001.png')
test_fail(lambda: restore_files(net, [bad/'00000.png', tmp/'lq'/'00042.png'], tmp/'sr_bad', progress=False), contains='00042.png')
trunc = tmp/'trunc'; rand_imgs(trunc, 1, 64, 64)
(trunc/'00000.png').write_bytes((trunc/'00000.png').read_bytes()[:200])      # header intact, pixels cut
test_fail(lambda: restore_files(net, list_images(trunc), tmp/'sr_bad', progress=False), contains='00000.png')
Image.fromarray(u8).save(tmp/'lq'/'00000.jpg')
test_fail(lambda: restore_files(net, list_images(tmp/'lq'), tmp/'sr', progress=False), contains='would both be written')
(tmp/'lq'/'00000.jpg').unlink()
test_fail(lambda: input_files(tmp/'none'), contains='none')




# %% [markdown]
# ### Flags every restoring command shares
#
# The commands that load a generator (`blindsr_restore` and `blindsr_val` here, `blindsr_submit`, `blindsr_bench
# tta`) take the same flags for it: `add_generator_args` adds the weights, architecture and device flags and
# `generator_from_args` loads what they name; `add_restore_args` adds the restoration flags and `restore_kwargs`
# turns them into the keyword arguments of `restore_files`. Every number is range-checked where it is parsed
# (`--batch 0` stops at the flag), and `--arch-kwargs` must be a JSON object. `CLI_ERRORS` are the errors such a
# command reports in one line, naming the file or flag, with exit status 2 instead of a traceback.

# %%
#| export
def _tile_arg(s: str) -> int | str:
    if s == 'auto': return s
    if s.isdigit(): return int(s)
    raise argparse.ArgumentTypeError(f"--tile takes a number of LQ pixels, 0 or 'auto', got {s!r}")


def add_generator_args(ap: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    "Add the flags of a command that loads a generator: --ckpt/--weights, --arch, --arch-kwargs, --no-ema, --device."
    g = ap.add_argument_group('generator')
    g.add_argument('--ckpt', '--weights', dest='weights', default=None, metavar='PATH',
                   help='generator weights: a blindsr best.pt / final.pt, a training checkpoint last.ckpt, or a BasicSR '
                        'net_g_*.pth (default: the pretrained weights shipped with blindsr, when present)')
    g.add_argument('--arch', default=None, choices=list(GENERATORS), metavar='NAME',
                   help=f'architecture of a file that does not name one (BasicSR .pth): {", ".join(GENERATORS)} '
                        '(default: msrresnet; blindsr files name their own)')
    g.add_argument('--arch-kwargs', default=None, type=json_object, metavar='JSON',
                   help='constructor arguments of --arch as a JSON object, e.g. \'{"num_feat": 64, "num_block": 16}\' '
                        '(default: the architecture\'s defaults; blindsr files carry their own)')
    g.add_argument('--no-ema', action='store_true',
                   help="load a training checkpoint's plain weights instead of its EMA weights (default: EMA)")
    g.add_argument('--device', default=None, metavar='DEVICE',
                   help='where the network runs: cpu, cuda, cuda:N (GPU number N) or mps (default: the best usable, '
                        'a GPU this torch can run, else the CPU)')
    return g


def add_restore_args(ap: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    "Add the flags of a command that restores images: --tta, --tile, --tile-overlap, --batch, --amp, --workers."
    g = ap.add_argument_group('restoration')
    g.add_argument('--tta', default='off', choices=list(TTA_MODES),
                   help='test-time augmentation: off (one pass), flip (the face and its mirror image, averaged: 2 '
                        'passes) or x8 (turns and flips: 8 passes) (default: off)')
    g.add_argument('--tile', default='auto', type=_tile_arg, metavar='PX',
                   help=f'restore inputs larger than PX LQ pixels a side in tiles of at most PX, to bound memory; 0 for '
                        f"never; 'auto': tiles of {AUTO_TILE} for inputs over {AUTO_TILE_AREA} LQ pixels (default: auto)")
    g.add_argument('--tile-overlap', type=non_negative_int, default=32, metavar='PX',
                   help='LQ pixels of context around each tile, cropped away after the network (default: 32)')
    g.add_argument('--batch', type=positive_int, default=8, metavar='N',
                   help='images of equal size per forward pass, a whole number >= 1 (default: 8)')
    g.add_argument('--amp', default=None, choices=['off', 'bf16', 'fp16'],
                   help='mixed precision: off (float32, exact), bf16 or fp16 (autocast; faster on a GPU) (default: off)')
    g.add_argument('--workers', type=worker_count, default=4, metavar='N',
                   help='threads reading and writing images, from 1 to 4 x the CPU cores (default: 4)')
    return g


def generator_from_args(args: argparse.Namespace,  # parsed flags of add_generator_args
                       ) -> nn.Module:  # float32 generator in eval mode, on the usable device the flags ask for
    "Load the generator that the flags of `add_generator_args` name (default: the shipped weights)."
    path = Path(args.weights) if args.weights else default_weights()
    dev = usable_device(args.device)                  # a device that is not there: ValueError naming --device
    return load_generator(path, args.arch, args.arch_kwargs, dev, use_ema=not args.no_ema)


def restore_kwargs(args: argparse.Namespace,  # parsed flags of add_restore_args
                  ) -> dict:  # tta, tile, tile_overlap, batch, amp, workers: keyword arguments of restore_files
    "The `restore_files` keyword arguments that the flags of `add_restore_args` set."
    return dict(tta=args.tta, tile=args.tile, tile_overlap=args.tile_overlap, batch=args.batch, amp=args.amp, workers=args.workers)


CLI_ERRORS = (*USER_ERRORS, CheckpointError, UnsupportedGPUError)   # what a command reports in one line (exit 2)

# %%
#| hide
ap = argparse.ArgumentParser()
add_generator_args(ap); add_restore_args(ap)
args = ap.parse_args(['--ckpt', str(tmp/'w16.pt'), '--device', 'cpu', '--tta', 'flip', '--tile', '0'])
test_eq(restore_kwargs(args), dict(tta='flip', tile=0, tile_overlap=32, batch=8, amp=None, workers=4))
g = generator_from_args(args)
test_eq((model_device(g).type, g.training, next(g.parameters()).dtype), ('cpu', False, torch.float32))
test_eq(restore_kwargs(ap.parse_args([]))['tile'], 'auto')
test_fail(lambda: _tile_arg('big'), contains="--tile takes a number of LQ pixels, 0 or 'auto'")
with redirect_stderr(io.StringIO()) as err:
    for bad in (['--batch', '0'], ['--workers', '-3'], ['--tile-overlap', '-10'], ['--arch-kwargs', '[1, 2]'], ['--arch', 'msrresnett']):
        try: ap.parse_args(bad); raise AssertionError(f'accepted {bad}')
        except SystemExit as e: test_eq(e.code, 2)
print(err.getvalue())
for flag in ('--batch', '--workers', '--tile-overlap', '--arch-kwargs', '--arch'): assert f'argument {flag}' in err.getvalue(), flag


# %% [markdown]
# ### `blindsr_restore`
#
# An image or a folder in, PNGs of the same stems out; one image may go to a named `.png` file. Everything is
# checked before the network runs: the inputs (missing, empty, unread types, corrupt headers), and the output by
# the rule every command follows — OUT may not be, contain or lie inside the input, and a folder holding files
# `blindsr_restore` did not write (say, the ground truth) is refused unless `--overwrite` (which then replaces only
# the names it writes). The command keeps a list of what it wrote in `OUT/.blindsr-restore.json`, so a rerun into
# the same folder needs no `--overwrite`. An output file name must end in `.png`: `blindsr_restore a.png
# result.jpg` is refused rather than writing PNG bytes under a JPEG name, or a folder called `result.jpg`.

# %%
#| export
def restore_outputs(src: PathLike,  # the input image or folder
                    out: PathLike,  # an output folder, or (for one input image) a .png file name
                    overwrite: bool = False,  # the user passed --overwrite
                    command: str = 'restore',  # whose manifest marks files as the command's own
                   ) -> tuple[list[Path], Path, list[str] | None]:  # input files, output folder, output names (or None: <stem>.png)
    "The inputs and the checked outputs of a restoring command, before any work: refused when they break the output rules."
    files = input_files(src)
    out = Path(out)
    if Path(src).is_file() and not out.is_dir() and out.suffix.lower() in (*IMAGE_EXTS, *OTHER_IMAGE_EXTS):
        if out.suffix.lower() != '.png':
            raise UserError(f'OUT {out}: blindsr writes restored images as PNG; name the output file .png '
                            f'(e.g. {out.with_suffix(".png")}), or give a folder')
        mine = set(read_manifest(out.parent, command)['files'])
        check_output_file(out, [src], 'OUT', own=lambda p: p.name in mine, overwrite=overwrite)
        return files, out.parent, [out.name]
    check_output_dir(out, [src], command=command, overwrite=overwrite, flag='OUT')   # also: OUT can be created
    return files, out, None


def restore_parser() -> argparse.ArgumentParser:
    "The flags of blindsr_restore."
    ap = argparse.ArgumentParser(
        prog='blindsr_restore', formatter_class=HelpFormatter,
        description='Restore LQ face images 4x with a trained generator: one image, or every image of a folder, written\n'
                    'as PNG with the same stems (a 128x128 LQ becomes a 512x512 PNG).',
        epilog=examples(('restore a folder with the shipped generator', 'blindsr_restore data/test/LQ results/test'),
                        ('one image to a named PNG, with your weights and flip TTA, on the first GPU',
                         'blindsr_restore face.png face_sr.png --ckpt runs/blindsr/best.pt --tta flip --device cuda'),
                        note='Exit status: 0 restored; 2 a mistake (named on one line); 130 interrupted.'))
    g = ap.add_argument_group('input and output')
    g.add_argument('input', metavar='INPUT', help='an LQ image (.png .jpg .jpeg .webp .bmp), or a folder of them')
    g.add_argument('out', metavar='OUT', help='output folder (created; <stem>.png for each input); or, for one input '
                                               'image, a .png file name')
    g.add_argument('--overwrite', action='store_true',
                   help='write into an OUT folder that holds files blindsr_restore did not write, replacing those with '
                        'the names it writes (default: refuse such a folder)')
    g.add_argument('--no-progress', action='store_true', help='no progress bar (default: a bar on stderr)')
    add_generator_args(ap)
    add_restore_args(ap)
    return ap


def restore_cli(argv: list[str] | None = None) -> int:
    "blindsr_restore INPUT OUT: restore an LQ image or a folder of them into OUT (same stems, PNG, 4x)."
    a = restore_parser().parse_args(argv)
    def body():
        files, out, names = restore_outputs(a.input, a.out, a.overwrite)
        model = generator_from_args(a)
        out.mkdir(parents=True, exist_ok=True)
        write_manifest(out, 'restore', names or [f'{f.stem}.png' for f in files])   # before writing: a rerun may resume
        t0 = time.perf_counter()
        outs = restore_files(model, files, out, **restore_kwargs(a), progress=not a.no_progress, out_names=names)
        print(f'{len(outs)} image(s) restored into {out} (tta {a.tta}, {model_device(model)}, '
              f'{time.perf_counter() - t0:.1f} s)')
    return run_cli('blindsr_restore', body, CLI_ERRORS)


# %%
with redirect_stderr(io.StringIO()):
    test_eq(restore_cli([str(tmp/'lq'), str(tmp/'cli'), '--ckpt', str(tmp/'w16.pt'), '--device', 'cpu', '--no-progress',
                         '--tta', 'flip', '--tile', '8']), 0)
    test_eq(len(list((tmp/'cli').glob('*.png'))), 8)
    test_eq(restore_cli([str(tmp/'lq'), str(tmp/'cli'), '--ckpt', str(tmp/'w16.pt'), '--no-progress']), 0)   # a rerun: its own files
    test_eq(restore_cli([str(tmp/'lq'/'00005.png'), str(tmp/'one'/'x.png'), '--ckpt', str(tmp/'w16.pt'), '--no-progress']), 0)
test_eq(read_image(tmp/'one'/'x.png').shape, (48, 80, 3))

# %% [markdown]
# Each mistake stops before the network runs, on one line; the ground truth, a folder of someone's files, and a
# JPEG name are never written to:

# %%
#| hide
rand_imgs(tmp/'gt_folder', 2, 64, 64)
gt_before = {p.name: p.read_bytes() for p in (tmp/'gt_folder').iterdir()}
with redirect_stderr(io.StringIO()) as err:
    for args in ([str(bad), str(tmp/'cli2')], [str(tmp/'lq'), str(tmp/'cli2'), '--ckpt', str(tmp/'nope.pt')],
                 [str(tmp/'lq'), str(tmp/'gt_folder')], [str(tmp/'lq'), str(tmp/'lq'/'sr')],
                 [str(tmp/'lq'/'00005.png'), str(tmp/'result.jpg')], [str(tmp/'lq'), str(tmp/'cli'), '--device', 'gpu']):
        test_eq(restore_cli([*args, '--ckpt', str(tmp/'w16.pt'), '--no-progress'] if '--ckpt' not in args else args), 2)
print(err.getvalue())
test_eq(len(err.getvalue().strip().splitlines()), 6)
test_eq({p.name: p.read_bytes() for p in (tmp/'gt_folder').iterdir()}, gt_before)
assert not (tmp/'result.jpg').exists() and not (tmp/'lq'/'sr').exists()


# %% [markdown]
# ## A validation run: `blindsr_val`
#
# Before a submission, the same restoration on the val set, scored by the organisers' metric in one go:
# `blindsr_val val/LQ val/GT results/val --ckpt best.pt --tta flip` restores into `results/val`, prints the mean
# PSNR/SSIM next to bicubic's, and writes the per-image CSV beside the folder (`results/val_metrics.csv`).
#
# The ground truth is checked before anything is restored, because a problem there would otherwise surface only
# after the whole set had been restored: every LQ has its GT and every GT its LQ (same stems), every GT is 4× its
# LQ — a GT of the wrong size is blamed on the GT, naming both files — and every GT file is readable.

# %%
#| export
def check_val_pairs(lq_files: Sequence[Path],  # the val LQ images
                    val_gt: PathLike,  # folder (or zip) of the GT images
                    workers: int = 4,  # threads reading headers
                    with_ssim: bool = False,  # the GT will be scored with SSIM too: refuse GT images too small for it
                   ) -> None:
    "Refuse a val set whose GT does not pair with the LQ: missing or extra stems, GT not 4x its LQ, unreadable GT files."
    gt = image_set(val_gt)
    lq = {f.stem: f for f in lq_files}
    short = lambda xs: ', '.join(xs[:10]) + (f' … ({len(xs)} in all)' if len(xs) > 10 else '')
    no_gt, no_lq = [s for s in lq if s not in gt], [s for s in gt if s not in lq]
    if no_gt or no_lq:
        raise UserError(f'VAL_GT {val_gt} does not pair with VAL_LQ by file stem: '
                        + '; '.join(([f'{len(no_gt)} LQ image(s) without a GT: {short(no_gt)}'] if no_gt else [])
                                    + ([f'{len(no_lq)} GT image(s) without an LQ: {short(no_lq)}'] if no_lq else [])))
    gt_size = lambda ref: read_image_size(ref.path) if ref.member is None else ref.size()
    with ThreadPoolExecutor(max(1, workers)) as ex:
        lq_sizes = dict(zip(lq, ex.map(read_image_size, lq.values())))
        gt_sizes = dict(zip(lq, ex.map(lambda s: gt_size(gt[s]), lq)))
    wrong = [s for s in lq if gt_sizes[s] != (4 * lq_sizes[s][0], 4 * lq_sizes[s][1])]
    if wrong:
        s = wrong[0]
        (w, h), (gw, gh) = lq_sizes[s], gt_sizes[s]
        swapped = len(wrong) == len(lq) and all(gt_sizes[t][0] < lq_sizes[t][0] for t in lq)
        raise UserError(f'VAL_GT {gt[s].label} is {gw}x{gh}, but a GT must be 4x its LQ {lq[s]} ({w}x{h}), so '
                        f'{4 * w}x{4 * h}' + (f'; {len(wrong)} GT image(s) have the wrong size' if len(wrong) > 1 else '')
                        + ('; VAL_LQ and VAL_GT look swapped' if swapped else '; check VAL_GT'))
    if with_ssim: check_ssim_sizes({gt[s].label: gt_sizes[s] for s in lq})


def validate(model: nn.Module,  # generator on its device
             val_lq: PathLike,  # folder of LQ images
             val_gt: PathLike,  # folder of GT images, same stems
             out_dir: PathLike,  # where the restored PNGs go
             with_ssim: bool = True,
             progress: bool = True,
             **kwargs,  # tta, tile, tile_overlap, batch, amp, workers: see restore_files
            ) -> EvalResult:  # scores, as blindsr.metrics.evaluate gives them
    "Check the val pairs, restore the val LQ folder and score it against its GT with `blindsr.metrics.evaluate`."
    files = list_images(val_lq)
    check_val_pairs(files, val_gt, kwargs.get('workers', 4), with_ssim)
    restore_files(model, files, out_dir, progress=progress, **kwargs)
    return evaluate(out_dir, val_gt, with_ssim=with_ssim, progress=progress)


def val_parser() -> argparse.ArgumentParser:
    "The flags of blindsr_val."
    ap = argparse.ArgumentParser(
        prog='blindsr_val', formatter_class=HelpFormatter,
        description="Restore the val LQ into OUT and score it against the val GT with the organisers' PSNR (and SSIM),\n"
                    'beside the bicubic baseline; write the per-image scores to a CSV. The GT is checked before anything\n'
                    'is restored.',
        epilog=examples(('score your best weights on the val set, with flip TTA',
                         'blindsr_val data/val/LQ data/val/GT results/val --ckpt runs/blindsr/best.pt --tta flip'),
                        ('PSNR only, scores to a named CSV', 'blindsr_val data/val/LQ data/val/GT results/val --no-ssim --csv val.csv'),
                        note='Exit status: 0 scored; 2 a mistake (named on one line); 130 interrupted.'))
    g = ap.add_argument_group('input and output')
    g.add_argument('val_lq', metavar='VAL_LQ', help='folder of val LQ images (.png .jpg .jpeg .webp .bmp)')
    g.add_argument('val_gt', metavar='VAL_GT', help='folder (or zip) of their GT, same stems, each 4x its LQ')
    g.add_argument('out', metavar='OUT', help='folder for the restored PNGs (created); not VAL_LQ or VAL_GT, nor inside them')
    g.add_argument('--csv', default=None, metavar='FILE',
                   help='where the per-image scores go (columns stem, psnr in dB, ssim) (default: OUT_metrics.csv beside OUT)')
    g.add_argument('--overwrite', action='store_true',
                   help='write into an OUT folder that holds files blindsr_val did not write, replacing those with the '
                        'names it writes (default: refuse such a folder)')
    g.add_argument('--no-ssim', action='store_true', help='PSNR only, about 3x faster scoring (default: PSNR and SSIM)')
    g.add_argument('--no-progress', action='store_true', help='no progress bars (default: bars on stderr)')
    add_generator_args(ap)
    add_restore_args(ap)
    return ap


def val_cli(argv: list[str] | None = None) -> int:
    "blindsr_val VAL_LQ VAL_GT OUT: restore the val LQ into OUT and score it against VAL_GT (PSNR, SSIM, per-image CSV)."
    a = val_parser().parse_args(argv)
    def body():
        inputs = [a.val_lq, a.val_gt]
        out = check_output_dir(a.out, inputs, command='val', overwrite=a.overwrite, flag='OUT')   # also: OUT can be created
        csv_path = scores_csv_path(a.csv, out.parent / f'{out.name}_metrics.csv', inputs)
        files = list_images(a.val_lq)
        csv_in_out = []                               # a CSV directly in OUT is a file val writes there: a rerun replaces it
        if csv_path is not None and out in csv_path.parents:
            if csv_path.parent != out or csv_path.suffix.lower() in (*IMAGE_EXTS, *OTHER_IMAGE_EXTS):
                raise UserError(f'--csv {a.csv} lies inside OUT {a.out} where it would mix with the restored images; '
                                'name it .csv directly in OUT, or put it outside')
            csv_in_out = [csv_path.name]
        stems = {f.stem for f in files}
        strays = sorted(p.name for p in out.glob('*') if p.suffix.lower() in IMAGE_EXTS and p.stem not in stems) if out.is_dir() else []
        if strays: raise UserError(f'OUT {a.out} holds images that are not restorations of VAL_LQ ({", ".join(strays[:5])}): '
                                   'they would be scored as extra predictions; choose an empty or new folder')
        check_val_pairs(files, a.val_gt, a.workers, with_ssim=not a.no_ssim)
        model = generator_from_args(a)
        out.mkdir(parents=True, exist_ok=True)
        write_manifest(out, 'val', [f'{f.stem}.png' for f in files] + csv_in_out)
        restore_files(model, files, out, progress=not a.no_progress, **restore_kwargs(a))
        res = evaluate(out, a.val_gt, with_ssim=not a.no_ssim, progress=not a.no_progress)
        bic = bicubic_baseline(a.val_lq, a.val_gt, workers=a.workers)
        print(res.summary())
        print(f'bicubic: PSNR {bic:.4f} dB  (model {res.psnr - bic:+.4f} dB; tta {a.tta})')
        if csv_path is not None: print(f'per-image scores: {res.to_csv(csv_path)}')
    return run_cli('blindsr_val', body, CLI_ERRORS)


# %%
rand_imgs(tmp/'val_lq', 4)
restore_files(net, list_images(tmp/'val_lq'), tmp/'val_gt', tta='flip', progress=False)   # "ground truth" = the flip outputs
test_eq(validate(net, tmp/'val_lq', tmp/'val_gt', tmp/'val_flip', with_ssim=False, progress=False, tta='flip').psnr, math.inf)
test_eq(val_cli([str(tmp/'val_lq'), str(tmp/'val_gt'), str(tmp/'val_sr'), '--ckpt', str(tmp/'w16.pt'), '--no-progress',
                 '--tta', 'off', '--no-ssim']), 0)
test_eq(sorted(p.name for p in (tmp/'val_sr').iterdir()), ['.blindsr-val.json'] + [f'{i:05d}.png' for i in range(4)])
assert (tmp/'val_sr_metrics.csv').exists()

# %% [markdown]
# The GT is checked before any restoration: a GT of the wrong size is blamed on the GT, swapped folders are named
# as such, and the val GT can never be the output:

# %%
#| hide
shutil.copytree(tmp/'val_gt', tmp/'val_gt_odd'); write_png(tmp/'val_gt_odd'/'00002.png', np.zeros((60, 64, 3), np.uint8))
test_fail(lambda: check_val_pairs(list_images(tmp/'val_lq'), tmp/'val_gt_odd'), contains='val_gt_odd/00002.png is 64x60, but a GT must be 4x its LQ')
test_fail(lambda: check_val_pairs(list_images(tmp/'val_gt'), tmp/'val_lq'), contains='look swapped')
write_png(tmp/'tiny_lq'/'00000.png', np.zeros((1, 1, 3), np.uint8)); write_png(tmp/'tiny_gt'/'00000.png', np.zeros((4, 4, 3), np.uint8))
test_fail(lambda: check_val_pairs(list_images(tmp/'tiny_lq'), tmp/'tiny_gt', with_ssim=True), contains='is 4x4: SSIM needs images of at least 7x7')
check_val_pairs(list_images(tmp/'tiny_lq'), tmp/'tiny_gt')                                    # PSNR alone: fine
test_fail(lambda: check_val_pairs(list_images(tmp/'lq'), tmp/'val_gt'), contains='4 LQ image(s) without a GT: 00004, 00005, 00006, gray')
with redirect_stderr(io.StringIO()) as err:
    test_eq(val_cli([str(tmp/'val_lq'), str(tmp/'val_gt_odd'), str(tmp/'val_sr3'), '--ckpt', str(tmp/'w16.pt'), '--no-progress']), 2)
    test_eq(val_cli([str(tmp/'val_lq'), str(tmp/'val_gt'), str(tmp/'val_gt'), '--ckpt', str(tmp/'w16.pt'), '--no-progress']), 2)
print(err.getvalue())
assert not (tmp/'val_sr3').exists() and 'is the input' in err.getvalue()
test_eq(val_cli([str(tmp/'val_lq'), str(tmp/'val_gt'), str(tmp/'val_csv'), '--ckpt', str(tmp/'w16.pt'), '--no-progress',
                 '--no-ssim', '--csv', str(tmp/'val_csv'/'s.csv')]), 0)
test_eq(val_cli([str(tmp/'val_lq'), str(tmp/'val_gt'), str(tmp/'val_csv'), '--ckpt', str(tmp/'w16.pt'), '--no-progress',
                 '--no-ssim', '--csv', str(tmp/'val_csv'/'s.csv')]), 0)        # a CSV it wrote inside OUT is its own
test_eq(sorted(p.name for p in (tmp/'val_csv').iterdir()), ['.blindsr-val.json', *[f'{i:05d}.png' for i in range(4)], 's.csv'])
with redirect_stderr(io.StringIO()) as err:
    test_eq(val_cli([str(tmp/'val_lq'), str(tmp/'val_gt'), str(tmp/'val_csv2'), '--ckpt', str(tmp/'w16.pt'), '--no-progress',
                     '--no-ssim', '--csv', str(tmp/'val_csv2'/'scores.png')]), 2)     # it would be scored as a prediction
assert 'mix with the restored images' in err.getvalue()

# %% [markdown]
# # Pictures and the demo
# > `comparison_grid` puts an LQ face, its bicubic upscale, restorations and the ground truth side by side with their PSNRs; `blindsr_demo` degrades a public-domain face, restores it with the generator shipped in the package and draws that picture.

# %%
#| default_exp demo

# %%
#| export
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from PIL import Image

from blindsr.cli import HelpFormatter, UserError, check_output_file, examples, is_matplotlib_png, non_negative_int, run_cli
from blindsr.core import IMAGE_EXTS, PathLike, read_image_size, tensor_to_img
from blindsr.device import model_device
from blindsr.metrics import bicubic_psnr, psnr
from blindsr.samples import astronaut_face, face_from_file
from blindsr.checkpoint import TrainingRecord, default_weights, load_generator, weights_info
from blindsr.degradation import PRESETS, degrade_image, get_preset, sample
from blindsr.inference import CLI_ERRORS, TTA_MODES, restore

# %%
#| hide
import io
import math
import tempfile
from contextlib import redirect_stderr
from fastcore.test import test_eq, test_fail
from blindsr.checkpoint import export_weights
from blindsr.core import read_image, write_png
from blindsr.models import build_generator

tmp = Path(tempfile.mkdtemp())
rng = np.random.default_rng(0)
torch.manual_seed(0)
net = build_generator('msrresnet', num_feat=8, num_block=1).eval().requires_grad_(False)   # tiny, random weights
export_weights(tmp/'w16.pt', net, 'msrresnet', {'num_feat': 8, 'num_block': 1}, {'val_psnr': 20.0}, half=True)   # a weights file to load
write_png(tmp/'face16.png', rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))                                  # a "face" for --image


# %% [markdown]
# ## Side by side -
#
# `comparison_grid` puts an LQ face (nearest-neighbour upscaled, so its pixels show), its bicubic upscale, one or
# more restorations and the ground truth side by side, with the organisers' PSNR in each caption; `zoom` adds a
# row of close-ups (eyes and mouth are where models differ). It returns a matplotlib figure (shown inline in a
# notebook) and writes a PNG when given a path. It draws on a `matplotlib.figure.Figure`, not through pyplot, so
# it needs no display and leaves no figures open.

# %%
#| export
def _u8(img) -> np.ndarray:
    "A PIL image, (h,w,3) uint8 array or (3,h,w)/(1,3,h,w) float tensor in [0,1] -> (h,w,3) uint8."
    if isinstance(img, torch.Tensor): return tensor_to_img(img[0] if img.ndim == 4 else img)
    if isinstance(img, Image.Image): return np.asarray(img.convert('RGB'))
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'an image must be (h,w,3) uint8, a PIL image or a float tensor, got {img.dtype} {img.shape}')
    return img


def _resize(img: np.ndarray, hw: tuple[int, int], how: str) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((hw[1], hw[0]), {'nearest': Image.NEAREST, 'bicubic': Image.BICUBIC}[how]))


def comparison_grid(lq,  # LQ image (h,w,3) uint8 / PIL / tensor, or a list of them (one row each)
                    sr,  # restored image(s) (4h,4w,3); or a dict name -> image (several restorations)
                    gt=None,  # ground truth image(s), optional
                    bicubic: bool = True,  # include the bicubic upscale of the LQ
                    zoom: tuple[float, float, float, float] | None = None,  # (top, left, height, width) as fractions: a close-up row
                    title: str | None = None,  # figure title
                    path: PathLike | None = None,  # also write the figure as PNG here
                    panel: float = 3.2,  # inches per panel
                    dpi: int = 110,
                   ):  # matplotlib.figure.Figure
    "Side-by-side panels: LQ (nearest) | bicubic | restored … | GT, with PSNR against the GT in the captions."
    from matplotlib.figure import Figure
    rows_lq = list(lq) if isinstance(lq, (list, tuple)) else [lq]
    rows_sr = list(sr) if isinstance(sr, (list, tuple)) else [sr]
    rows_gt = (list(gt) if isinstance(gt, (list, tuple)) else [gt]) if gt is not None else [None] * len(rows_lq)
    if not len(rows_lq) == len(rows_sr) == len(rows_gt):
        raise ValueError(f'comparison_grid needs as many sr and gt as lq, got {len(rows_lq)}, {len(rows_sr)}, {len(rows_gt)}')
    rows = []
    for l, s, g in zip(rows_lq, rows_sr, rows_gt):
        sd = {k: _u8(v) for k, v in (s.items() if isinstance(s, Mapping) else [('restored', s)])}
        l = _u8(l)
        hw = next(iter(sd.values())).shape[:2]
        g = _u8(g) if g is not None else None
        for k, v in [*sd.items(), *([('GT', g)] if g is not None else [])]:
            if v.shape[:2] != hw: raise ValueError(f'comparison_grid: {k} is {v.shape[1]}x{v.shape[0]}, the others {hw[1]}x{hw[0]}')
        panels = [(f'LQ {l.shape[1]}×{l.shape[0]} (nearest)', _resize(l, hw, 'nearest'), None)]
        if bicubic: panels.append(('bicubic', _resize(l, hw, 'bicubic'), True))
        panels += [(k, v, True) for k, v in sd.items()]
        if g is not None: panels.append((f'GT {hw[1]}×{hw[0]}', g, None))
        rows.append([(t + (f'\nPSNR {psnr(im, g):.2f} dB' if score and g is not None else ''), im) for t, im, score in panels])
    ncol = max(len(r) for r in rows)
    per = 2 if zoom else 1
    H0, W0 = rows[0][0][1].shape[:2]
    ratios = ([1.0, (zoom[2] * H0) / (zoom[3] * W0)] if zoom else [1.0]) * len(rows)   # close-ups keep their aspect
    fig = Figure(figsize=(panel * ncol, panel * H0 / W0 * sum(ratios) + 0.5 * len(ratios) + (0.4 if title else 0)), dpi=dpi)
    axes = fig.subplots(per * len(rows), ncol, squeeze=False, gridspec_kw={'height_ratios': ratios})
    for r, row in enumerate(rows):
        for c, (cap, im) in enumerate(row):
            ax = axes[per * r, c]
            ax.imshow(im); ax.set_title(cap, fontsize=9)
            if zoom:
                H, W = im.shape[:2]
                y0, x0, h, w = int(zoom[0] * H), int(zoom[1] * W), max(1, int(zoom[2] * H)), max(1, int(zoom[3] * W))
                axes[per * r + 1, c].imshow(im[y0:y0 + h, x0:x0 + w], interpolation='nearest')
                from matplotlib.patches import Rectangle
                ax.add_patch(Rectangle((x0, y0), w, h, fill=False, ec='yellow', lw=1))
        for ax in axes[per * r:per * r + per].ravel(): ax.axis('off')
    if title: fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    return fig


# %%
lq_img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
sr_img = restore(net, lq_img)
gt_img = np.clip(sr_img.astype(int) + rng.integers(-5, 6, sr_img.shape), 0, 255).astype(np.uint8)
fig = comparison_grid(lq_img, {'off': sr_img, 'flip': restore(net, lq_img, 'flip')}, gt_img, zoom=(0.25, 0.25, 0.5, 0.5),
                      title='a tiny random network', path=tmp/'grid.png')
test_eq(len(fig.axes), 2 * 5)
assert f'PSNR {psnr(sr_img, gt_img):.2f} dB' in fig.axes[2].get_title()
test_eq(read_image(tmp/'grid.png').shape[2], 3)
test_eq(len(comparison_grid([lq_img, lq_img], [sr_img, sr_img], bicubic=False).axes), 4)
test_fail(lambda: comparison_grid(lq_img, sr_img, gt_img[:-1]), contains='GT is 64x63')


# %% [markdown]
# ## The demo: `blindsr_demo` -
#
# What a newcomer runs first, on any machine, with no data and no GPU: a public-domain portrait that scikit-image
# ships (NASA's photo of the astronaut Eileen Collins), cropped to the face and framed roughly as FFHQ frames
# faces, at 512×512; degraded with the course's 2024 pipeline (fixed seed); restored by the generator trained by
# this project and shipped in the package (`blindsr/weights/blindsr_default.pt`, with its training record in
# `blindsr_default.json`); written as `demo.png` beside the PSNRs of bicubic and of the model. One 128→512
# image takes about a second on a CPU. Without shipped weights it stops and says so; `--weights` runs any other
# generator, `--image` any other face.

# %%
#| export
def demo_inputs(out_dir: PathLike = '.',  # where demo.png goes
                weights: PathLike | None = None,  # generator weights (default: the shipped ones)
                image: PathLike | None = None,  # an HQ face image (default: the astronaut)
               ) -> tuple[Path, Path]:  # (the weights file, demo.png's path), checked
    "Check the demo's face, weights and output before any work: the picture never replaces an input or a user's file."
    weights = Path(weights) if weights is not None else default_weights()
    if image is not None:
        image = Path(image)
        if image.is_dir(): raise UserError(f'--image {image} is a folder; give one face image (.png .jpg .jpeg .webp .bmp)')
        if not image.is_file(): raise FileNotFoundError(f'image not found: {image} (--image)')
        if image.suffix.lower() not in IMAGE_EXTS:
            raise UserError(f'--image {image}: blindsr reads {", ".join(IMAGE_EXTS)}; convert the image to PNG first')
        read_image_size(image)                                   # a broken file is named before any work
    out = Path(out_dir)
    if out.exists() and not out.is_dir(): raise UserError(f'--out {out_dir} is a file; give a folder for demo.png (it is created if missing)')
    png = check_output_file(out / 'demo.png', [p for p in (image, weights) if p is not None], '--out', own=is_matplotlib_png)
    return weights, png


def demo(out_dir: PathLike = '.',  # where demo.png goes
         weights: PathLike | None = None,  # generator weights (default: the shipped ones)
         image: PathLike | None = None,  # an HQ face image (default: the astronaut)
         preset: str = 'ai6126_2024',  # degradation preset
         seed: int = 0,  # seed of the degradation draw (>= 0)
         tta: str = 'off',
         device: str | torch.device | None = None,  # None: the best usable (a CPU is fine)
        ) -> dict:  # {'png', 'bicubic_psnr', 'model_psnr', 'weights', 'degradation', ...}
    "Degrade a face, restore it, and write demo.png: LQ | bicubic | restored | HQ, with PSNRs."
    weights, png = demo_inputs(out_dir, weights, image)
    cfg = get_preset(preset)                                      # an unknown preset: KeyError naming the choices
    if seed < 0: raise ValueError(f'seed must be a whole number >= 0 (--seed), got {seed}')
    model = load_generator(weights, device=device)
    info = weights_info(weights)
    hq = face_from_file(image) if image is not None else astronaut_face()
    params = sample(cfg, np.random.default_rng(seed), 1)
    lq = degrade_image(hq, params)
    t0 = time.perf_counter()
    sr = restore(model, lq, tta=tta)
    seconds = time.perf_counter() - t0
    res = {'bicubic_psnr': bicubic_psnr(lq, hq), 'model_psnr': psnr(sr, hq), 'weights': str(weights),
           'arch': info['arch'] or 'msrresnet', 'params': info['params'], 'meta': info['meta'],
           'degradation': params.caption(0), 'source': str(image) if image else 'scikit-image astronaut (public domain)',
           'seconds': seconds, 'device': str(model_device(model))}
    name = f"{res['arch']} ({weights.name})"
    res['png'] = str(png)
    comparison_grid(lq, {name: sr}, hq, zoom=(0.28, 0.3, 0.28, 0.4), path=png,
                    title=f'{preset}, seed {seed}: {res["degradation"][:110]}')
    return res


def demo_parser() -> argparse.ArgumentParser:
    "The flags of blindsr_demo."
    ap = argparse.ArgumentParser(
        prog='blindsr_demo', formatter_class=HelpFormatter,
        description="Degrade a public-domain face with the course's pipeline, restore it with blindsr's pretrained\n"
                    'generator (or yours) and write demo.png: LQ | bicubic | restored | original, with their PSNRs.\n'
                    'Needs no data and no GPU: one 128->512 face takes about a second on a CPU.',
        epilog=examples(('the demo, picture in the current folder', 'blindsr_demo'),
                        ('your own face photo and weights, picture into results/',
                         'blindsr_demo --image me.jpg --weights runs/blindsr/best.pt --out results'),
                        note='Exit status: 0 done; 2 a mistake (named on one line).'))
    g = ap.add_argument_group('face and degradation')
    g.add_argument('--image', default=None, metavar='FILE',
                   help="an HQ face image (.png .jpg .jpeg .webp .bmp), centre-cropped to a square and resized to 512x512 "
                        "(default: scikit-image's astronaut, a public-domain photo)")
    g.add_argument('--preset', default='ai6126_2024', choices=sorted(PRESETS), metavar='NAME',
                   help=f'degradation preset, one of {", ".join(sorted(PRESETS))} (default: ai6126_2024)')
    g.add_argument('--seed', type=non_negative_int, default=0, metavar='N',
                   help='seed of the degradation draw, a whole number >= 0 (default: 0)')
    g = ap.add_argument_group('generator')
    g.add_argument('--weights', '--ckpt', dest='weights', default=None, metavar='PATH',
                   help='generator weights: best.pt / final.pt / last.ckpt or a BasicSR .pth (default: the ones shipped '
                        'with blindsr)')
    g.add_argument('--tta', default='off', choices=list(TTA_MODES),
                   help='test-time augmentation: off, flip (2 passes, averaged) or x8 (8 passes) (default: off)')
    g.add_argument('--device', default=None, metavar='DEVICE',
                   help='cpu, cuda, cuda:N or mps (default: the best usable; a CPU is fine)')
    g = ap.add_argument_group('output')
    g.add_argument('--out', default='.', metavar='DIR',
                   help='folder for demo.png (created); an existing demo.png is replaced only if it is a picture '
                        'matplotlib drew (default: the current folder)')
    return ap


def demo_cli(argv: list[str] | None = None) -> int:
    "blindsr_demo: degrade a public-domain face, restore it with blindsr's pretrained generator, write demo.png."
    a = demo_parser().parse_args(argv)
    def body():
        r = demo(a.out, a.weights, a.image, a.preset, a.seed, a.tta, a.device)
        trained = TrainingRecord.from_meta(r['meta']).summary()
        print(f"face: {r['source']}, 512x512; degraded with {a.preset} (seed {a.seed}) to 128x128")
        print(f"model: {r['weights']}: {r['arch']}, {r['params']:,} parameters{'; ' + trained if trained else ''}")
        if (r['meta'] or {}).get('limits'): print(f"note: {r['meta']['limits']}")
        print(f"restored in {r['seconds']:.2f} s on {r['device']} (tta {a.tta})")
        print(f"PSNR against the 512x512 original:\n  bicubic  {r['bicubic_psnr']:.2f} dB\n"
              f"  model    {r['model_psnr']:.2f} dB ({r['model_psnr'] - r['bicubic_psnr']:+.2f} dB)")
        print(f"picture: {r['png']}")
    return run_cli('blindsr_demo', body, CLI_ERRORS)


# %% [markdown]
# Here with a tiny random network (a trained one is what the demo is for):

# %%
r = demo(tmp/'demo', weights=tmp/'w16.pt', device='cpu')
assert (tmp/'demo'/'demo.png').exists() and math.isfinite(r['model_psnr']) and 15 < r['bicubic_psnr'] < 40
test_eq(face_from_file(tmp/'demo'/'demo.png', 96).shape, (96, 96, 3))
test_eq(demo_cli(['--out', str(tmp/'demo2'), '--weights', str(tmp/'w16.pt'), '--image', str(tmp/'face16.png'),
                  '--device', 'cpu']), 0)

# %% [markdown]
# Mistakes stop before any work, on one line: missing weights, a device that is not there, and a face that is the
# picture itself (the demo would draw over its own input); a photo called `demo.png` is never replaced.

# %%
write_png(tmp/'mine'/'demo.png', rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
mine = (tmp/'mine'/'demo.png').read_bytes()
with redirect_stderr(io.StringIO()) as err:
    test_eq(demo_cli(['--weights', str(tmp/'nope.pt')]), 2)
    test_eq(demo_cli(['--weights', str(tmp/'w16.pt'), '--device', 'gpu', '--out', str(tmp/'d3')]), 2)
    test_eq(demo_cli(['--weights', str(tmp/'w16.pt'), '--image', str(tmp/'demo'/'demo.png'), '--out', str(tmp/'demo')]), 2)
    test_eq(demo_cli(['--weights', str(tmp/'w16.pt'), '--out', str(tmp/'mine')]), 2)
print(err.getvalue())
test_eq(len(err.getvalue().strip().splitlines()), 4)
test_eq((tmp/'mine'/'demo.png').read_bytes(), mine)
test_eq(demo_cli(['--out', str(tmp/'demo'), '--weights', str(tmp/'w16.pt'), '--device', 'cpu']), 0)   # its own picture: replaced

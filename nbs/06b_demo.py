# %% [markdown]
# # Pictures and the demo
# > `comparison_grid` puts an LQ face, its bicubic upscale, restorations and the ground truth side by side with their PSNRs; `blindsr_demo` degrades a public-domain face, restores it with the generator shipped in the package and draws that picture.

# %% [markdown]
# Use it to see what a model does to a face: `blindsr_demo` is the first command to run on a fresh machine (no data,
# no GPU), and `comparison_grid(lq, {'name': sr, …}, gt)` draws your own results the same way in a notebook.

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

from blindsr.cli import HelpFormatter, UserError, check_output_file, examples, non_negative_int, png_made_by, run_cli
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
from matplotlib.figure import Figure
from blindsr.checkpoint import export_weights
from blindsr.core import read_image, write_png
from blindsr.models import build_generator

tmp = Path(tempfile.mkdtemp())
rng = np.random.default_rng(0)
torch.manual_seed(0)
net = build_generator('msrresnet', num_feat=8, num_block=1).eval().requires_grad_(False)   # tiny, random weights
export_weights(tmp/'w16.pt', net, 'msrresnet', {'num_feat': 8, 'num_block': 1}, {'val_psnr': 20.0}, half=True)   # a weights file to load
write_png(tmp/'face128.png', rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))                                # a "face" for --image


# %% [markdown]
# ## Side by side
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


# %% [markdown]
# A tiny random network on a random 16×16 "face", with and without flip TTA; the close-up row zooms into the centre:

# %%
#| exec_doc
lq_img = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
sr_img = restore(net, lq_img)
gt_img = np.clip(sr_img.astype(int) + rng.integers(-5, 6, sr_img.shape), 0, 255).astype(np.uint8)
fig = comparison_grid(lq_img, {'off': sr_img, 'flip': restore(net, lq_img, 'flip')}, gt_img, zoom=(0.25, 0.25, 0.5, 0.5),
                      title='a tiny random network', path=tmp/'grid.png')
fig

# %%
#| hide
test_eq(len(fig.axes), 2 * 5)
assert f'PSNR {psnr(sr_img, gt_img):.2f} dB' in fig.axes[2].get_title()
test_eq(read_image(tmp/'grid.png').shape[2], 3)
test_eq(len(comparison_grid([lq_img, lq_img], [sr_img, sr_img], bicubic=False).axes), 4)
test_fail(lambda: comparison_grid(lq_img, sr_img, gt_img[:-1]), contains='GT is 64x63')

# %% [markdown]
# ## The demo: `blindsr_demo`
#
# What a newcomer runs first, on any machine, with no data and no GPU: a public-domain portrait that scikit-image
# ships (NASA's photo of the astronaut Eileen Collins), cropped to the face and framed roughly as FFHQ frames
# faces, at 512×512; degraded with the course's 2024 pipeline (fixed seed); restored by the generator trained by
# this project and shipped in the package (`blindsr/weights/blindsr_default.pt`, with its training record in
# `blindsr_default.json`); written as `demo.png` beside the PSNRs of bicubic and of the model. One 128→512
# image takes about a second on a CPU. Without shipped weights it stops and says so; `--weights` runs any other
# generator, `--image` any other face (at least 128×128, the size of the LQ the demo makes from it, and not one flat
# colour: there would be nothing to restore, and PSNRs of infinity).
#
# The picture carries `Software: blindsr_demo` in its PNG text, so a rerun replaces its own `demo.png` and nothing
# else: a photo, or another program's figure, under that name is refused unless `--overwrite`. Before any work the
# output is also tried: a folder where no file can be created (`/proc`, a read-only disk) is named at once.

# %%
#| export
DEMO_SOFTWARE = 'blindsr_demo (matplotlib)'   # the PNG text chunk that marks the demo's own picture
MIN_FACE = 128                                  # smallest --image side: the LQ the demo makes is 128x128


def is_demo_png(path: PathLike) -> bool:
    "Is `path` a picture blindsr_demo drew (its PNG `Software` text says so), which a rerun may replace?"
    return png_made_by(path, DEMO_SOFTWARE)


def demo_inputs(out_dir: PathLike = '.',  # where demo.png goes
                weights: PathLike | None = None,  # generator weights (default: the shipped ones)
                image: PathLike | None = None,  # an HQ face image (default: the astronaut)
                overwrite: bool = False,  # replace a demo.png the demo did not draw
               ) -> tuple[Path, Path]:  # (the weights file, demo.png's path), checked
    "Check the demo's face, weights and output before any work: the picture never replaces an input or a user's file."
    weights = Path(weights) if weights is not None else default_weights()
    if image is not None:
        image = Path(image)
        if image.is_dir(): raise UserError(f'--image {image} is a folder; give one face image (.png .jpg .jpeg .webp .bmp)')
        if not image.is_file(): raise FileNotFoundError(f'image not found: {image} (--image)')
        if image.suffix.lower() not in IMAGE_EXTS:
            raise UserError(f'--image {image}: blindsr reads {", ".join(IMAGE_EXTS)}; convert the image to PNG first')
        w, h = read_image_size(image)                            # a broken file is named before any work
        if min(w, h) < MIN_FACE:
            raise UserError(f'--image {image} is {w}x{h}: a face needs at least {MIN_FACE}x{MIN_FACE} pixels (the demo '
                            f'degrades it to a {MIN_FACE}x{MIN_FACE} LQ); give a larger photo')
    out = Path(out_dir)
    if out.exists() and not out.is_dir(): raise UserError(f'--out {out_dir} is a file; give a folder for demo.png (it is created if missing)')
    png = check_output_file(out / 'demo.png', [p for p in (image, weights) if p is not None], '--out', own=is_demo_png,
                            overwrite=overwrite)
    return weights, png


def demo(out_dir: PathLike = '.',  # where demo.png goes
         weights: PathLike | None = None,  # generator weights (default: the shipped ones)
         image: PathLike | None = None,  # an HQ face image (default: the astronaut)
         preset: str = 'ai6126_2024',  # degradation preset
         seed: int = 0,  # seed of the degradation draw (>= 0)
         tta: str = 'off',
         device: str | torch.device | None = None,  # None: the best usable (a CPU is fine)
         overwrite: bool = False,  # replace a demo.png the demo did not draw
        ) -> dict:  # {'png', 'bicubic_psnr', 'model_psnr', 'weights', 'degradation', ...}
    "Degrade a face, restore it, and write demo.png: LQ | bicubic | restored | HQ, with PSNRs."
    weights, png = demo_inputs(out_dir, weights, image, overwrite)
    cfg = get_preset(preset)                                      # an unknown preset: KeyError naming the choices
    if seed < 0: raise ValueError(f'seed must be a whole number >= 0 (--seed), got {seed}')
    model = load_generator(weights, device=device)
    info = weights_info(weights)
    hq = face_from_file(image) if image is not None else astronaut_face()
    if hq.std() < 1: raise UserError(f'--image {image} is one flat colour: nothing to restore, and no PSNR to score; give a face photo')
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
    fig = comparison_grid(lq, {name: sr}, hq, zoom=(0.28, 0.3, 0.28, 0.4), title=f'{preset}, seed {seed}: {res["degradation"][:110]}')
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, format='png', metadata={'Software': DEMO_SOFTWARE})   # the mark that lets a rerun replace it
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
                   help=f"an HQ face image (.png .jpg .jpeg .webp .bmp), at least {MIN_FACE}x{MIN_FACE}, centre-cropped to "
                        "a square and resized to 512x512 (default: scikit-image's astronaut, a public-domain photo)")
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
                   help='folder for demo.png (created); an existing demo.png is replaced only if blindsr_demo drew it '
                        '(default: the current folder)')
    g.add_argument('--overwrite', action='store_true',
                   help='replace an existing demo.png that blindsr_demo did not draw (default: refuse)')
    return ap


def demo_cli(argv: list[str] | None = None) -> int:
    "blindsr_demo: degrade a public-domain face, restore it with blindsr's pretrained generator, write demo.png."
    a = demo_parser().parse_args(argv)
    def body():
        r = demo(a.out, a.weights, a.image, a.preset, a.seed, a.tta, a.device, a.overwrite)
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
# What `blindsr_demo` draws, with the generator shipped in the package (about a second on a CPU):

# %%
#| exec_doc
shipped = demo(tmp/'shipped', device='cpu')
print(f"{shipped['degradation'][:90]}…\nbicubic {shipped['bicubic_psnr']:.2f} dB, model {shipped['model_psnr']:.2f} dB")
Image.open(shipped['png'])

# %% [markdown]
# The same with a tiny random network and any face (`--image`), from Python and as the command:

# %%
r = demo(tmp/'demo', weights=tmp/'w16.pt', device='cpu')
assert (tmp/'demo'/'demo.png').exists() and math.isfinite(r['model_psnr']) and 15 < r['bicubic_psnr'] < 40
test_eq(face_from_file(tmp/'demo'/'demo.png', 96).shape, (96, 96, 3))
test_eq(demo_cli(['--out', str(tmp/'demo2'), '--weights', str(tmp/'w16.pt'), '--image', str(tmp/'face128.png'),
                  '--device', 'cpu']), 0)

# %% [markdown]
# Mistakes stop before any work, on one line: missing weights, a device that is not there, a face that is the
# picture itself (the demo would draw over its own input), a face too small or flat to score, and an output that
# cannot be created; a photo or another program's figure called `demo.png` is never replaced without `--overwrite`.

# %%
#| hide
write_png(tmp/'mine'/'demo.png', rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
(tmp/'fig').mkdir(); Figure().savefig(tmp/'fig'/'demo.png')                     # a user's own matplotlib figure
write_png(tmp/'tiny.png', np.zeros((1, 1, 3), np.uint8)); write_png(tmp/'flat.png', np.full((200, 200, 3), 90, np.uint8))
users = {p: p.read_bytes() for p in (tmp/'mine'/'demo.png', tmp/'fig'/'demo.png')}
W = ['--weights', str(tmp/'w16.pt'), '--device', 'cpu']
for args, want in [(['--weights', str(tmp/'nope.pt')], 'nope.pt'), ([*W, '--device', 'gpu', '--out', str(tmp/'d3')], "'gpu'"),
                   ([*W, '--image', str(tmp/'demo'/'demo.png'), '--out', str(tmp/'demo')], 'is the input'),
                   ([*W, '--out', str(tmp/'mine')], 'not written by this command'),
                   ([*W, '--out', str(tmp/'fig')], 'not written by this command'),
                   ([*W, '--out', '/proc/blindsr_demo'], '--out /proc/blindsr_demo'),
                   ([*W, '--image', str(tmp/'tiny.png'), '--out', str(tmp/'d4')], 'at least 128x128'),
                   ([*W, '--image', str(tmp/'flat.png'), '--out', str(tmp/'d4')], 'flat colour')]:
    with redirect_stderr(io.StringIO()) as err: test_eq(demo_cli(args), 2)
    print(err.getvalue().strip())
    test_eq(len(err.getvalue().strip().splitlines()), 1)
    assert want in err.getvalue(), (args, err.getvalue())
test_eq({p: p.read_bytes() for p in users}, users)
assert not (tmp/'d3').exists() and not (tmp/'d4').exists()
test_eq(demo_cli(['--out', str(tmp/'demo'), *W]), 0)                                   # its own picture: replaced
assert is_demo_png(tmp/'demo'/'demo.png') and not any(is_demo_png(p) for p in users)
test_eq(demo_cli(['--out', str(tmp/'fig'), *W, '--overwrite']), 0)                    # asked for: replaced
assert is_demo_png(tmp/'fig'/'demo.png')

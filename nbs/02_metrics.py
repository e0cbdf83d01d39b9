# %% [markdown]
# # Metrics
# > The organisers' PSNR to the last bit, SSIM, and `blindsr_evaluate` for folders and submission zips.

# %% [markdown]
# Use it to know your score before CodaLab does: `blindsr_evaluate results/val data/val/GT` (a folder or the
# submission zip against the GT) prints the leaderboard's PSNR, and SSIM, and writes a CSV row per image; in
# Python, `psnr(sr, gt)` scores one uint8 image and `bicubic_psnr(lq, hq)` gives the baseline to beat.

# %%
#| default_exp metrics

# %%
#| export
from __future__ import annotations

import argparse
import csv
import io
import math
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from blindsr.cli import HelpFormatter, UserError, check_output_file, examples, positive_int, run_cli, worker_count
from blindsr.core import IMAGE_EXTS, PathLike, check_image_types, read_image

# %%
#| hide
import tempfile
from contextlib import redirect_stderr
from fastcore.test import test_eq, test_fail, test_close
from nbdev.showdoc import show_doc
from blindsr.core import tensor_to_img

tmp = Path(tempfile.mkdtemp())
rng = np.random.default_rng(0)


# %% [markdown]
# ## PSNR, as scored
#
# The organisers read prediction and ground truth with PIL as RGB uint8, compute the MSE over every pixel and
# channel in floating point (no border crop, no Y channel), turn it into `20·log10(255/√MSE)` per image, and
# average the per-image values. Anything scored must therefore be rounded to uint8 first.

# %%
#| export
def psnr(pred: np.ndarray,  # (H, W, 3) uint8 prediction
         gt: np.ndarray,  # (H, W, 3) uint8 ground truth, same shape
        ) -> float:  # dB; `inf` when the images are identical
    "The organisers' per-image PSNR: RGB uint8, whole image, MSE in float64."
    if pred.shape != gt.shape:
        raise ValueError(f'psnr needs equal shapes, got prediction {pred.shape} and ground truth {gt.shape}')
    mse = np.mean((np.asarray(pred, np.float64) - np.asarray(gt, np.float64)) ** 2)
    return math.inf if mse == 0 else float(20 * np.log10(255.0 / np.sqrt(mse)))


# %% [markdown]
# Hand-built cases: a constant error of 1 grey level is 48.1308… dB; an error of 255 everywhere is 0 dB; one
# pixel off by 10 in a 2×2 RGB image is MSE = 100/12; identical images give `inf`.

# %%
a = np.zeros((2, 2, 3), np.uint8)
test_close(psnr(a + 1, a), 20 * math.log10(255), eps=1e-12)
test_eq(psnr(a + 255, a), 0.0)
b = a.copy(); b[0, 0, 0] = 10
test_close(psnr(b, a), 20 * math.log10(255 / math.sqrt(100 / 12)), eps=1e-12)
test_eq(psnr(a, a), math.inf)
test_fail(lambda: psnr(a, np.zeros((2, 3, 3), np.uint8)), contains='equal shapes')


# %% [markdown]
# The same number for float tensors on any device, for validation inside training: values are clamped and rounded
# to uint8 levels first, exactly as the saved PNG would be.

# %%
#| export
def psnr_tensor(sr: torch.Tensor,  # (B, 3, H, W) float in [0, 1], any device
                hq: torch.Tensor,  # (B, 3, H, W) float in [0, 1]
               ) -> torch.Tensor:  # (B,) float64 dB on sr's device (CPU for MPS); inf where identical
    "Per-image PSNR of float batches, after rounding both to uint8 levels, as the organisers score."
    if sr.shape != hq.shape:
        raise ValueError(f'psnr_tensor needs equal shapes, got sr {tuple(sr.shape)} and hq {tuple(hq.shape)}')
    if sr.device.type == 'mps': sr, hq = sr.cpu(), hq.cpu()      # MPS has no float64
    q = lambda t: t.detach().double().clamp(0, 1).mul(255).round()
    mse = (q(sr) - q(hq)).pow(2).flatten(1).mean(1)
    return 20 * torch.log10(255.0 / mse.sqrt())


# %%
x = torch.rand(3, 3, 8, 8)
y = (x + 0.03 * torch.randn_like(x)).clamp(0, 1)
want = [psnr(p, g) for p, g in zip(tensor_to_img(y), tensor_to_img(x))]
test_close(psnr_tensor(y, x).tolist(), want, eps=1e-9)
test_eq(psnr_tensor(x, x).tolist(), [math.inf] * 3)


# %% [markdown]
# ## SSIM
#
# SSIM comes from scikit-image (maintained, widely cited) with the settings of Wang et al. 2004 that BasicSR and
# most SR papers use: Gaussian window σ = 1.5, population covariance, data range 255, on RGB, averaged over
# channels. It is reported for information; the leaderboard ranks by PSNR.

# %%
#| export
def ssim(pred: np.ndarray,  # (H, W, 3) uint8 prediction
         gt: np.ndarray,  # (H, W, 3) uint8 ground truth, same shape
        ) -> float:  # in [-1, 1]; 1 when identical
    "SSIM (Gaussian σ=1.5, RGB, data range 255) via scikit-image."
    from skimage.metrics import structural_similarity
    if pred.shape != gt.shape:
        raise ValueError(f'ssim needs equal shapes, got prediction {pred.shape} and ground truth {gt.shape}')
    return float(structural_similarity(gt, pred, channel_axis=2, data_range=255, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False))


# %%
yy, xx = np.mgrid[0:32, 0:32]
img = np.stack([yy * 4, xx * 4, (yy + xx) * 2], 2).astype(np.uint8)       # a smooth ramp
test_close(ssim(img, img), 1.0, eps=1e-12)
noisy = np.clip(img + rng.normal(0, 30, img.shape), 0, 255).astype(np.uint8)
test_close(ssim(noisy, img), ssim(img, noisy), eps=1e-12)                 # symmetric
assert 0 < ssim(noisy, img) < 0.5                                          # heavy noise on a smooth image


# %% [markdown]
# ## Image sets: folders and submission zips
#
# An image set maps each file stem (`00000`) to where its bytes are: a file in a folder, or a member of a zip.
# A CodaLab submission is a zip holding one folder of PNGs; we accept the images at the zip's root or in exactly
# one folder, and refuse anything ambiguous (two folders of images, two files with one stem) with the names.

# %%
#| export
@dataclass(frozen=True)
class ImageRef:
    "Where one image's bytes are: a file, or a member of a zip archive."
    label: str            # how errors name it: a path, or 'archive.zip:folder/00000.png'
    path: Path            # the file, or the zip archive
    member: str | None = None  # the zip member name, if any

    def read_bytes(self) -> bytes:
        "The file's encoded bytes (from the folder, or from the zip)."
        if self.member is None: return self.path.read_bytes()
        with zipfile.ZipFile(self.path) as zf: return zf.read(self.member)

    def read(self) -> np.ndarray:  # (H, W, 3) uint8 RGB
        "The decoded image; a broken file is named in the error."
        return read_image(self.path) if self.member is None else read_image(self.read_bytes(), name=self.label)

    def size(self) -> tuple[int, int]:  # (width, height) from the header, without decoding pixels
        "The image's size, read from its header only."
        try:
            with Image.open(self.path if self.member is None else io.BytesIO(self.read_bytes())) as im:
                return im.size
        except Exception as e:
            raise ValueError(f'cannot read the image header of {self.label}: {e}') from e


# %%
show_doc(ImageRef.read_bytes)

# %%
show_doc(ImageRef.read)

# %%
show_doc(ImageRef.size)


# %%
#| export
def _index(refs: list[ImageRef], where: str) -> dict[str, ImageRef]:
    "stem -> ref; two files with one stem is an error naming both."
    out, dup = {}, []
    for r in refs:
        stem = Path(r.member or r.path).stem
        if stem in out: dup.append(f'{out[stem].label} and {r.label}')
        out[stem] = r
    if dup: raise ValueError(f'{where}: several images share a name: ' + '; '.join(dup))
    if not out: raise FileNotFoundError(f'{where}: no images ({", ".join(IMAGE_EXTS)}) found')
    return out


def image_set(src: PathLike,  # a folder of images, or a zip holding them at its root or in one folder
             ) -> dict[str, ImageRef]:  # stem -> ImageRef, sorted by stem
    "Index a folder or a submission zip by file stem; image files of types blindsr does not read are an error naming them."
    src = Path(src)
    if not src.exists(): raise FileNotFoundError(f'not found: {src}')
    if src.is_dir():
        entries = [p for p in sorted(src.iterdir()) if p.is_file()]
        check_image_types(entries, src)
        refs = [ImageRef(str(p), p) for p in entries if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith('.')]
        return dict(sorted(_index(refs, str(src)).items()))
    if not zipfile.is_zipfile(src): raise ValueError(f'{src} is neither a folder nor a zip archive')
    try:
        with zipfile.ZipFile(src) as zf: members = [n for n in zf.namelist() if not n.endswith('/') and not n.startswith('__MACOSX/')]
    except (zipfile.BadZipFile, OSError) as e: raise ValueError(f'{src} is not a readable zip archive: {e}') from e
    check_image_types(members, src)
    names = [n for n in members if Path(n).suffix.lower() in IMAGE_EXTS and not Path(n).name.startswith('.')]
    folders = sorted({str(Path(n).parent) for n in names})
    if len(folders) > 1:
        raise ValueError(f'{src}: images are spread over several folders ({", ".join(folders)}); '
                         'a submission zip holds one folder of 00000.png … files')
    refs = [ImageRef(f'{src}:{n}', src, n) for n in sorted(names)]
    return dict(sorted(_index(refs, str(src)).items()))


# %%
for i in range(3): Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp/f'{i:05d}.png')
s = image_set(tmp)
test_eq(list(s), ['00000', '00001', '00002'])
with zipfile.ZipFile(tmp/'sub.zip', 'w') as zf:
    for i in range(3): zf.write(tmp/f'{i:05d}.png', f'results/{i:05d}.png')
z = image_set(tmp/'sub.zip')
test_eq(list(z), list(s))
test_eq(z['00001'].read(), s['00001'].read())
test_eq(z['00002'].size(), (16, 16))
with zipfile.ZipFile(tmp/'two.zip', 'w') as zf:
    zf.write(tmp/'00000.png', 'a/00000.png'); zf.write(tmp/'00001.png', 'b/00001.png')
test_fail(lambda: image_set(tmp/'two.zip'), contains='several folders')

# %% [markdown]
# An image of a type blindsr does not read (here a GIF) is never skipped silently: the set would lose a face.

# %%
#| hide
Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp/'00003.gif')
test_fail(lambda: image_set(tmp), contains='00003.gif')
with zipfile.ZipFile(tmp/'gif.zip', 'w') as zf: zf.write(tmp/'00003.gif', 'results/00003.gif')
test_fail(lambda: image_set(tmp/'gif.zip'), contains='00003.gif')
(tmp/'00003.gif').unlink()


# %% [markdown]
# ## Evaluating a prediction set
#
# Predictions and ground truth are paired by stem. Before any pixel is decoded, the sets are compared: missing
# predictions, extra predictions and wrongly sized predictions are each listed in one error, because a silently
# skipped image changes the mean.

# %%
#| export
class EvaluationError(ValueError):
    "The prediction set does not match the ground truth set; the message lists every problem."


@dataclass
class EvalResult:
    "Scores of one prediction set: means and one row per image."
    psnr: float                      # mean per-image PSNR (dB), the leaderboard number; inf if any image is identical
    ssim: float | None               # mean SSIM, None if not computed
    n: int                           # number of images
    rows: list[dict] = field(repr=False, default_factory=list)  # {'stem', 'psnr', 'ssim'} per image

    @property
    def psnr_finite(self) -> float:
        "Mean PSNR over images that differ from their ground truth (the useful number when some are identical)."
        vals = [r['psnr'] for r in self.rows if math.isfinite(r['psnr'])]
        return float(np.mean(vals)) if vals else math.inf

    def to_csv(self, path: PathLike) -> Path:
        "Write one row per image (stem, psnr, ssim), atomically: an interrupted write never leaves half a file."
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
        try:
            with open(tmp_path, 'w', newline='') as f:
                w = csv.DictWriter(f, fieldnames=['stem', 'psnr', 'ssim'])
                w.writeheader()
                for r in self.rows: w.writerow({k: ('' if r.get(k) is None else r[k]) for k in ('stem', 'psnr', 'ssim')})
            os.replace(tmp_path, path)
        finally: tmp_path.unlink(missing_ok=True)
        return path

    def summary(self) -> str:
        "For people: the mean PSNR (and SSIM) and the image count, and a second line when some images equal their GT."
        s = f'PSNR {self.psnr:.4f} dB'
        if self.ssim is not None: s += f'  SSIM {self.ssim:.4f}'
        s += f'  ({self.n} images)'
        n_inf = sum(not math.isfinite(r['psnr']) for r in self.rows)
        if n_inf: s += f'\n{n_inf} image(s) identical to ground truth (PSNR = inf); mean over the others: {self.psnr_finite:.4f} dB'
        return s


# %%
show_doc(EvalResult.to_csv)

# %%
show_doc(EvalResult.summary)


# %%
#| export
def _check_sets(pred: dict[str, ImageRef], gt: dict[str, ImageRef], workers: int) -> dict[str, tuple[int, int]]:
    "Raise EvaluationError listing missing, extra and wrongly sized predictions; else the GT sizes by label."
    def short(xs, k=20): return ', '.join(xs[:k]) + (f' … ({len(xs)} in all)' if len(xs) > k else '')
    missing = [s for s in gt if s not in pred]
    extra = [s for s in pred if s not in gt]
    problems = []
    if missing: problems.append(f'{len(missing)} missing prediction(s): {short(missing)}')
    if extra: problems.append(f'{len(extra)} prediction(s) with no ground truth: {short(extra)}')
    common = [s for s in gt if s in pred]
    with ThreadPoolExecutor(workers) as ex:
        ps = list(ex.map(lambda s: pred[s].size(), common))
        gs = list(ex.map(lambda s: gt[s].size(), common))
    wrong = [f'{s} ({p[0]}x{p[1]}, want {g[0]}x{g[1]})' for s, p, g in zip(common, ps, gs) if p != g]
    if wrong: problems.append(f'{len(wrong)} prediction(s) of the wrong size: {short(wrong)}')
    if problems: raise EvaluationError('the prediction set does not match the ground truth: ' + '; '.join(problems))
    return {gt[s].label: g for s, g in zip(common, gs)}


SSIM_MIN_SIDE = 7   # SSIM's 7x7 Gaussian window (σ = 1.5, Wang et al.): smaller images have no SSIM


def check_ssim_sizes(sizes: dict[str, tuple[int, int]],  # image label -> (width, height)
                    ) -> None:
    "Refuse images too small for SSIM's window before any scoring, naming the first one and saying how to go on."
    small = [(label, wh) for label, wh in sizes.items() if min(wh) < SSIM_MIN_SIDE]
    if small:
        label, (w, h) = small[0]
        more = f' ({len(small)} images are smaller)' if len(small) > 1 else ''
        raise EvaluationError(f'{label} is {w}x{h}: SSIM needs images of at least {SSIM_MIN_SIDE}x{SSIM_MIN_SIDE}{more}; '
                              'score PSNR only with --no-ssim (with_ssim=False)')


# %%
#| export
def evaluate(pred: PathLike,  # folder or submission zip of predictions
             gt: PathLike,  # folder (or zip) of ground-truth images
             with_ssim: bool = True,  # also compute SSIM (about 3x slower than PSNR alone)
             workers: int | None = None,  # threads; default: all cores
             progress: bool = True,  # show a progress bar
            ) -> EvalResult:
    "Score predictions against ground truth by file stem with the organisers' PSNR (and SSIM)."
    if workers is not None and workers < 1: raise ValueError(f'workers must be a number of threads >= 1, got {workers}')
    workers = workers or os.cpu_count() or 1
    P, G = image_set(pred), image_set(gt)
    gt_sizes = _check_sets(P, G, workers)
    if with_ssim: check_ssim_sizes(gt_sizes)

    def score(stem):
        p, g = P[stem].read(), G[stem].read()
        return {'stem': stem, 'psnr': psnr(p, g), 'ssim': ssim(p, g) if with_ssim else None}

    with ThreadPoolExecutor(workers) as ex:
        rows = list(tqdm(ex.map(score, G), total=len(G), desc='evaluate', unit='img', disable=not progress))
    mean_psnr = float(np.mean([r['psnr'] for r in rows]))
    mean_ssim = float(np.mean([r['ssim'] for r in rows])) if with_ssim else None
    return EvalResult(mean_psnr, mean_ssim, len(rows), rows)


# %% [markdown]
# On a hand-built set — three random ground truths, predictions with known errors, packed as a CodaLab zip —
# the mean equals the organisers' formula computed by hand to 1e-9 dB:

# %%
#| exec_doc
gtd, prd = tmp/'gt', tmp/'pred'
gtd.mkdir(); prd.mkdir()
by_hand = []
for i, err in enumerate([1, 3, 17]):
    g = rng.integers(20, 236, (24, 24, 3), dtype=np.uint8)
    p = g.copy(); p[::2] += err                                  # half the rows off by `err`
    Image.fromarray(g).save(gtd/f'{i:05d}.png'); Image.fromarray(p).save(prd/f'{i:05d}.png')
    mse = (err ** 2) / 2
    by_hand.append(20 * math.log10(255 / math.sqrt(mse)))
r = evaluate(prd, gtd, progress=False)
test_close(r.psnr, sum(by_hand) / 3, eps=1e-9)
with zipfile.ZipFile(tmp/'submission.zip', 'w') as zf:
    for f in sorted(prd.iterdir()): zf.write(f, f'submission/{f.name}')
rz = evaluate(tmp/'submission.zip', gtd, progress=False)
test_close(rz.psnr, sum(by_hand) / 3, eps=1e-9)
test_eq([x['stem'] for x in rz.rows], ['00000', '00001', '00002'])
print(rz.summary())

# %% [markdown]
# Missing, extra and wrongly sized predictions are all listed in one error:

# %%
#| hide
bad = tmp/'bad'; bad.mkdir()
Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(bad/'00000.png')
Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(bad/'00001.png')
Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(bad/'00007.png')
try: evaluate(bad, gtd, progress=False)
except EvaluationError as e: msg = str(e); print(msg)
for part in ['missing prediction(s): 00002', 'no ground truth: 00007', 'wrong size: 00001 (24x20, want 24x24)']:
    assert part in msg, part

# %% [markdown]
# Identical images give `inf` for that image (as the formula does) and the summary says so:

# %%
#| hide
same = evaluate(gtd, gtd, with_ssim=False, progress=False)
test_eq(same.psnr, math.inf); test_eq(same.psnr_finite, math.inf)
assert 'identical' in same.summary()


# %% [markdown]
# ## The baseline to beat: bicubic
#
# Every score in blindsr is read against one number: the organisers' PSNR of the LQ upsampled 4× with PIL's
# bicubic filter (what a trivial submission would score). The trainer logs it beside each validation, `blindsr_val`
# prints the model's gain over it, and the LQ-set comparison uses it as a degradation-strength statistic.

# %%
#| export
def bicubic_psnr(lq: np.ndarray,  # (h, w, 3) uint8 LQ
                 hq: np.ndarray,  # (H, W, 3) uint8 HQ / GT
                ) -> float:  # dB
    "The organisers' PSNR of the PIL-bicubic upsampled LQ against the HQ."
    up = np.asarray(Image.fromarray(lq).resize((hq.shape[1], hq.shape[0]), Image.BICUBIC))
    return psnr(up, hq)


def bicubic_baseline(lq: PathLike,  # folder (or zip) of LQ images
                     gt: PathLike,  # folder (or zip) of GT images, same stems
                     stems: list[str] | None = None,  # only these (default: every stem the two sets share)
                     workers: int = 4,  # threads
                    ) -> float:  # mean dB
    "Mean organisers' PSNR of PIL-bicubic upsampled LQ against GT, paired by stem: the number to beat."
    L, G = image_set(lq), image_set(gt)
    stems = [s for s in G if s in L] if stems is None else list(stems)
    lost = [s for s in stems if s not in L or s not in G]
    if lost or not stems: raise ValueError(f'no LQ/GT pair for {", ".join(lost[:10]) or "any image"} in {lq} and {gt}')
    with ThreadPoolExecutor(max(1, workers)) as ex:
        return float(np.mean(list(ex.map(lambda s: bicubic_psnr(L[s].read(), G[s].read()), stems))))


# %%
hq_ = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
lq_ = np.asarray(Image.fromarray(hq_).resize((8, 8), Image.BICUBIC))
b_ = bicubic_psnr(lq_, hq_)
test_close(b_, psnr(np.asarray(Image.fromarray(lq_).resize((32, 32), Image.BICUBIC)), hq_), eps=1e-12)
bl = Path(tempfile.mkdtemp())
for d_, im_ in (('lq', lq_), ('gt', hq_)): (bl/d_).mkdir(); Image.fromarray(im_).save(bl/d_/'00000.png')
Image.fromarray(hq_).save(bl/'gt'/'00001.png')                               # a GT without LQ is not paired
test_close(bicubic_baseline(bl/'lq', bl/'gt'), b_, eps=1e-12)
test_fail(lambda: bicubic_baseline(bl/'lq', bl/'gt', stems=['00001']), contains='00001')


# %% [markdown]
# ## The command
#
# `blindsr_evaluate PRED GT` prints the mean PSNR (and SSIM) and writes one row per image to a CSV. Everything it
# can check is checked before the first image is decoded: the two sets (names, counts, sizes, file types) and the
# CSV's path — not an input, not inside one, not a folder, in a folder it can write, and not a file of the user's.
# The CSV goes beside PRED by default; when that folder is read-only (a zip under `/kaggle/input`), it goes to the
# current folder instead, and the command says so.

# %%
#| export
def is_scores_csv(path: PathLike) -> bool:
    "Is `path` a per-image scores CSV that blindsr wrote (so that a rerun may replace it)?"
    try:
        with open(path, 'rb') as f: return f.read(10).startswith(b'stem,psnr')
    except OSError: return False


def evaluate_parser() -> argparse.ArgumentParser:
    "The flags of blindsr_evaluate."
    ap = argparse.ArgumentParser(
        prog='blindsr_evaluate', formatter_class=HelpFormatter,
        description='Score a prediction folder or submission zip against the ground truth with the organisers\' PSNR\n'
                    '(RGB, whole image, mean of per-image values) and SSIM, paired by file stem; write a per-image CSV.',
        epilog=examples(('score a folder of restored val faces', 'blindsr_evaluate results/val data/val/GT'),
                        ('score a submission zip, PSNR only, scores to a named CSV',
                         'blindsr_evaluate submission.zip data/val/GT --no-ssim --csv scores.csv'),
                        note='Exit status: 0 scored; 2 a mistake in the inputs (missing, extra, wrongly sized or '
                             'unreadable images; a CSV path that cannot be written), named on one line.'))
    g = ap.add_argument_group('inputs')
    g.add_argument('pred', metavar='PRED', help='the predictions: a folder of images (.png .jpg .jpeg .webp .bmp), or a '
                                                'submission zip holding them at its root or in one folder')
    g.add_argument('gt', metavar='GT', help='the ground truth: a folder (or zip) of images with the same stems and sizes, '
                                            'e.g. data/val/GT')
    g = ap.add_argument_group('output')
    g.add_argument('--csv', metavar='FILE', default=None,
                   help='where the per-image scores go (columns stem, psnr in dB, ssim) (default: PRED_metrics.csv beside '
                        "PRED, or in the current folder when PRED's folder is read-only)")
    g = ap.add_argument_group('scoring')
    g.add_argument('--no-ssim', action='store_true', help='PSNR only, about 3x faster (default: PSNR and SSIM)')
    g.add_argument('--workers', type=worker_count, default=None, metavar='N',
                   help='threads reading and scoring images, a whole number >= 1 (default: all cores)')
    return ap


def scores_csv_path(csv: PathLike | None,  # the path the user gave (--csv), or None
                    default: Path,  # where the CSV goes by default (beside the predictions)
                    inputs: Sequence[PathLike],  # the command's inputs: the CSV may not be one or lie inside one
                   ) -> Path | None:  # the checked path; None (with a note) when no folder can take it
    "Where the per-image scores go, checked before any work: --csv; else `default`, else the current folder (with a note)."
    if csv is not None: return check_output_file(csv, inputs, '--csv', own=is_scores_csv)   # '' is refused there
    try: return check_output_file(default, inputs, '--csv', own=is_scores_csv)
    except UserError as beside:
        try: path = check_output_file(Path.cwd() / default.name, inputs, '--csv', own=is_scores_csv)
        except UserError:
            print(f'note: no per-image CSV: {beside} (and the current folder cannot take it either); pass --csv FILE')
            return None
        print(f'note: the per-image CSV goes to {path}, because {beside}')
        return path


def evaluate_cli(argv: list[str] | None = None) -> int:
    "blindsr_evaluate PRED GT: mean PSNR/SSIM of a prediction folder or submission zip, plus a per-image CSV."
    a = evaluate_parser().parse_args(argv)
    def body():
        if Path(a.pred).expanduser().resolve() == Path(a.gt).expanduser().resolve():
            raise UserError(f'PRED and GT are the same: {a.pred}; give the predictions first, then the ground truth')
        csv_path = scores_csv_path(a.csv, Path(a.pred).parent / f'{Path(a.pred).stem}_metrics.csv', [a.pred, a.gt])
        res = evaluate(a.pred, a.gt, with_ssim=not a.no_ssim, workers=a.workers)
        print(res.summary())                          # the scores first: a failing CSV write cannot hide them
        if csv_path is not None: print(f'per-image scores: {res.to_csv(csv_path)}')
    return run_cli('blindsr_evaluate', body)


# %%
test_eq(evaluate_cli([str(prd), str(gtd), '--csv', str(tmp/'m.csv'), '--workers', '2']), 0)
rows = list(csv.DictReader(open(tmp/'m.csv')))
test_close(float(rows[2]['psnr']), by_hand[2], eps=1e-9)
test_eq(evaluate_cli([str(prd), str(gtd), '--csv', str(tmp/'m.csv'), '--no-ssim']), 0)        # its own CSV: replaced
test_eq(evaluate_cli([str(bad), str(gtd)]), 2)
tiny = tmp/'tiny'; tiny.mkdir()
Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tiny/'00000.png')
test_fail(lambda: evaluate(tiny, tiny, progress=False), contains='tiny/00000.png is 4x4: SSIM needs images of at least 7x7')
test_eq(evaluate(tiny, tiny, with_ssim=False, progress=False).n, 1)                  # PSNR alone needs no window
with redirect_stderr(io.StringIO()) as err:
    test_eq(evaluate_cli([str(gtd), str(gtd)]), 2)                                 # a folder scored against itself
    test_eq(evaluate_cli([str(prd), str(gtd), '--csv', '']), 2)                    # an empty --csv is not the default
assert 'PRED and GT are the same' in err.getvalue() and '--csv is empty' in err.getvalue(), err.getvalue()

# %% [markdown]
# Outputs that would destroy an input or a user's file are refused before any scoring, each on one line:

# %%
(tmp/'notes.csv').write_text('my notes')
with redirect_stderr(io.StringIO()) as err:
    for csv_arg in (gtd/'00000.png', gtd/'scores.csv', gtd, tmp/'notes.csv'):
        test_eq(evaluate_cli([str(prd), str(gtd), '--csv', str(csv_arg)]), 2)
print(err.getvalue())
test_eq(len(err.getvalue().splitlines()), 4)
test_eq((tmp/'notes.csv').read_text(), 'my notes')

# %% [markdown]
# # Data
# > Face folders for training, validation and test: an HQ set decoded once into memory, paired GT/LQ and LQ-only sets, a held-out split, and a finder for the data on Kaggle (the batches a training step takes are `blindsr.batches`).

# %%
#| default_exp data

# %%
#| export
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from blindsr.core import IMAGE_EXTS, PathLike, list_images, read_image
from blindsr.metrics import image_set

# %%
#| hide
import tempfile
from fastcore.test import test_eq, test_fail, test_close, test_ne
from blindsr.core import write_png

tmp = Path(tempfile.mkdtemp())
rng = np.random.default_rng(0)
def make_faces(folder, n, size=32, ext='.png', start=0):
    for i in range(start, start + n):
        write_png(folder / f'{i:05d}.png', rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        if ext != '.png':
            from PIL import Image
            Image.open(folder / f'{i:05d}.png').save(folder / f'{i:05d}{ext}', quality=95); (folder / f'{i:05d}.png').unlink()


# %% [markdown]
# ## HQ faces for training -
#
# Training reads only HQ faces: LQ is synthesised on the fly. Decoding a 512² PNG costs ~10 ms, more than a
# training step spends on the image, so `HQFaces` decodes every face once (in parallel) into one uint8 tensor
# `(N, 3, H, W)` — 5,000 faces are 3.9 GB, which fits Kaggle's RAM — and the trainer can move that tensor to the
# GPU and gather batches there, with no loader in the loop at all. Without the cache, items are decoded on demand
# (for a `DataLoader` with workers). All faces must share one size divisible by 4.

# %%
#| export
class HQFaces(Dataset):
    "HQ faces of one folder as uint8 (3, H, W) tensors; optionally decoded once into RAM."
    def __init__(self,
                 folder: PathLike | Sequence[PathLike],  # a folder of png/jpg/webp/bmp faces, or a list of files
                 cache: bool = True,  # decode everything once into one uint8 tensor
                 workers: int | None = None,  # decoding threads for the cache (default: all cores)
                 progress: bool = True,
                ):
        self.files = list_images(folder) if isinstance(folder, (str, os.PathLike)) else [Path(f) for f in folder]
        if not self.files: raise FileNotFoundError(f'no HQ faces given ({folder})')
        first = read_image(self.files[0])
        self.size = first.shape[:2]
        if self.size[0] % 4 or self.size[1] % 4:
            raise ValueError(f'HQ faces must have sides divisible by 4, {self.files[0]} is {self.size[1]}x{self.size[0]}')
        self.images = self._decode_all(workers, progress) if cache else None

    def _read(self, path: Path) -> np.ndarray:
        img = read_image(path)
        if img.shape[:2] != self.size:
            raise ValueError(f'all HQ faces must share one size: {path} is {img.shape[1]}x{img.shape[0]}, '
                             f'{self.files[0].name} is {self.size[1]}x{self.size[0]}')
        return img

    def _decode_all(self, workers, progress) -> torch.Tensor:
        from tqdm.auto import tqdm
        out = torch.empty(len(self.files), 3, *self.size, dtype=torch.uint8)
        def load(i): out[i] = torch.from_numpy(self._read(self.files[i])).permute(2, 0, 1)
        with ThreadPoolExecutor(workers or os.cpu_count() or 1) as ex:
            list(tqdm(ex.map(load, range(len(self.files))), total=len(self.files), desc='decode HQ faces',
                      unit='img', disable=not progress))
        return out

    def __len__(self): return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:  # (3, H, W) uint8
        if self.images is not None: return self.images[i]
        return torch.from_numpy(self._read(self.files[i])).permute(2, 0, 1).contiguous()

    @property
    def nbytes(self) -> int:
        "Bytes of the decoded set (whether or not it is cached)."
        return len(self) * 3 * self.size[0] * self.size[1]


# %%
make_faces(tmp/'hq', 5, 32)
ds = HQFaces(tmp/'hq', progress=False)
test_eq(len(ds), 5); test_eq(ds.images.shape, (5, 3, 32, 32)); test_eq(ds[2].dtype, torch.uint8)
test_eq(HQFaces(tmp/'hq', cache=False)[2], ds[2])
test_eq(ds.nbytes, 5 * 3 * 32 * 32)
write_png(tmp/'hq'/'odd.png', np.zeros((30, 32, 3), np.uint8))
test_fail(lambda: HQFaces(tmp/'hq', progress=False), contains='odd.png')
(tmp/'hq'/'odd.png').unlink()


# %% [markdown]
# ## Paired and LQ-only sets -
#
# Validation pairs `GT/` and `LQ/` images by file stem; a face without its partner is an error that lists the
# stems, because a silently dropped pair changes the score. Test sets have LQ only.

# %%
#| export
def _by_stem(folder: PathLike) -> dict[str, Path]:
    "stem -> file; blindsr.metrics.image_set's indexing (two files with one stem, or none at all, is an error)."
    return {stem: ref.path for stem, ref in image_set(folder).items()}


class PairedFaces(Dataset):
    "GT/LQ pairs matched by stem; items are dicts {'stem', 'gt': (3,H,W) uint8, 'lq': (3,h,w) uint8}."
    def __init__(self,
                 gt_dir: PathLike,  # e.g. val/GT (512x512)
                 lq_dir: PathLike,  # e.g. val/LQ (128x128), same stems
                 limit: int | None = None,  # use only the first `limit` pairs (by name)
                ):
        gt, lq = _by_stem(gt_dir), _by_stem(lq_dir)
        only_gt, only_lq = sorted(set(gt) - set(lq)), sorted(set(lq) - set(gt))
        if only_gt or only_lq:
            msg = []
            if only_gt: msg.append(f'{len(only_gt)} GT without LQ in {lq_dir}: {", ".join(only_gt[:20])}')
            if only_lq: msg.append(f'{len(only_lq)} LQ without GT in {gt_dir}: {", ".join(only_lq[:20])}')
            raise ValueError('GT and LQ folders do not pair up:\n  ' + '\n  '.join(msg))
        self.stems = sorted(gt)[:limit]
        self.gt_files, self.lq_files = [gt[s] for s in self.stems], [lq[s] for s in self.stems]

    def __len__(self): return len(self.stems)

    def __getitem__(self, i: int) -> dict:
        t = lambda p: torch.from_numpy(read_image(p)).permute(2, 0, 1).contiguous()
        gt, lq = t(self.gt_files[i]), t(self.lq_files[i])
        if gt.shape[-2] != 4 * lq.shape[-2] or gt.shape[-1] != 4 * lq.shape[-1]:
            raise ValueError(f'{self.gt_files[i]} ({gt.shape[-1]}x{gt.shape[-2]}) is not 4x its LQ {self.lq_files[i]} '
                             f'({lq.shape[-1]}x{lq.shape[-2]})')
        return {'stem': self.stems[i], 'gt': gt, 'lq': lq}


class LQFaces(Dataset):
    "LQ-only faces (a test set); items are dicts {'stem', 'lq': (3,h,w) uint8}."
    def __init__(self, lq_dir: PathLike):
        self.files = list(_by_stem(lq_dir).values())
        self.stems = [f.stem for f in self.files]

    def __len__(self): return len(self.files)

    def __getitem__(self, i: int) -> dict:
        return {'stem': self.stems[i], 'lq': torch.from_numpy(read_image(self.files[i])).permute(2, 0, 1).contiguous()}


# %%
from blindsr.core import tensor_to_img
make_faces(tmp/'val'/'GT', 3, 32); make_faces(tmp/'val'/'LQ', 3, 8)
pv = PairedFaces(tmp/'val'/'GT', tmp/'val'/'LQ')
test_eq(len(pv), 3); test_eq(pv[1]['stem'], '00001'); test_eq(pv[1]['gt'].shape, (3, 32, 32))
test_eq(len(PairedFaces(tmp/'val'/'GT', tmp/'val'/'LQ', limit=2)), 2)
make_faces(tmp/'val'/'GT', 1, 32, start=7)
test_fail(lambda: PairedFaces(tmp/'val'/'GT', tmp/'val'/'LQ'), contains='00007')
test_eq(LQFaces(tmp/'val'/'LQ').stems, ['00000', '00001', '00002'])


# %% [markdown]
# A held-out split of one HQ folder, for when only HQ faces exist (e.g. 180 to train, 20 to validate): the last
# `n_val` faces by name are held out; their LQ are made once with `blindsr_degrade`'s code and a fixed seed.

# %%
#| export
def holdout_split(folder: PathLike,  # one folder of HQ faces
                  n_val: int,  # faces held out for validation (the last by name)
                 ) -> tuple[list[Path], list[Path]]:  # (train files, validation files)
    "Split a folder's faces by name into training faces and `n_val` held-out validation faces."
    files = list_images(folder)
    if not 0 < n_val < len(files): raise ValueError(f'cannot hold out {n_val} of the {len(files)} faces in {folder}')
    return files[:-n_val], files[-n_val:]


# %%
tr, va = holdout_split(tmp/'hq', 2)
test_eq([p.stem for p in va], ['00003', '00004']); test_eq(len(tr), 3)
test_fail(lambda: holdout_split(tmp/'hq', 5), contains='hold out 5')


# %% [markdown]
# ## Finding the data -
#
# On Kaggle the course data is attached under `/kaggle/input/<dataset>/…`, with layouts that vary between
# uploads (`train/GT`, `train/HQ`, `train/`, nested zips unpacked one level deeper, …). `find_data` walks the
# given roots and picks, by folder names and image counts, the HQ training faces, the validation GT/LQ pair and
# the test LQ; what it cannot find is `None`, and `DataPaths.require` names what is missing and where it looked.

# %%
#| export
@dataclass
class DataPaths:
    "Where the course data is; None for what was not found."
    train_hq: Path | None = None
    val_gt: Path | None = None
    val_lq: Path | None = None
    test_lq: Path | None = None
    searched: tuple = ()

    def require(self, *names: str) -> 'DataPaths':
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise FileNotFoundError(f'could not find {", ".join(missing)} under {", ".join(map(str, self.searched)) or "(no roots)"}; '
                                    'expected folders like train/GT (HQ faces), val/GT + val/LQ, test/LQ. Pass the paths explicitly.')
        return self


def _count_images(d: Path) -> int:
    try: return sum(1 for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    except OSError: return 0


def find_data(roots: Sequence[PathLike] | None = None,  # default: /kaggle/input, then ./data
              max_depth: int = 5,
             ) -> DataPaths:
    "Locate train HQ, val GT/LQ and test LQ folders by their names."
    roots = [Path(r) for r in (roots or ['/kaggle/input', 'data'])]
    found: dict[str, tuple[int, Path]] = {}
    def consider(key, d, n):
        if n and (key not in found or n > found[key][0]): found[key] = (n, d)
    for root in roots:
        if not root.is_dir(): continue
        for dirpath, dirnames, _ in os.walk(root):
            d = Path(dirpath)
            if len(d.relative_to(root).parts) > max_depth: dirnames[:] = []; continue
            n = _count_images(d)
            if not n: continue
            parts = [p.lower() for p in d.parts[-2:]]
            name, parent = parts[-1], (parts[0] if len(parts) > 1 else '')
            if parent.startswith('train') and name in ('gt', 'hq', 'hr') or name in ('train', 'train_hq', 'training'):
                consider('train_hq', d, n)
            elif parent.startswith('val') and name in ('gt', 'hq', 'hr'): consider('val_gt', d, n)
            elif parent.startswith('val') and name in ('lq', 'lr'): consider('val_lq', d, n)
            elif parent.startswith('test') and name in ('lq', 'lr') or name == 'test': consider('test_lq', d, n)
    return DataPaths(**{k: v[1] for k, v in found.items()}, searched=tuple(roots))


# %%
kag = tmp/'kaggle'/'input'/'ai6126-faces'
make_faces(kag/'train'/'GT', 4, 32); make_faces(kag/'val'/'GT', 2, 32); make_faces(kag/'val'/'LQ', 2, 8)
make_faces(kag/'test'/'LQ', 2, 8)
dp = find_data([tmp/'kaggle'/'input'])
test_eq((dp.train_hq.relative_to(kag), dp.val_gt.relative_to(kag), dp.val_lq.relative_to(kag), dp.test_lq.relative_to(kag)),
        (Path('train/GT'), Path('val/GT'), Path('val/LQ'), Path('test/LQ')))
test_fail(lambda: find_data([tmp/'nowhere']).require('train_hq'), contains='train_hq')

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
from nbdev.showdoc import show_doc
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
# Use it to read the course's face folders: `HQFaces('data/train/GT')` holds the training faces (decoded once, into
# memory), `PairedFaces('data/val/GT', 'data/val/LQ')` the validation pairs, `LQFaces('data/test/LQ')` the test
# faces, and `find_data()` finds those folders wherever a Kaggle dataset or a zip put them. The trainer and the
# Kaggle and Colab notebooks use exactly these; you need them when you write your own loop or look at the data.
#
# ## HQ faces for training
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
#| exec_doc
make_faces(tmp/'hq', 5, 32)                               # five 32×32 faces: 00000.png … 00004.png
ds = HQFaces(tmp/'hq', progress=False)
len(ds), ds[2].shape, ds[2].dtype, ds.images.shape, ds.nbytes

# %%
#| hide
test_eq(len(ds), 5); test_eq(ds.images.shape, (5, 3, 32, 32)); test_eq(ds[2].dtype, torch.uint8)
test_eq(HQFaces(tmp/'hq', cache=False)[2], ds[2])
test_eq(ds.nbytes, 5 * 3 * 32 * 32)
write_png(tmp/'hq'/'odd.png', np.zeros((30, 32, 3), np.uint8))
test_fail(lambda: HQFaces(tmp/'hq', progress=False), contains='odd.png')
(tmp/'hq'/'odd.png').unlink()


# %% [markdown]
# ## Paired and LQ-only sets
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
#| exec_doc
make_faces(tmp/'val'/'GT', 3, 32); make_faces(tmp/'val'/'LQ', 3, 8)
pv = PairedFaces(tmp/'val'/'GT', tmp/'val'/'LQ')
len(pv), {k: v.shape if hasattr(v, 'shape') else v for k, v in pv[1].items()}, LQFaces(tmp/'val'/'LQ').stems

# %%
#| hide
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
#| exec_doc
tr, va = holdout_split(tmp/'hq', 2)
[p.name for p in tr], [p.name for p in va]

# %%
#| hide
test_eq([p.stem for p in va], ['00003', '00004']); test_eq(len(tr), 3)
test_fail(lambda: holdout_split(tmp/'hq', 5), contains='hold out 5')

# %% [markdown]
# ## Finding the data
#
# On Kaggle the course data is mounted under `/kaggle/input`, and where exactly has changed over the years:
# `/kaggle/input/<slug>/…` once, `/kaggle/input/datasets/<owner>/<slug>/…` now, and a zip uploaded with a top
# folder adds one more level. So the finder looks for folders by *what they hold* — at least a few images of one
# size, in a folder named like `train/GT`, `val/LQ` or `test/LQ` — at any depth. The walk is bounded by the number
# of directory entries it reads and by time, not by a depth, so a deep layout is found and a huge input still ends.
#
# First the walk: breadth first (shallow folders come first), hidden folders skipped, every real folder visited
# once (a symlink to a folder already seen is not followed again).

# %%
#| export
import time

SEARCH_MAX_ENTRIES = 200_000   # directory entries a search reads, all roots together (the course data is ~6,200)
SEARCH_MAX_SECONDS = 60.0      # and the time it may take


class BoundedWalk:
    "Breadth-first walk of the folders under `roots`; stops after `max_entries` directory entries or `max_seconds`."
    def __init__(self, roots: Sequence[PathLike], max_entries: int = SEARCH_MAX_ENTRIES, max_seconds: float = SEARCH_MAX_SECONDS):
        self.roots, self.max_entries, self.max_seconds = [Path(r) for r in roots], max_entries, max_seconds
        self.entries, self.stopped = 0, None       # entries read; why the walk ended early (None: it saw everything)

    def __iter__(self):  # yields (folder, sorted names of the files in it)
        t0, seen = time.monotonic(), set()
        queue = [r for r in self.roots if r.is_dir()]
        while queue:
            folder = queue.pop(0)
            real = os.path.realpath(folder)
            if real in seen: continue
            seen.add(real)
            try: entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError: continue
            self.entries += len(entries)
            files, subdirs = [], []
            for e in entries:
                if e.name.startswith('.') or e.name == '__pycache__': continue
                try: (subdirs if e.is_dir() else files).append(e.name)
                except OSError: continue
            yield folder, files
            queue += [folder / d for d in subdirs]
            if self.entries >= self.max_entries: self.stopped = f'stopped after {self.entries} directory entries'
            elif time.monotonic() - t0 > self.max_seconds: self.stopped = f'stopped after {self.max_seconds:.0f} s'
            if self.stopped and queue: return
            self.stopped = None


# %%
#| hide
make_faces(tmp/'walk'/'a'/'b'/'c'/'d'/'e'/'f', 1, 8); (tmp/'walk'/'.hidden').mkdir(); (tmp/'walk'/'z').mkdir()
(tmp/'walk'/'loop').symlink_to(tmp/'walk'/'a')                      # seen once, by its real path
w = BoundedWalk([tmp/'walk'])
folders = [f.relative_to(tmp/'walk').as_posix() for f, _ in w]
test_eq(folders[:4], ['.', 'a', 'z', 'a/b']); test_eq(folders[-1], 'a/b/c/d/e/f'); test_eq(w.stopped, None)
w = BoundedWalk([tmp/'walk'], max_entries=3)
test_eq(len(list(w)), 1); assert 'stopped after' in w.stopped

# %% [markdown]
# What a folder is for follows from its name and its parent's: `train/GT` (or `train/HQ`, `train/HR`, `train_GT`, a
# bare `train`) holds HQ training faces, `val/GT` and `val/LQ` (also `valid`, `validation`, `LR`) the validation
# pairs, `test/LQ` (or a bare `test`) the test faces. A bare `val` says neither GT nor LQ, so it is no candidate.

# %%
#| export
import re

ROLES = {'train_hq': 'HQ training faces: train/GT, train/HQ, train/HR or a folder named train',
         'val_gt': 'validation GT: val/GT (or val/HQ, valid/GT, validation/GT)',
         'val_lq': 'validation LQ: val/LQ (or val/LR)',
         'test_lq': 'test LQ: test/LQ (or test/LR, or a folder named test)'}
_SPLITS = {'train': 'train', 'training': 'train', 'val': 'val', 'valid': 'val', 'validation': 'val', 'test': 'test', 'testing': 'test'}
_QUALITY = {'gt': 'hq', 'hq': 'hq', 'hr': 'hq', 'lq': 'lq', 'lr': 'lq'}


def folder_role(folder: PathLike) -> str | None:
    "'train_hq', 'val_gt', 'val_lq', 'test_lq' or None, from the names of `folder` and its parent."
    words = [w for w in re.split(r'[^a-z0-9]+', Path(folder).name.lower()) if w]
    parent = _SPLITS.get(Path(folder).parent.name.lower())
    split = _SPLITS.get(words[0]) if words else None
    quality = _QUALITY.get(words[-1]) if words else None
    split = split or parent
    if quality is None and words in (['train'], ['training']): quality = 'hq'
    if quality is None and words in (['test'], ['testing']): quality = 'lq'
    role = {('train', 'hq'): 'train_hq', ('val', 'hq'): 'val_gt', ('val', 'lq'): 'val_lq', ('test', 'lq'): 'test_lq'}
    return role.get((split, quality))


# %%
#| exec_doc
{p: folder_role(p) for p in ('data/train/GT', 'faces/train', 'x/valid/HQ', 'x/val/LQ', 'test_LR', 'x/val', 'x/test/GT')}

# %%
#| hide
test_eq([folder_role(p) for p in ('x/train/GT', 'x/train/HQ', 'train_GT', 'x/train', 'x/Training/hr')], ['train_hq'] * 5)
test_eq([folder_role(p) for p in ('x/val/GT', 'x/valid/HQ', 'x/val/LQ', 'x/validation/LR', 'val_lq')],
        ['val_gt', 'val_gt', 'val_lq', 'val_lq', 'val_lq'])
test_eq([folder_role(p) for p in ('x/test/LQ', 'x/test', 'test_LR')], ['test_lq'] * 3)
test_eq([folder_role(p) for p in ('x/val', 'x/GT', 'faces/LQ', 'x/train/LQ', 'x/test/GT')], [None] * 5)


# %% [markdown]
# A folder named for a role is a candidate when it holds at least `min_images` images of one size (a sample of
# their headers is read, not the images). When two candidates compete for a role, the one with more images wins,
# then (for `val_lq`) the sibling of the chosen `val_gt`, then the shallower, then the first by path — and
# `DataPaths.notes` says which was picked and why. When something is missing, `require` lists what the search saw
# under each root (two levels) and what it expected, so a dataset laid out some other way is fixed in one go.

# %%
#| export
def image_size(path: PathLike) -> tuple[int, int]:
    "(width, height) of an image file, from its header."
    from PIL import Image
    with Image.open(path) as im: return im.size


def folder_listing(root: PathLike,  # a folder
                   levels: int = 2,  # how deep to list
                   max_lines: int = 40,
                  ) -> list[str]:  # lines like 'datasets/alice/ (2 folders, 0 files)'
    "What is under `root`, `levels` deep: folders with their counts of subfolders and files."
    root, lines = Path(root), []
    if not root.is_dir(): return [f'{root} does not exist']
    def walk(d, depth):
        try: kids = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as e: lines.append(f'{d.relative_to(root)}: unreadable ({e})'); return
        for k in kids:
            if not k.is_dir() or len(lines) >= max_lines: continue
            try: sub = list(os.scandir(k.path))
            except OSError: sub = []
            n_dirs, n_files = sum(s.is_dir() for s in sub), sum(not s.is_dir() for s in sub)
            lines.append(f'{Path(k.path).relative_to(root).as_posix()}/ ({n_dirs} folder{"s" * (n_dirs != 1)}, '
                         f'{n_files} file{"s" * (n_files != 1)})')
            if depth + 1 < levels: walk(Path(k.path), depth + 1)
    walk(root, 0)
    if len(lines) >= max_lines: lines.append('…')
    return lines or ['(empty)']


@dataclass
class DataPaths:
    "Where the course data is; None for what was not found."
    train_hq: Path | None = None
    val_gt: Path | None = None
    val_lq: Path | None = None
    test_lq: Path | None = None
    searched: tuple = ()     # the roots searched
    notes: tuple = ()        # which folder was picked for a role and why, folders passed over, a search cut short
    unnamed: tuple = ()      # folders of images named for no role (shown when something is missing)

    def require(self, *names: str) -> 'DataPaths':
        "Self, or FileNotFoundError naming what is missing, what was seen under each root and what was expected."
        missing = [n for n in names if getattr(self, n) is None]
        if not missing: return self
        seen = []
        for r in self.searched:
            seen += [f'  seen under {r} (two levels):'] + [f'    {l}' for l in folder_listing(r)]
        raise FileNotFoundError('\n'.join(
            [f'could not find {", ".join(missing)} under {", ".join(map(str, self.searched)) or "(no roots)"}.',
             'Expected folders of same-size images named like:'] + [f'  {n}: {ROLES[n]}' for n in missing] + seen +
            [f'  note: {n}' for n in self.notes] + [f'  also seen, named for no role: {u}' for u in self.unnamed] +
            ['Lay the dataset out as train/GT, val/GT + val/LQ, test/LQ (any depth), or pass the folders explicitly.']))

    def report(self) -> str:
        "One line per role (folder and image count), then the notes."
        lines = [f'{k:9} {getattr(self, k)}' + (f' ({len(list_images(getattr(self, k)))} images)' if getattr(self, k) else '')
                 for k in ROLES]
        return '\n'.join(lines + [f'note: {n}' for n in self.notes])


def _candidate(folder: Path, files: list[str], min_images: int, sample: int = 8):
    "(n images, (w, h)) if `folder` holds at least min_images images of one size; None if it holds no images; else why not."
    images = [f for f in files if Path(f).suffix.lower() in IMAGE_EXTS]
    if not images: return None                                   # a folder of folders (e.g. train/ above train/GT)
    if len(images) < min_images: return f'{folder}: {len(images)} image(s), fewer than {min_images}'
    k = min(sample, len(images))                                 # the first, the last and evenly spaced ones between
    picks = sorted({images[round(i * (len(images) - 1) / max(1, k - 1))] for i in range(k)})
    try: sizes = {image_size(folder / f) for f in picks}
    except (OSError, ValueError) as e: return f'{folder}: unreadable images ({type(e).__name__}: {e})'
    if len(sizes) > 1: return f'{folder}: images of different sizes ({", ".join(f"{w}x{h}" for w, h in sorted(sizes))})'
    return len(images), sizes.pop()


def find_data(roots: Sequence[PathLike] | None = None,  # default: /kaggle/input, then ./data
              min_images: int = 2,  # a candidate folder holds at least this many images, all of one size
              max_entries: int = SEARCH_MAX_ENTRIES,  # bounds of the search (see BoundedWalk)
              max_seconds: float = SEARCH_MAX_SECONDS,
             ) -> DataPaths:
    "Locate train HQ, val GT/LQ and test LQ folders by what they hold and how they are named, at any depth."
    roots = [Path(r) for r in (roots or ['/kaggle/input', 'data'])]
    walk = BoundedWalk(roots, max_entries, max_seconds)
    cands, notes, unnamed = {k: [] for k in ROLES}, [], []
    for folder, files in walk:
        role = folder_role(folder)
        if role is None:
            n = sum(Path(f).suffix.lower() in IMAGE_EXTS for f in files)
            if n and len(unnamed) < 10: unnamed.append(f'{folder} ({n} images)')
            continue
        c = _candidate(folder, files, min_images)
        if c is None: continue
        if isinstance(c, str): notes.append(f'passed over {c}'); continue
        cands[role].append((folder, *c))
    if walk.stopped: notes.append(f'the search {walk.stopped}; pass the folders explicitly if they were not found')
    picked = {}
    for role in ROLES:
        cs = cands[role]
        if not cs: continue
        gt = picked.get('val_gt')
        key = lambda c: (not (role == 'val_lq' and gt is not None and c[0].parent == gt.parent), -c[1], len(c[0].parts), str(c[0]))
        cs.sort(key=key)
        picked[role] = cs[0][0]
        if len(cs) > 1:
            best, nxt = cs[0], cs[1]
            why = ('the sibling of val_gt' if key(best)[0] != key(nxt)[0] else
                   f'more images ({best[1]} vs {nxt[1]})' if best[1] != nxt[1] else
                   f'a tie on {best[1]} images: the shallower' if len(best[0].parts) != len(nxt[0].parts) else
                   f'a tie on {best[1]} images at one depth: the first by path')
            notes.append(f'{role}: picked {best[0]} ({best[1]} images, {best[2][0]}x{best[2][1]}) of {len(cs)} candidates, '
                         f'as {why}; also {", ".join(str(c[0]) for c in cs[1:4])}' + (' …' if len(cs) > 4 else ''))
    return DataPaths(**picked, searched=tuple(roots), notes=tuple(notes), unnamed=tuple(unnamed))


# %%
show_doc(DataPaths.require)

# %%
show_doc(DataPaths.report)

# %% [markdown]
# The layouts Kaggle has used: the old one (`/kaggle/input/<slug>/train/GT`) and the new one, where the dataset
# sits under `datasets/<owner>/<slug>/` and an uploaded zip's top folder adds a level. Both are found:

# %%
#| exec_doc
layouts = {tmp/'old'/'input': 'ai6126-faces',                                   # /kaggle/input/<slug>/…
           tmp/'new'/'input': 'datasets/alice/ai6126-faces/ai6126-data'}        # …/datasets/<owner>/<slug>/<zip top>/…
for root, rel in layouts.items():
    top = root/rel
    make_faces(top/'train'/'GT', 4, 32); make_faces(top/'val'/'GT', 2, 32); make_faces(top/'val'/'LQ', 2, 8)
    make_faces(top/'test'/'LQ', 2, 8)
    dp = find_data([root, tmp/'no-data'])
    test_eq((dp.train_hq.relative_to(top), dp.val_gt.relative_to(top), dp.val_lq.relative_to(top), dp.test_lq.relative_to(top)),
            (Path('train/GT'), Path('val/GT'), Path('val/LQ'), Path('test/LQ')))
    test_eq(dp.notes, ())
print(dp.report().replace(str(tmp), '…'))

# %% [markdown]
# Two candidates for a role: the bigger one wins, and the note says so; on a tie the note says how it was broken.
# Folders with one image, or images of different sizes, are passed over (and named in the notes).

# %%
#| hide
two = tmp/'two'
make_faces(two/'a'/'train'/'GT', 3, 32); make_faces(two/'b'/'train'/'HQ', 5, 32)
make_faces(two/'a'/'val'/'GT', 2, 32); make_faces(two/'a'/'val'/'LQ', 2, 8); make_faces(two/'b'/'val'/'LQ', 2, 8)
make_faces(two/'c'/'test'/'LQ', 1, 8); make_faces(two/'d'/'test'/'LQ', 2, 8); make_faces(two/'d'/'test'/'LQ', 1, 16, start=5)
dp = find_data([two])
test_eq((dp.train_hq, dp.val_lq, dp.test_lq), (two/'b'/'train'/'HQ', two/'a'/'val'/'LQ', None))
for frag in ('train_hq: picked', 'more images (5 vs 3)', 'val_lq: picked', 'the sibling of val_gt', 'fewer than 2', 'different sizes (8x8, 16x16)'):
    assert any(frag in n for n in dp.notes), (frag, dp.notes)
make_faces(two/'e'/'train'/'GT', 5, 32)
assert any('a tie on 5 images at one depth: the first by path' in n for n in find_data([two]).notes)

# %% [markdown]
# Nothing usable: the error lists what is there (two levels under each root) and what was expected.

# %%
#| exec_doc
junk = tmp/'junk'/'input'
make_faces(junk/'datasets'/'alice'/'faces'/'GT', 3, 32); (junk/'notebooks'/'alice').mkdir(parents=True)   # GT of what?
try: find_data([junk]).require('train_hq', 'test_lq')
except FileNotFoundError as e: msg = str(e)
print(msg.replace(str(tmp), '…'))

# %%
#| hide
for frag in ('could not find train_hq, test_lq', 'train_hq: HQ training faces: train/GT', 'datasets/alice/ (1 folder, 0 files)',
             'notebooks/ (1 folder, 0 files)', f"named for no role: {junk/'datasets'/'alice'/'faces'/'GT'} (3 images)"):
    assert frag in msg, frag
test_fail(lambda: find_data([tmp/'nowhere']).require('train_hq'), contains='does not exist')

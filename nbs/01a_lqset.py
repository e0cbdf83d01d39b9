# %% [markdown]
# # LQ sets on disk
# > `blindsr_degrade`: a folder of HQ faces becomes a val/test-like LQ folder, each face degraded as a function of the preset, the seed, its file stem and its pixels only, with `degradation.json` saying how; and a contact sheet of what a preset does to faces.

# %% [markdown]
# Use it to make a validation or test set like the organisers': `blindsr_degrade data/val/GT runs/val_LQ --seed 0`
# degrades every HQ face of a folder into a 4× smaller LQ face of the same name, reproducibly, and
# `contact_sheet(faces, preset)` shows what a preset does to a few faces.

# %%
#| default_exp lqset

# %%
#| export
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import threading
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from blindsr.cli import HelpFormatter, check_output_dir, examples, non_negative_int, positive_int, run_cli, worker_count
from blindsr.core import PathLike, list_images, read_image, read_image_size, write_png
from blindsr.degradation import PRESETS, DegParams, DegradationConfig, check_hq_size, degrade_image, get_preset, sample

# %%
#| hide
import shutil
import subprocess
import sys
import tempfile

from fastcore.test import test_eq, test_fail, test_ne
from blindsr.lqset import degrade_cli as packaged_degrade_cli     # the package's copy: worker processes import from it
from blindsr.samples import sample_faces, synthetic_faces

tmp = Path(tempfile.mkdtemp())


# %% [markdown]
# Training makes its LQ on the fly (`blindsr.degradation`); validation and test sets are folders: HQ faces on one
# side, their LQ on the other, paired by file stem (`00042.png` ↔ `00042.png`), as the course hands them out.
# `blindsr_degrade HQ_DIR OUT_DIR --preset ai6126_2024 --seed 0` makes such a folder from any HQ faces.
#
# An LQ set is only useful if it can be trusted later: rerun, resumed after an interruption, grown by a few
# faces, or remade on another machine, the LQ of `00042` must be the same file, and the parameters written beside
# it must describe it. So each face's degradation is drawn from its own generator, seeded by the seed and the
# face's stem — not by its position in the folder — and `degradation.json` records, per stem, the parameters
# and a fingerprint of the HQ file they were applied to.

# %% [markdown]
# ## One face, one generator
#
# The generator of a face is `numpy.random.default_rng([seed, stem_seed(stem)])`, where `stem_seed` is the first 8
# bytes of the stem's SHA-256: stable across processes, machines and Python versions (Python's own `hash()` of a
# string changes with every process).

# %%
#| export
def stem_seed(stem: str,  # a file stem, e.g. '00042'
             ) -> int:  # an unsigned 64-bit integer
    "A stable integer for a file stem: the first 8 bytes of its UTF-8 SHA-256, big-endian."
    return int.from_bytes(hashlib.sha256(stem.encode('utf-8')).digest()[:8], 'big')


def face_params(preset: str | DegradationConfig,  # a preset or its name
                seed: int,  # the LQ set's seed
                stem: str,  # the face's file stem
               ) -> DegParams:  # one face's parameters (length 1)
    "The degradation parameters of one face of an LQ set: a function of (preset, seed, stem) only."
    return sample(get_preset(preset), np.random.default_rng([seed, stem_seed(stem)]), 1)


# %%
print(stem_seed('00042'), face_params('ai6126_2024', 0, '00042').caption(0))
test_eq(stem_seed('00042'), 0xbe9c43d5e24b5306)                                  # pinned: never changes
test_eq(face_params('ai6126_2024', 0, '00042').records(), face_params('ai6126_2024', 0, '00042').records())
test_ne(face_params('ai6126_2024', 0, '00042').records(), face_params('ai6126_2024', 0, '00043').records())
test_ne(face_params('ai6126_2024', 0, '00042').records(), face_params('ai6126_2024', 1, '00042').records())

# %% [markdown]
# ## Making an LQ set: `blindsr_degrade`
#
# `degrade_folder` degrades every image of `hq_dir` into `out_dir/<stem>.png` (a quarter of the size), in parallel
# processes for large folders, and writes `degradation.json` first: the preset, the seed, the preset's whole
# configuration, and per stem the HQ file's name and SHA-256 and the parameters drawn for it. Rerunning into the
# same folder resumes: faces whose LQ exists are skipped, the others are made, new faces in `hq_dir` are added.
# A rerun is refused — one line naming the folder and what to do — whenever the folder's LQ would stop matching
# what it records: another preset or seed, another definition of the preset, a face whose HQ file changed, faces
# the folder holds that `hq_dir` no longer has (it was made from other faces), image files with no
# `degradation.json`, or two input files with one stem (`00001.png` and `00001.jpg` would both become
# `00001.png`). `--overwrite` remakes the folder instead.
#
# A folder made before parameters were drawn per stem (no `format` in its `degradation.json`) is accepted as it is
# when it is complete for the same faces, preset and seed — a training run's validation LQ made by an older
# blindsr still resumes — and otherwise refused.

# %%
#| export
LQSET_FORMAT = 2     # degradation.json: 2 = parameters drawn per stem, HQ SHA-256 recorded (none: by position)


def file_sha256(path: PathLike) -> str:
    "Hex SHA-256 of a file's bytes."
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''): h.update(block)
    return h.hexdigest()


def _unique_stems(files: list[Path], hq_dir: PathLike) -> dict[str, Path]:
    "stem -> file; two files with one stem would write one LQ file, so they are an error naming both."
    by_stem: dict[str, Path] = {}
    for f in files:
        if f.stem in by_stem:
            raise ValueError(f'{hq_dir} holds two images with the stem {f.stem!r} ({by_stem[f.stem].name} and {f.name}), '
                             f'whose LQ would both be {f.stem}.png; remove or rename one')
        by_stem[f.stem] = f
    return by_stem


def _check_resume(old: dict, out_dir: Path, hq_dir: PathLike, cfg: DegradationConfig, seed: int,
                  images: dict[str, dict]) -> None:
    "Refuse (FileExistsError) to add to `out_dir` unless everything it records still holds for these faces."
    fix = 'use another folder, or --overwrite to remake it'
    if (old.get('preset'), old.get('seed')) != (cfg.name, seed):
        raise FileExistsError(f"{out_dir} holds LQ made with preset {old.get('preset')!r}, seed {old.get('seed')}; {fix}")
    if old.get('config') != json.loads(json.dumps(asdict(cfg))):
        raise FileExistsError(f'{out_dir} was made with another definition of preset {cfg.name!r} '
                              f'(the config in its degradation.json differs); {fix}')
    recorded = old.get('images', {})
    gone = sorted(set(recorded) - set(images))
    if gone:
        raise FileExistsError(f'{out_dir} holds LQ of {len(gone)} face(s) that are not in {hq_dir} (e.g. {gone[0]}): '
                              f'it was made from other faces; {fix}')
    for stem in sorted(set(recorded) & set(images)):
        if recorded[stem].get('hq_sha256') != images[stem]['hq_sha256']:
            raise FileExistsError(f"{out_dir}: the LQ of {stem} was made from another {stem} HQ file than "
                                  f"{Path(hq_dir) / images[stem]['hq']} (SHA-256 differs); {fix}")
        if recorded[stem].get('params') != images[stem]['params']:
            raise FileExistsError(f'{out_dir}: the parameters recorded for {stem} are not what this blindsr draws for it '
                                  f'(made by another version); {fix}')


def _accept_legacy(old: dict, out_dir: Path, cfg: DegradationConfig, seed: int, stems: list[str]) -> None:
    "A folder made by position (no format) is used as it is if complete for these stems, preset and seed; else refused."
    complete = ((old.get('preset'), old.get('seed')) == (cfg.name, seed) and set(old.get('images', {})) == set(stems)
                and all((out_dir / f'{s}.png').exists() for s in stems))
    if not complete:
        raise FileExistsError(f'{out_dir} was made by an older blindsr (parameters drawn by position) for other faces, '
                              f'preset or seed, or is incomplete; use another folder, or --overwrite to remake it')
    warnings.warn(f'{out_dir}: LQ made by an older blindsr (parameters drawn by position); used as it is, '
                  f'without checking that the HQ files are unchanged')


def _write_json(path: Path, obj) -> None:
    "Write JSON atomically (temporary file, then rename), so an interrupted run never leaves half a file."
    tmp_path = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    tmp_path.write_text(json.dumps(obj, indent=1))
    os.replace(tmp_path, path)


def _worker_init():
    "Each worker process uses one thread (the pool provides the parallelism) and leaves Ctrl-C to the main process."
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # a terminal's Ctrl-C reaches the whole group: one message, not one per worker
    cv2.setNumThreads(1); torch.set_num_threads(1)


def _check_hq_file(f: Path) -> None:
    "An HQ file's header and structure, and its size (sides divisible by 4), checked without decoding it."
    w, h = read_image_size(f)
    try: check_hq_size(h, w)
    except ValueError as e: raise ValueError(f'{f}: {e}') from None


def _degrade_file(job):
    src, dst, params = job
    hq = read_image(src)
    try: lq = degrade_image(hq, params)
    except ValueError as e: raise ValueError(f'{src}: {e}') from None
    write_png(dst, lq)
    return dst


def degrade_folder(hq_dir: PathLike,  # folder of HQ images (png/jpg/webp/bmp), sides divisible by 4, one per stem
                   out_dir: PathLike,  # where the LQ PNGs go (created)
                   preset: str = 'ai6126_2024',
                   seed: int = 0,
                   workers: int | None = None,  # processes (>= 1); default all cores (one process below 48 images)
                   overwrite: bool = False,  # remake a folder that does not match these faces, preset and seed
                   progress: bool = True,
                  ) -> list[Path]:  # the LQ files, in name order
    "Degrade every image of `hq_dir` into `out_dir/<stem>.png`, each face with its own draw (resumable, parallel)."
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
    from tqdm.auto import tqdm
    cfg = get_preset(preset)
    if workers is not None and workers < 1: raise ValueError(f'workers must be a number of processes >= 1, got {workers}')
    if seed < 0: raise ValueError(f'seed must be a whole number >= 0, got {seed}')
    files = _unique_stems(list_images(hq_dir), hq_dir)
    if Path(out_dir).resolve() == Path(hq_dir).resolve():
        raise ValueError(f'the LQ folder {out_dir} is the HQ folder: the LQ would replace the faces; choose another folder')
    with ThreadPoolExecutor(8) as ex: list(ex.map(_check_hq_file, files.values()))   # a bad face stops us before any write
    out_dir = Path(out_dir); out_dir.mkdir(parents=True, exist_ok=True)
    meta_path = out_dir / 'degradation.json'
    outs = {stem: out_dir / f'{stem}.png' for stem in files}
    old = json.loads(meta_path.read_text()) if meta_path.exists() else None
    if old is None and not overwrite and any(p.suffix.lower() == '.png' for p in out_dir.iterdir()):
        raise FileExistsError(f'{out_dir} holds images but no degradation.json (not made by blindsr_degrade); '
                              f'use another folder, or --overwrite to remake it')
    if old is not None and 'format' not in old and not overwrite:
        _accept_legacy(old, out_dir, cfg, seed, list(files))
        return [outs[s] for s in sorted(outs)]
    params = {stem: face_params(cfg, seed, stem) for stem in files}
    images = {stem: {'hq': f.name, 'hq_sha256': file_sha256(f), 'params': params[stem].records()[0]}
              for stem, f in sorted(files.items())}
    if old is not None and not overwrite: _check_resume(old, out_dir, hq_dir, cfg, seed, images)
    if old is not None and overwrite:                          # LQ the new record would not describe
        for stem in set(old.get('images', {})) - set(files): (out_dir / f'{stem}.png').unlink(missing_ok=True)
    _write_json(meta_path, {'format': LQSET_FORMAT, 'preset': cfg.name, 'seed': seed, 'hq_dir': str(Path(hq_dir).resolve()),
                            'config': asdict(cfg), 'images': images})
    todo = [(files[s], outs[s], params[s]) for s in sorted(files) if overwrite or not outs[s].exists()]
    if workers is None: workers = 1 if len(todo) < 48 else (os.cpu_count() or 1)   # a process costs ~3 s to start
    workers = max(1, min(workers, len(todo) or 1))
    bar = dict(total=len(todo), desc=f'degrade ({cfg.name})', unit='img', disable=not progress)
    if workers == 1:
        for job in tqdm(todo, **bar): _degrade_file(job)
    else:
        import multiprocessing as mp
        from blindsr import lqset as mod    # fresh (spawned) workers import the job from the package
        # spawn, not fork: a forked child of a process whose OpenMP/CUDA runtime is initialised can deadlock
        ex = ProcessPoolExecutor(workers, mp_context=mp.get_context('spawn'), initializer=mod._worker_init)
        main = threading.current_thread() is threading.main_thread()
        old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None   # the workers start (in map) ignoring Ctrl-C
        try: results = ex.map(mod._degrade_file, todo, chunksize=4)
        finally:
            if main: signal.signal(signal.SIGINT, old)
        try:
            for _ in tqdm(results, **bar): pass
        except BaseException:                 # Ctrl-C or a bad face: drop the queued faces instead of finishing them
            ex.shutdown(wait=True, cancel_futures=True); raise
        ex.shutdown()
    return [outs[s] for s in sorted(outs)]


# %%
#| export
def lqset_files(out_dir: PathLike) -> set[str]:
    "The file names an earlier blindsr_degrade wrote in `out_dir` (degradation.json and the LQ of its recorded stems)."
    try: meta = json.loads((Path(out_dir) / 'degradation.json').read_text())
    except (OSError, ValueError): return set()
    return {'degradation.json'} | {f'{stem}.png' for stem in (meta.get('images') or {})}


def degrade_parser() -> argparse.ArgumentParser:
    "The flags of blindsr_degrade."
    ap = argparse.ArgumentParser(
        prog='blindsr_degrade', formatter_class=HelpFormatter,
        description='Make an LQ set from a folder of HQ faces: every face degraded by a preset of the course\'s pipeline\n'
                    'to 1/4 of its size, saved as OUT_DIR/<stem>.png, with OUT_DIR/degradation.json recording the preset,\n'
                    'the seed and each face\'s parameters. Each face\'s degradation depends only on the preset, the seed,\n'
                    'its file stem and its pixels. Rerunning the same command resumes an interrupted run.',
        epilog=examples(('a val-like LQ set of the course\'s 2024 pipeline from 512x512 faces',
                         'blindsr_degrade data/val/GT data/val/LQ_mine --preset ai6126_2024 --seed 0'),
                        ('remake a folder with another seed (only the LQ files and degradation.json are replaced)',
                         'blindsr_degrade data/val/GT data/val/LQ_mine --seed 1 --overwrite'),
                        note='Exit status: 0 done; 2 a mistake (named on one line); 130 interrupted (rerun to resume).'))
    g = ap.add_argument_group('folders')
    g.add_argument('hq_dir', metavar='HQ_DIR', help='folder of HQ faces (.png .jpg .jpeg .webp .bmp), sides divisible by 4 '
                                                    'and at least 64 px, one file per stem')
    g.add_argument('out_dir', metavar='OUT_DIR', help='where the LQ PNGs and degradation.json go (created); not HQ_DIR, '
                                                      'not inside it, and empty or made by blindsr_degrade')
    g.add_argument('--overwrite', action='store_true',
                   help='write into OUT_DIR although it holds other files, or was made with another preset, seed or '
                        'faces: replaces only the LQ files and degradation.json (default: refuse)')
    g = ap.add_argument_group('degradation')
    g.add_argument('--preset', default='ai6126_2024', choices=sorted(PRESETS), metavar='NAME',
                   help=f'the degradation pipeline, one of {", ".join(sorted(PRESETS))} (default: ai6126_2024, the '
                        "course's 2024 pipeline)")
    g.add_argument('--seed', type=non_negative_int, default=0, metavar='N',
                   help='seed of the per-face draws, a whole number >= 0; the same seed gives the same files (default: 0)')
    g = ap.add_argument_group('speed')
    g.add_argument('--workers', type=worker_count, default=None, metavar='N',
                   help='processes, from 1 to 4 x the CPU cores (default: all cores; one process below 48 faces)')
    return ap


def degrade_cli(argv: list[str] | None = None) -> int:
    "blindsr_degrade HQ_DIR OUT_DIR: make an LQ set (same stems, PNG, 1/4 size) from a folder of HQ faces."
    a = degrade_parser().parse_args(argv)
    def body():
        recorded = lqset_files(a.out_dir)              # what an earlier run wrote there: a rerun resumes it
        check_output_dir(a.out_dir, [a.hq_dir], own=lambda p: p.name in recorded, overwrite=a.overwrite, flag='OUT_DIR')
        outs = degrade_folder(a.hq_dir, a.out_dir, a.preset, a.seed, a.workers, a.overwrite)
        print(f'{len(outs)} LQ images ({a.preset}, seed {a.seed}) in {a.out_dir}')
    return run_cli('blindsr_degrade', body)


# %% [markdown]
# Three generated 64×64 faces become three 16×16 LQ, and `degradation.json` says how each was made:

# %%
#| exec_doc
synthetic_faces(tmp/'hq', 3, 64, seed=0)
test_eq(degrade_cli([str(tmp/'hq'), str(tmp/'lq'), '--seed', '1', '--workers', '1']), 0)
meta = json.loads((tmp/'lq'/'degradation.json').read_text())
print({k: v for k, v in meta.items() if k not in ('config', 'images')})
print('00001:', {k: v for k, v in meta['images']['00001'].items() if k != 'params'}, face_params('ai6126_2024', 1, '00001').caption(0))

# %%
test_eq([read_image(p).shape for p in list_images(tmp/'lq')], [(16, 16, 3)] * 3)
test_eq((meta['format'], meta['preset'], meta['seed'], sorted(meta['images'])), (2, 'ai6126_2024', 1, ['00000', '00001', '00002']))
test_eq(meta['images']['00001']['params'], face_params('ai6126_2024', 1, '00001').records()[0])
test_eq(meta['images']['00001']['hq_sha256'], file_sha256(tmp/'hq'/'00001.png'))
lq_bytes = {p.name: p.read_bytes() for p in list_images(tmp/'lq')}
# with 2 worker processes into another folder: the same bytes (the workers import this code from the package, so
# here we call the package's command)
test_eq(packaged_degrade_cli([str(tmp/'hq'), str(tmp/'lq2'), '--seed', '1', '--workers', '2']), 0)
test_eq({p.name: p.read_bytes() for p in list_images(tmp/'lq2')}, lq_bytes)

# %% [markdown]
# A face's LQ depends on its stem and pixels, not on which other faces share the folder or where it sorts: the
# face `00001` alone, beside a new face that sorts before it, gives the same LQ file.

# %%
(tmp/'few').mkdir()
shutil.copyfile(tmp/'hq'/'00001.png', tmp/'few'/'00001.png')
synthetic_faces(tmp/'new', 1, 64, seed=9); shutil.copyfile(tmp/'new'/'00000.png', tmp/'few'/'0000.png')
degrade_folder(tmp/'few', tmp/'lq_few', seed=1, progress=False)
test_eq((tmp/'lq_few'/'00001.png').read_bytes(), lq_bytes['00001.png'])

# %% [markdown]
# Resuming: a missing LQ is made again (the same bytes), a face added to the HQ folder is added to the set, and
# everything that would make the folder lie is refused with one line that names the folder.

# %%
#| hide
(tmp/'lq'/'00002.png').unlink()
degrade_folder(tmp/'hq', tmp/'lq', seed=1, progress=False)
test_eq((tmp/'lq'/'00002.png').read_bytes(), lq_bytes['00002.png'])
shutil.copyfile(tmp/'new'/'00000.png', tmp/'hq'/'00003.png')                  # the HQ set grew by one face
test_eq(len(degrade_folder(tmp/'hq', tmp/'lq', seed=1, progress=False)), 4)
test_eq(sorted(json.loads((tmp/'lq'/'degradation.json').read_text())['images']), ['00000', '00001', '00002', '00003'])
test_eq({p.name: p.read_bytes() for p in list_images(tmp/'lq') if p.name != '00003.png'}, lq_bytes)

# %%
#| hide
test_eq(degrade_cli([str(tmp/'hq'), str(tmp/'lq'), '--seed', '2']), 2)                         # another seed
test_fail(lambda: degrade_folder(tmp/'hq', tmp/'lq', 'ai6126_2023', seed=1, progress=False), contains='ai6126_2024')
test_fail(lambda: degrade_folder(tmp/'few', tmp/'lq', seed=1, progress=False), contains='made from other faces')
shutil.copytree(tmp/'hq', tmp/'hq_changed')
shutil.copyfile(tmp/'new'/'00000.png', tmp/'hq_changed'/'00001.png')            # same stem, other face
test_fail(lambda: degrade_folder(tmp/'hq_changed', tmp/'lq', seed=1, progress=False), contains='LQ of 00001')
shutil.copyfile(tmp/'hq'/'00001.png', tmp/'hq_changed'/'00001.jpg')             # two files, one stem
test_fail(lambda: degrade_folder(tmp/'hq_changed', tmp/'elsewhere', progress=False), contains='00001.jpg and 00001.png')
write_png(tmp/'foreign'/'00000.png', np.zeros((16, 16, 3), np.uint8))           # LQ nobody recorded
test_fail(lambda: degrade_folder(tmp/'hq', tmp/'foreign', progress=False), contains='no degradation.json')
test_fail(lambda: degrade_folder(tmp/'hq', tmp/'hq', overwrite=True, progress=False), contains='is the HQ folder')
test_eq(degrade_cli([str(tmp/'hq'), str(tmp/'hq'/'lq')]), 2)                                  # inside the HQ folder
write_png(tmp/'odd'/'x.png', np.zeros((66, 64, 3), np.uint8))
test_fail(lambda: degrade_folder(tmp/'odd', tmp/'lq3', progress=False), contains='x.png')

# %% [markdown]
# `--overwrite` remakes a folder for these faces: another seed, and the LQ of faces no longer in the HQ folder
# removed, so that `degradation.json` again describes every file.

# %%
test_eq(degrade_cli([str(tmp/'few'), str(tmp/'lq'), '--seed', '2', '--overwrite']), 0)
meta = json.loads((tmp/'lq'/'degradation.json').read_text())
test_eq((meta['seed'], sorted(meta['images'])), (2, ['0000', '00001']))
test_eq(sorted(p.name for p in list_images(tmp/'lq')), ['0000.png', '00001.png'])

# %% [markdown]
# A folder made by an older blindsr (parameters drawn by position, no `format`, no HQ fingerprints) is used as it
# is when complete — a training run resumes with the validation LQ it started with — and refused otherwise:

# %%
#| hide
synthetic_faces(tmp/'hq3', 3, 64, seed=0)
shutil.copytree(tmp/'lq2', tmp/'legacy')
legacy = {'preset': 'ai6126_2024', 'seed': 0, 'images': {'00000': {}, '00001': {}, '00002': {}}}
(tmp/'legacy'/'degradation.json').write_text(json.dumps(legacy))
before = {p.name: p.read_bytes() for p in list_images(tmp/'legacy')}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    degrade_folder(tmp/'hq3', tmp/'legacy', seed=0, progress=False)
test_eq({p.name: p.read_bytes() for p in list_images(tmp/'legacy')}, before)
assert 'older blindsr' in str(caught[0].message)
(tmp/'legacy'/'00002.png').unlink()
test_fail(lambda: degrade_folder(tmp/'hq3', tmp/'legacy', seed=0, progress=False), contains='older blindsr')


# %% [markdown]
# ## What the presets do to a face
#
# A contact sheet: each column pair is an HQ face and its LQ (nearest-upsampled so pixels show), with the sampled
# parameters as the caption. On a machine with the FFHQ sample faces (`$BLINDSR_FFHQ200`) the sheet uses them;
# elsewhere a public-domain portrait that scikit-image ships (the astronaut Eileen Collins).

# %%
#| export
def contact_sheet(hqs: Sequence[np.ndarray],  # (H, W, 3) uint8 HQ images
                  preset: str = 'ai6126_2024',
                  seed: int = 0,
                  path: PathLike | None = None,  # also save the figure here
                 ):
    "A matplotlib figure of HQ/LQ pairs under `preset`, each captioned with its sampled parameters."
    import matplotlib.pyplot as plt
    params = sample(preset, np.random.default_rng(seed), len(hqs))
    fig, axes = plt.subplots(2, len(hqs), figsize=(3.2 * len(hqs), 7.2), squeeze=False)
    for i, hq in enumerate(hqs):
        lq = degrade_image(hq, params[i])
        axes[0, i].imshow(hq); axes[1, i].imshow(lq, interpolation='nearest')
        axes[0, i].set_title(f'HQ {hq.shape[1]}×{hq.shape[0]}', fontsize=8)
        cap = params.caption(i)
        axes[1, i].set_title('\n'.join(cap[j:j + 38] for j in range(0, len(cap), 38)), fontsize=7)
        for a in axes[:, i]: a.axis('off')
    fig.suptitle(f'{preset} (seed {seed}): HQ (top) and LQ (bottom)', fontsize=10)
    fig.tight_layout()
    if path is not None: fig.savefig(path, dpi=80)
    return fig


# %%
#| exec_doc
faces = sample_faces(4, 256 if os.environ.get('IN_TEST') else 512)
for name in ('ai6126_2024', 'ai6126_2023'):                 # the course's two pipelines
    contact_sheet(faces, name, seed=0)

# %%
#| hide
for name in sorted(set(PRESETS) - {'ai6126_2024', 'ai6126_2023'}):   # every other preset draws too
    contact_sheet(faces, name, seed=0)

# %% [markdown]
# ## Against LQ that nobody here made
#
# The real test of a preset: degrade the 200 FFHQ faces of `../shared/data/ffhq200/gt` and compare with LQ made
# by others from the same faces — the organisers' own 2023 LQ, and the reference 2024 LQ made by BasicSR's and
# Real-ESRGAN's code. `../shared/tools/lq_fidelity.py` compares seven per-image statistics by the two-sample
# Kolmogorov–Smirnov distance; a preset passes when every distance is under the critical value (0.168 for 200 vs
# 200). Measured with each face's parameters drawn per stem (2026-11-29; `blindsr_degrade ../shared/data/ffhq200/gt
# OUT --preset P --seed S`, then `python ../shared/tools/lq_fidelity.py GT OUT REF`), and before that, drawn by
# position from one generator (2026-11-27): other draws of the same distribution, so other distances.
#
# | preset vs reference | seed | bicubic PSNR ours / theirs | worst KS (statistic) | verdict |
# |---|---|---|---|---|
# | `ai6126_2024` vs `lq2024-ref` | 0 | 25.93 / 25.99 dB | 0.100 (bias) | pass |
# | `ai6126_2024` vs `lq2024-ref` | 1 | 25.81 / 25.99 dB | 0.100 (sharpness) | pass |
# | `ai6126_2023` vs `lq2023` | 0 | 27.17 / 27.06 dB | 0.075 (chroma_corr) | pass |
# | `ai6126_2023` vs `lq2023` | 1 | 26.88 / 27.06 dB | 0.145 (psnr_lr) | pass |
# | `ai6126_2023` vs `lq2023` | 2 | 27.17 / 27.06 dB | 0.110 (bias) | pass |
# | by position: `ai6126_2024` vs `lq2024-ref` | 0 | 26.06 / 25.99 dB | 0.110 (sharpness) | pass |
# | by position: `ai6126_2023` vs `lq2023` | 0, 1, 2 | 27.32, 26.83, 27.05 / 27.06 dB | 0.160, 0.130, 0.135 | pass |
# | by position: `ai6126_2023`, scale uniform in 1/s instead of s | 1 | 24.64 / 27.06 dB | 0.460 | fail |
# | `ai6126_2024` through the torch backend (`sample` + `degrade_batch`, groups of 8) | 0 | | 0.165 (psnr_lr) | pass |
# | the same | 1 | | 0.095 (psnr_lr) | pass |
# | `ai6126_2024` through `degrade_batch`, one resize draw per batch of 16 (the trainer's setting) | 0 | | 0.160 (psnr_lr) | pass |
# | the same | 1 | | 0.130 (sharpness) | pass |
#
# The cell below repeats the check where the faces are present (it is `slow`: about a minute).

# %%
#| slow
ffhq = next((Path(r) for r in [os.environ.get('BLINDSR_FFHQ200', ''), '../shared/data/ffhq200', '../../shared/data/ffhq200']
             if r and Path(r, 'gt').is_dir()), None)
if ffhq is not None:
    tool = ffhq.parent.parent / 'tools' / 'lq_fidelity.py'
    for preset, ref in [('ai6126_2024', 'lq2024-ref'), ('ai6126_2023', 'lq2023')]:
        out = Path(tempfile.mkdtemp()) / preset
        degrade_folder(ffhq / 'gt', out, preset, seed=0, progress=False)
        res = json.loads(subprocess.run([sys.executable, str(tool), str(ffhq / 'gt'), str(out), str(ffhq / ref)],
                                        capture_output=True, text=True, check=True).stdout)
        print(preset, 'vs', ref, {k: v['ks'] for k, v in res['stats'].items()}, 'passed:', res['passed'])
        assert res['passed'], res

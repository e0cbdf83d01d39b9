# %% [markdown]
# # The CodaLab submission
# > `make_submission` restores the test LQ and writes the zip the leaderboard takes; `check_submission` checks any zip before it is uploaded; `blindsr_submit` does either from the command line.

# %% [markdown]
# Use it at the end: `blindsr_submit data/test/LQ submission.zip --ckpt runs/x/best.pt` restores the 400 test faces
# into the zip CodaLab takes, and `blindsr_submit --check submission.zip` tells you, before you upload, whether a zip
# made any other way would be scored.

# %%
#| default_exp submission

# %%
#| export
from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import signal
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Callable, Mapping, Sequence

from PIL import Image
from torch import nn

from blindsr.cli import HelpFormatter, UserError, check_output_dir, check_output_file, examples, positive_int, run_cli, write_manifest
from blindsr.core import PathLike, list_images, read_image_size
from blindsr.inference import CLI_ERRORS, add_generator_args, add_restore_args, generator_from_args, restore_files, restore_kwargs

# %%
#| hide
import math
import subprocess
from contextlib import redirect_stderr
import numpy as np
import torch
from fastcore.test import test_eq, test_fail
from blindsr.checkpoint import export_weights
from blindsr.core import write_png
from blindsr.metrics import evaluate
from blindsr.models import build_generator

tmp = Path(tempfile.mkdtemp())
rng = np.random.default_rng(0)

def png_bytes(w=512, h=512, mode='RGB'):
    buf = io.BytesIO(); Image.new(mode, (w, h)).save(buf, format='PNG'); return buf.getvalue()

def make_zip(path, members):
    with zipfile.ZipFile(path, 'w') as zf:
        for n, data in members.items(): zf.writestr(n, data)
    return path

def rand_imgs(folder, n, h=16, w=16, start=0):
    "n random uint8 RGB PNGs 00000.png … in `folder`."
    for i in range(start, start + n): write_png(Path(folder) / f'{i:05d}.png', rng.integers(0, 256, (h, w, 3), dtype=np.uint8))

torch.manual_seed(0)
net = build_generator('msrresnet', num_feat=8, num_block=1).eval().requires_grad_(False)   # tiny, random weights
export_weights(tmp/'w16.pt', net, 'msrresnet', {'num_feat': 8, 'num_block': 1}, {'val_psnr': 20.0}, half=True)   # a weights file to load

# %% [markdown]
# ## Checking a zip
#
# The leaderboard takes a zip holding exactly one folder of `00000.png … 00399.png`, each 512×512 RGB. A zip
# that breaks any of that can fail silently (a missing image, a file at the wrong level), so the layout is
# checked twice: the restored folder before zipping (count, names against the LQ stems, sizes), and the zip itself
# after. `check_submission` lists every problem at once.

# %%
#| export
SUBMISSION_NAME = re.compile(r'\d{5}\.png')   # 00000.png …


class SubmissionError(ValueError):
    "A submission (zip or folder) with the wrong layout; `.problems` lists every problem."
    def __init__(self, where, problems: list[str]):
        self.problems = list(problems)
        super().__init__(f'{where} is not a valid submission: ' + '; '.join(self.problems))   # one line, every problem


def _short(xs: Sequence[str], k: int = 10) -> str:
    xs = list(xs)
    return ', '.join(xs[:k]) + (f' … ({len(xs)} in all)' if len(xs) > k else '')


def _layout_problems(members: Mapping[str, Callable[[], bytes]],  # 'folder/00000.png' -> reads the bytes
                     n_expected: int | None, size: tuple[int, int], stems: Sequence[str] | None) -> list[str]:
    "Every problem with a submission's member list: structure, names, count, image size and mode."
    names = sorted(members)
    if not names: return ['it holds no files']
    problems = []
    root = [n for n in names if '/' not in n]
    tops = sorted({n.split('/')[0] for n in names if '/' in n})
    deep = [n for n in names if n.count('/') > 1]
    if root: problems.append(f'{len(root)} file(s) outside any folder ({_short(root)}); put all images in one folder')
    if len(tops) > 1: problems.append(f'{len(tops)} folders at the top ({_short(tops)}); the zip must hold exactly one')
    if deep: problems.append(f'{len(deep)} file(s) in subfolders ({_short(deep)}); the images go directly in the folder')
    flat = [n for n in names if n.count('/') == 1]
    bad = [n for n in flat if not SUBMISSION_NAME.fullmatch(n.split('/')[1])]
    if bad: problems.append(f'{len(bad)} badly named file(s) ({_short(bad)}); images are named 00000.png, 00001.png, …')
    good = {n.split('/')[1][:-4]: n for n in flat if SUBMISSION_NAME.fullmatch(n.split('/')[1])}
    if stems is not None: want = sorted(stems)
    elif n_expected is not None: want = [f'{i:05d}' for i in range(n_expected)]
    else: want = [f'{i:05d}' for i in range(max(map(int, good)) + 1)] if good else []
    if n_expected is not None and len(flat) != n_expected:
        problems.append(f'{len(flat)} file(s) in the folder, {n_expected} expected')
    missing, extra = sorted(set(want) - set(good)), sorted(set(good) - set(want))
    if missing: problems.append(f'{len(missing)} missing image(s): {_short([m + ".png" for m in missing])}')
    if extra: problems.append(f'{len(extra)} image(s) with no LQ input: {_short([good[e] for e in extra])}')
    wrong = []
    for stem in sorted(set(good) & set(want)):
        n = good[stem]
        try:
            with Image.open(io.BytesIO(members[n]())) as im:
                fmt, mode, sz = im.format, im.mode, im.size
                im.verify()
        except Exception as e:
            wrong.append(f'{n} (unreadable: {type(e).__name__})'); continue
        if fmt != 'PNG': wrong.append(f'{n} ({fmt}, not PNG)')
        elif sz != tuple(size): wrong.append(f'{n} ({sz[0]}x{sz[1]}, want {size[0]}x{size[1]})')
        elif mode != 'RGB': wrong.append(f'{n} (mode {mode}, want RGB)')
    if wrong: problems.append(f'{len(wrong)} image(s) of the wrong size or kind: {_short(wrong)}')
    return problems


def check_submission(zip_path: PathLike,  # the zip to upload
                     n_expected: int | None = None,  # number of images it must hold (400 for the course's test set)
                     size: tuple[int, int] = (512, 512),  # (width, height) of every image
                     stems: Sequence[str] | None = None,  # the LQ stems it must match (default: 00000 … n-1)
                    ) -> list[str]:  # the image members, sorted, when the zip is valid
    "Check a CodaLab submission zip: one folder, 00000.png … (no gaps), every image a size[0]×size[1] RGB PNG."
    path = Path(zip_path)
    if path.is_dir(): raise SubmissionError(path, ['it is a folder; the leaderboard takes a zip (blindsr_submit TEST_LQ OUT.zip writes one)'])
    if not path.is_file(): raise FileNotFoundError(f'submission not found: {path}')
    if not zipfile.is_zipfile(path): raise SubmissionError(path, ['it is not a zip archive'])
    try:
        with zipfile.ZipFile(path) as zf:
            members = {i.filename: (lambda n=i.filename: zf.read(n)) for i in zf.infolist() if not i.is_dir()}
            problems = _layout_problems(members, n_expected, size, stems)
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise SubmissionError(path, [f'it cannot be read as a zip ({type(e).__name__}: {e}); it may be truncated']) from e
    if problems: raise SubmissionError(path, problems)
    return sorted(members)


def check_folder(folder: PathLike,  # a folder of results, about to become the zip's one folder
                 stems: Sequence[str],  # the LQ stems it must match, one PNG each
                 size: tuple[int, int] = (512, 512),  # (width, height) of every image
                 files: Sequence[PathLike] | None = None,  # only these files of it (default: all but hidden ones)
                ) -> None:
    "The checks of `check_submission`, on a folder before it is zipped: nothing missing, extra, misnamed or missized."
    folder = Path(folder)
    paths = [Path(f) for f in files] if files is not None else [p for p in folder.iterdir() if not p.name.startswith('.')]
    members = {f'{folder.name}/{p.name}' + ('/…' if p.is_dir() else ''): p.read_bytes for p in paths}
    problems = _layout_problems(members, len(stems), size, stems)
    if problems: raise SubmissionError(folder, problems)


# %% [markdown]
# A zip of three 32×32 results put at its top level, without the folder, and expected to hold four, is refused with
# every problem named:

# %%
#| exec_doc
flat = {f'{i:05d}.png': png_bytes(32, 32) for i in range(3)}
try: check_submission(make_zip(tmp/'flat.zip', flat), 4, size=(32, 32))
except SubmissionError as e: print(e)

# %% [markdown]
# A good zip passes, and `blindsr_evaluate` reads it; each way of getting it wrong is caught and named:

# %%
#| hide
good = {f'results/{i:05d}.png': png_bytes(32, 32) for i in range(3)}
test_eq(check_submission(make_zip(tmp/'ok.zip', good), 3, size=(32, 32)), sorted(good))
test_eq(len(check_submission(tmp/'ok.zip', size=(32, 32))), 3)
cases = {
    'outside any folder': {n.split('/')[1]: d for n, d in good.items()},
    '2 folders at the top': {**good, '__MACOSX/results/._00000.png': b'x'},
    'in subfolders': {f'results/x/{i:05d}.png': png_bytes(32, 32) for i in range(3)},
    'badly named file(s) (results/0.png)': {**good, 'results/0.png': png_bytes(32, 32)},
    'missing image(s): 00001.png': {n: d for n, d in good.items() if '00001' not in n},
    '4 file(s) in the folder, 3 expected': {**good, 'results/00003.png': png_bytes(32, 32)},
    'results/00002.png (31x32, want 32x32)': {**good, 'results/00002.png': png_bytes(31, 32)},
    'results/00000.png (mode RGBA, want RGB)': {**good, 'results/00000.png': png_bytes(32, 32, 'RGBA')},
    'results/00001.png (unreadable': {**good, 'results/00001.png': b'\x89PNG\r\n\x1a\n???'},
}
for want, members in cases.items():
    test_fail(lambda: check_submission(make_zip(tmp/'bad.zip', members), 3, size=(32, 32)), contains=want)
test_fail(lambda: check_submission(make_zip(tmp/'bad.zip', {'results/00000.jpg': png_bytes(32, 32)}), size=(32, 32)),
          contains='badly named')
(tmp/'notzip.zip').write_bytes(b'hello')
test_fail(lambda: check_submission(tmp/'notzip.zip'), contains='not a zip archive')
try: check_submission(make_zip(tmp/'bad.zip', cases['outside any folder']), 4, size=(32, 32))
except SubmissionError as e: print(e); test_eq(len(e.problems), 3)

# %% [markdown]
# ## Writing the zip
#
# Every test LQ restored at 4× into one folder (named like the LQ), the folder checked, zipped without
# recompression (PNGs are compressed already), and the zip checked again before it replaces `zip_path`. The zip is
# written under a temporary name and renamed over `zip_path` only when whole and checked, so an interrupted or
# killed run never leaves half a zip under the final name (a previous good zip stays as it was).
#
# Restoring 400 faces takes minutes on a CPU, so `plan_submission` checks everything first: the LQ names and
# sizes (every LQ must be a quarter of `size`, or the results cannot be the size the leaderboard takes), the
# folder name, the zip's path (not inside TEST_LQ, not a folder, writable, not a file this command did not write)
# and the `keep` folder (the rules of every output folder: not in, around or inside TEST_LQ; holding only files
# blindsr_submit wrote unless `overwrite`).

# %%
#| export
ZIP_COMMENT = b'written by blindsr_submit'   # in every zip make_submission writes: a rerun may replace it


def is_submission_zip(path: PathLike) -> bool:
    "Is `path` a zip blindsr_submit wrote, or one shaped like a submission (one folder of 00000.png …)?"
    try:
        with zipfile.ZipFile(path) as zf:
            if zf.comment.startswith(ZIP_COMMENT): return True
            names = [n for n in zf.namelist() if not n.endswith('/')]
    except (OSError, zipfile.BadZipFile, EOFError): return False
    return bool(names) and all(re.fullmatch(r'[^/]+/\d{5}\.png', n) for n in names)


def plan_submission(test_lq: PathLike,  # folder of the test LQ images, 00000.png …
                    zip_path: PathLike,  # the zip to write
                    folder_name: str = 'results',  # the one folder inside the zip
                    size: tuple[int, int] = (512, 512),  # (width, height) every result must have
                    keep: PathLike | None = None,  # a folder to keep the restored PNGs in
                    overwrite: bool = False,  # replace a zip / write into a keep folder that this command did not write
                   ) -> list[Path]:  # the LQ files, in name order
    "Check everything a submission needs before any restoring; the LQ files to restore."
    if not folder_name or '/' in folder_name or '\\' in folder_name or folder_name.startswith('.'):
        raise UserError(f'--folder-name (folder_name) must be a plain folder name like results, got {folder_name!r}')
    w, h = size
    if w < 4 or h < 4 or w % 4 or h % 4:
        raise UserError(f'--size (size) must be a multiple of 4 (the results are 4x the LQ), got {w}x{h}')
    files = list_images(test_lq)
    odd = [f.name for f in files if not re.fullmatch(r'\d{5}', f.stem)]
    if odd: raise UserError(f'TEST_LQ {test_lq}: {len(odd)} LQ file(s) not named like 00000.png ({_short(odd)}); the '
                            'results keep the LQ names, and the leaderboard wants 00000.png …; rename them or move them out')
    sizes = {f: read_image_size(f) for f in files}                  # headers (and PNG structure): no decoding
    wrong = [f'{f.name} ({s[0]}x{s[1]})' for f, s in sizes.items() if s != (w // 4, h // 4)]
    if wrong:
        seen = sorted(set(sizes.values()))
        hint = (f'; they are all {seen[0][0]}x{seen[0][1]}: pass --size {4 * seen[0][0]}' if len(seen) == 1 and seen[0][0] == seen[0][1]
                else '; every LQ of a test set shares one size')
        raise UserError(f'TEST_LQ {test_lq}: {len(wrong)} LQ image(s) are not {w // 4}x{h // 4}, the size whose 4x result '
                        f'is the {w}x{h} the zip must hold (--size {w}): {_short(wrong)}{hint}')
    zip_path = Path(zip_path)
    if zip_path.suffix.lower() != '.zip': raise UserError(f'ZIP {zip_path}: the file to write must end in .zip, e.g. submission.zip')
    check_output_file(zip_path, [test_lq], 'ZIP', own=is_submission_zip, overwrite=overwrite)
    if keep is not None:
        zip_r, keep_r = zip_path.resolve(), Path(keep).resolve()
        if zip_r == keep_r or zip_r in keep_r.parents:
            raise UserError(f'--keep {keep} is the zip {zip_path} (or lies inside it); give --keep a folder of its own, '
                            'e.g. results/test')
        if keep_r in zip_r.parents:
            raise UserError(f'ZIP {zip_path} lies in the --keep folder {keep}; write the zip beside it, not into it')
        check_output_dir(keep, [test_lq], command='submit', overwrite=overwrite, flag='--keep')
    return files


WORK_PREFIX = '.blindsr_submit_'   # + the pid of the run + '_': the temporary folder of restored PNGs beside the zip


def _alive(pid: int) -> bool:
    try: os.kill(pid, 0)
    except ProcessLookupError: return False
    except PermissionError: return True               # someone else's process
    return True


def remove_stale_work(folder: PathLike,  # the folder the zip goes to
                     ) -> list[Path]:  # what was removed
    "Remove the temporary PNG folders and zips that killed runs of blindsr_submit (their pid is gone) left in `folder`."
    gone = []
    for p in Path(folder).glob('.*'):
        m = re.fullmatch(re.escape(WORK_PREFIX) + r'(\d+)_.*', p.name) or re.fullmatch(r'\..+\.zip\.(\d+)\.tmp', p.name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            gone.append(p)
    return gone


def make_submission(model: nn.Module,  # generator on its device
                    test_lq: PathLike,  # folder of the test LQ images, 00000.png …
                    zip_path: PathLike,  # the zip to write
                    folder_name: str = 'results',  # the one folder inside the zip
                    size: tuple[int, int] = (512, 512),  # (width, height) every result must have
                    keep: PathLike | None = None,  # keep the restored PNGs in this folder (default: a temporary one)
                    progress: bool = True,
                    overwrite: bool = False,  # replace a zip / write into a keep folder that this command did not write
                    **kwargs,  # tta, tile, tile_overlap, batch, amp, workers: see restore_files
                   ) -> Path:  # zip_path, checked
    "Restore every test LQ image and write the CodaLab zip: one folder of 00000.png …, checked before and after zipping."
    files = plan_submission(test_lq, zip_path, folder_name, size, keep, overwrite)
    stems = [f.stem for f in files]
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    if keep is not None:
        Path(keep).mkdir(parents=True, exist_ok=True)
        write_manifest(keep, 'submit', [f'{s}.png' for s in stems])   # before writing: a rerun may replace them
    remove_stale_work(zip_path.parent)                               # what a killed earlier run left
    work = Path(keep) if keep is not None else Path(tempfile.mkdtemp(prefix=f'{WORK_PREFIX}{os.getpid()}_', dir=zip_path.parent))
    tmp_zip = zip_path.with_name(f'.{zip_path.name}.{os.getpid()}.tmp')
    main = threading.current_thread() is threading.main_thread()
    on_term = signal.signal(signal.SIGTERM, _exit_on_sigterm) if main else None   # `kill`: clean up as on Ctrl-C
    try:
        outs = restore_files(model, files, work, progress=progress, **kwargs)
        check_folder(work, stems, size, outs)
        with zipfile.ZipFile(tmp_zip, 'w', zipfile.ZIP_STORED) as zf:   # PNGs are compressed already
            zf.comment = ZIP_COMMENT
            for p in outs: zf.write(p, f'{folder_name}/{p.name}')
        with open(tmp_zip, 'rb') as f: os.fsync(f.fileno())             # on disk before it takes the final name
        check_submission(tmp_zip, len(stems), size, stems)
        os.replace(tmp_zip, zip_path)
    finally:
        if tmp_zip.exists(): tmp_zip.unlink()
        if keep is None: shutil.rmtree(work, ignore_errors=True)
        if main: signal.signal(signal.SIGTERM, on_term)
    return zip_path


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)                                   # unwinds through the `finally` that cleans up


# %% [markdown]
# A small "test set" of 16×16 LQ faces gives a zip of one folder of 64×64 results, which `check_submission` and
# `blindsr_evaluate` both accept; an LQ folder with other names, or of the wrong size for `size`, is refused before
# any work:

# %%
#| exec_doc
rand_imgs(tmp/'test_lq', 4)
z = make_submission(net, tmp/'test_lq', tmp/'out'/'submission.zip', size=(64, 64), progress=False, tta='flip')
zipfile.ZipFile(z).namelist(), check_submission(z, 4, size=(64, 64))

# %%
#| hide
test_eq(zipfile.ZipFile(z).namelist(), [f'results/{i:05d}.png' for i in range(4)])
test_eq(check_submission(z, 4, size=(64, 64))[0], 'results/00000.png')
test_eq([p.name for p in (tmp/'out').iterdir()], ['submission.zip'])          # no temporary files left behind
restore_files(net, list_images(tmp/'test_lq'), tmp/'test_gt', tta='flip', progress=False)   # "ground truth" = the same outputs
test_eq(evaluate(z, tmp/'test_gt', with_ssim=False, progress=False).psnr, math.inf)
make_submission(net, tmp/'test_lq', tmp/'out'/'submission.zip', size=(64, 64), progress=False)   # a rerun replaces its own zip
rand_imgs(tmp/'lq', 2); write_png(tmp/'lq'/'gray.png', np.zeros((16, 16, 3), np.uint8))
test_fail(lambda: make_submission(net, tmp/'lq', tmp/'x.zip', size=(64, 64), progress=False), contains='gray.png')
test_fail(lambda: make_submission(net, tmp/'test_lq', tmp/'x.zip', progress=False), contains='they are all 16x16: pass --size 64')
test_fail(lambda: make_submission(net, tmp/'test_lq', tmp/'test_lq'/'x.zip', size=(64, 64), progress=False), contains='lies inside the input')
make_zip(tmp/'photos.zip', {'holiday.jpg': b'not a submission'})                              # someone's other zip
test_fail(lambda: make_submission(net, tmp/'test_lq', tmp/'photos.zip', size=(64, 64), progress=False), contains='not written by this command')
assert not (tmp/'x.zip').exists()

# %% [markdown]
# `keep` keeps the restored PNGs; a folder holding files blindsr_submit did not write is refused before any work
# (unless `overwrite`, which replaces only the PNGs it writes):

# %%
#| hide
(tmp/'keep').mkdir(); (tmp/'keep'/'notes.txt').write_text('x')
test_fail(lambda: make_submission(net, tmp/'test_lq', tmp/'k.zip', size=(64, 64), keep=tmp/'keep', progress=False), contains='notes.txt')
test_eq(list((tmp/'keep').glob('*.png')), [])
make_submission(net, tmp/'test_lq', tmp/'k.zip', size=(64, 64), keep=tmp/'keep', progress=False, overwrite=True)
test_eq(len(list((tmp/'keep').glob('*.png'))), 4); test_eq((tmp/'keep'/'notes.txt').read_text(), 'x')
test_fail(lambda: make_submission(net, tmp/'test_lq', tmp/'k.zip', size=(64, 64), keep=tmp/'k.zip', progress=False),
          contains='--keep')                                        # the zip's own path is no folder to keep PNGs in
test_eq((tmp/'k.zip').is_file(), True)

# %% [markdown]
# A run killed outright (SIGKILL, a closed Kaggle session) cannot clean up after itself: its temporary folder of
# PNGs, named after its process id, stays beside the zip. The next run removes those whose process is gone.

# %%
dead = subprocess.Popen(['true']); dead.wait()       # a pid no process has now
(tmp/'sub'/f'{WORK_PREFIX}{dead.pid}_x').mkdir(parents=True); (tmp/'sub'/f'{WORK_PREFIX}{dead.pid}_x'/'00000.png').write_bytes(b'x')
(tmp/'sub'/f'.s.zip.{dead.pid}.tmp').write_bytes(b'half a zip')
(tmp/'sub'/f'{WORK_PREFIX}{os.getppid()}_y').mkdir()                                  # a live run's: kept
make_submission(net, tmp/'test_lq', tmp/'sub'/'s.zip', size=(64, 64), progress=False)
test_eq(sorted(p.name for p in (tmp/'sub').iterdir()), [f'{WORK_PREFIX}{os.getppid()}_y', 's.zip'])


# %% [markdown]
# ## `blindsr_submit`
#
# `blindsr_submit TEST_LQ OUT.zip --ckpt best.pt` writes the zip; `blindsr_submit [TEST_LQ] --check ZIP` checks one
# made any other way: against the LQ stems when TEST_LQ is given (the only check that sees a missing last image or
# an extra one), against `--n-expected` images, or — with neither — against `00000 …` up to the highest name in the
# zip, saying that the count was assumed. The generator and restoration flags are those of `blindsr_restore`.

# %%
#| export
def submit_parser() -> argparse.ArgumentParser:
    "The flags of blindsr_submit."
    ap = argparse.ArgumentParser(
        prog='blindsr_submit', formatter_class=HelpFormatter,
        usage='%(prog)s TEST_LQ OUT.zip [options]\n       %(prog)s [TEST_LQ] --check ZIP [--n-expected N] [--size PX]',
        description='Restore the test LQ and write the zip the CodaLab leaderboard takes (one folder of 00000.png …,\n'
                    'each 512x512 RGB), checked before it replaces OUT.zip; or check an existing zip.',
        epilog=examples(('restore the 400 test faces with your best weights and write the zip',
                         'blindsr_submit data/test/LQ submission.zip --ckpt runs/blindsr/best.pt --tta flip'),
                        ('check a zip made elsewhere against the test LQ before uploading it',
                         'blindsr_submit data/test/LQ --check submission.zip'),
                        note='Exit status: 0 written or valid; 2 a mistake or an invalid zip (every problem named on '
                             'one line); 130 interrupted (no half-written zip is left under the final name).'))
    g = ap.add_argument_group('write a submission')
    g.add_argument('test_lq', nargs='?', metavar='TEST_LQ',
                   help='folder of the test LQ images 00000.png … (128x128 for the course); with --check, the stems '
                        'the zip must hold')
    g.add_argument('zip', nargs='?', metavar='OUT.zip',
                   help='the zip to write, e.g. submission.zip; an existing file is replaced only if it is a submission zip')
    g.add_argument('--folder-name', default='results', metavar='NAME', help='the one folder inside the zip (default: results)')
    g.add_argument('--size', type=positive_int, default=512, metavar='PX',
                   help='side of every result in pixels, a multiple of 4; every LQ must be PX/4 (default: 512)')
    g.add_argument('--keep', default=None, metavar='DIR',
                   help='also keep the restored PNGs in DIR, a folder that is empty, new, or written by blindsr_submit '
                        '(default: a temporary folder, removed)')
    g.add_argument('--overwrite', action='store_true',
                   help='replace an OUT.zip that is not a submission zip, and write into a --keep folder holding other '
                        'files (only the PNGs it writes are replaced) (default: refuse both)')
    g.add_argument('--no-progress', action='store_true', help='no progress bar (default: a bar on stderr)')
    g = ap.add_argument_group('check a zip')
    g.add_argument('--check', metavar='ZIP', default=None,
                   help='only check an existing zip (layout, names, sizes, PNG, RGB) and exit; with TEST_LQ, also that '
                        'it holds exactly one result per LQ (default: write a zip instead)')
    g.add_argument('--n-expected', type=positive_int, default=None, metavar='N',
                   help='with --check: the number of images the zip must hold, 00000 … N-1 (400 for the course\'s test '
                        'set) (default: the count of TEST_LQ when given, else not checked)')
    add_generator_args(ap)
    add_restore_args(ap)
    return ap


def check_cli(a: argparse.Namespace) -> int:
    "blindsr_submit --check: check a zip against TEST_LQ's stems, --n-expected, or (saying so) the highest name in it."
    stems = [f.stem for f in list_images(a.test_lq)] if a.test_lq else None
    if stems is not None and a.n_expected is not None and a.n_expected != len(stems):
        raise UserError(f'--n-expected {a.n_expected}, but TEST_LQ {a.test_lq} holds {len(stems)} images; give one or the other')
    names = check_submission(a.check, a.n_expected, (a.size, a.size), stems)
    if stems is not None: how = f'one per LQ image of {a.test_lq}'
    elif a.n_expected is not None: how = f'{a.n_expected} expected (--n-expected)'
    else: how = (f'count not checked: assumed {len(names)} images (00000 … {Path(names[-1]).stem}, up to the highest name '
                 "in the zip); pass TEST_LQ, or --n-expected 400 for the course's test set, to check it")
    print(f'{a.check}: valid submission, one folder of {len(names)} {a.size}x{a.size} PNGs; {how}')
    return 0


def submit_cli(argv: list[str] | None = None) -> int:
    "blindsr_submit TEST_LQ OUT.zip: restore the test LQ and write the CodaLab zip (or --check an existing zip)."
    ap = submit_parser()
    a = ap.parse_args(argv)
    if a.check and a.zip: ap.error('--check ZIP checks a zip and writes nothing: give at most TEST_LQ with it, not OUT.zip')
    if not a.check and a.n_expected is not None:
        ap.error('--n-expected goes with --check ZIP (a zip blindsr_submit writes is checked against TEST_LQ itself)')
    if not a.check and not (a.test_lq and a.zip): ap.error('give TEST_LQ and OUT.zip (or --check ZIP)')
    def body():
        if a.check: return check_cli(a)
        plan_submission(a.test_lq, a.zip, a.folder_name, (a.size, a.size), a.keep, a.overwrite)   # before loading anything
        model = generator_from_args(a)
        z = make_submission(model, a.test_lq, a.zip, a.folder_name, (a.size, a.size), a.keep,
                            progress=not a.no_progress, overwrite=a.overwrite, **restore_kwargs(a))
        with zipfile.ZipFile(z) as zf: n = len(zf.namelist())
        print(f'{z}: {n} images in {a.folder_name}/ ({a.size}x{a.size}, tta {a.tta}), checked; '
              f'{z.stat().st_size / 2**20:.1f} MiB. Upload it to CodaLab.')
    return run_cli('blindsr_submit', body, CLI_ERRORS)


# %%
#| hide
with redirect_stderr(io.StringIO()):
    test_eq(submit_cli([str(tmp/'test_lq'), str(tmp/'sub2.zip'), '--ckpt', str(tmp/'w16.pt'), '--size', '64', '--no-progress',
                        '--folder-name', 'preds']), 0)
test_eq(zipfile.ZipFile(tmp/'sub2.zip').namelist()[0], 'preds/00000.png')
test_eq(submit_cli(['--check', str(tmp/'sub2.zip'), '--size', '64', '--n-expected', '4']), 0)
test_eq(submit_cli([str(tmp/'test_lq'), '--check', str(tmp/'sub2.zip'), '--size', '64']), 0)
with redirect_stderr(io.StringIO()) as err:
    test_eq(submit_cli(['--check', str(tmp/'sub2.zip'), '--size', '64', '--n-expected', '400']), 2)
    rand_imgs(tmp/'test_lq5', 5)                                   # a test set of 5: the zip lacks its last image
    test_eq(submit_cli([str(tmp/'test_lq5'), '--check', str(tmp/'sub2.zip'), '--size', '64']), 2)
print(err.getvalue())
assert 'missing image(s): 00004.png' in err.getvalue()

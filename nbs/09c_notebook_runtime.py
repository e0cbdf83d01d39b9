# %% [markdown]
# # Notebook runtime
# > What a running Kaggle or Colab notebook uses: installing the blindsr it carries, smoke mode, where inputs and outputs are, the previous run's checkpoint, the session's minutes, training under torchrun, progress lines, and Google Drive.

# %%
#| default_exp notebook_runtime

# %% [markdown]
# The Kaggle kernel (`nbs/10_kaggle_run.ipynb`) and the Colab notebook (`nbs/11_colab_run.ipynb`) are built from
# notebooks by `blindsr.kaggle_build`; when they run — on Kaggle, on Colab, on a laptop, in CI — they call the
# helpers here. Everything that touches the platform (the `/kaggle` folders, `google.colab`, the clock) is behind a
# function with an environment override, so the whole path runs on a CPU in smoke mode. Importing this module
# imports no torch (its helpers import blindsr's torch modules when called), so `blindsr_kaggle build` starts fast.

# %%
#| export
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

# %%
#| hide
from contextlib import redirect_stdout
from io import StringIO
from unittest import mock
from fastcore.test import test_eq, test_fail
from nbdev.showdoc import show_doc
from blindsr.core import list_images, read_image
from blindsr.data import find_data
from blindsr.train import TrainConfig, Trainer

tmp = Path(tempfile.mkdtemp())


# %% [markdown]
# ## Installing the blindsr the notebook carries
#
# A built notebook carries a wheel of the checkout it was built from (base64 in one cell, with its sha256; see
# `nbs/09a_kaggle_build.ipynb` for why it is not a Kaggle dataset). `install_blindsr` runs before blindsr exists,
# so the builder pastes its source into the notebook: it must use the standard library only, imported inside it.
# It checks the hash, installs with `pip --no-deps --no-index` (no internet, and pip never touches the torch the
# CUDA guard chose), installs what the image lacks of blindsr's requirements, and says which blindsr runs: its
# version (`0.1.0+g<commit>`) and the commit it was built from.
#
# It never replaces an editable install (a developer running the built notebook in a checkout keeps their code),
# and a second run in the same session finds the wheel installed already.

# %%
#| export
def install_blindsr(wheel: 'dict | None' = None,  # {'name', 'sha256', 'base64'} from the packed-wheel cell; None: none packed
                   ) -> dict:  # {'version', 'commit', 'source'}: the blindsr this notebook runs
    "Install the blindsr wheel packed in the notebook (sha256 checked; no internet, no git) and say which blindsr runs."
    import base64, hashlib, importlib, importlib.metadata as md, importlib.util, json, os, subprocess, sys, tempfile
    def dist():
        try: return md.distribution('blindsr')
        except md.PackageNotFoundError: return None
    spec = importlib.util.find_spec('blindsr')
    found, d = spec is not None, dist()
    in_checkout = found and not {'site-packages', 'dist-packages'} & set(os.path.normpath(spec.origin or '').split(os.sep))
    if wheel is None:
        if not found: raise RuntimeError('blindsr is not installed and this notebook carries no wheel: build the notebook '
                                         'with blindsr_kaggle build (or blindsr_colab build), or pip install blindsr first')
        source = 'the blindsr installed in this environment (the notebook carries no wheel)'
    elif in_checkout:
        source = (f'the checkout at {os.path.dirname(os.path.dirname(spec.origin))} (an editable install: the packed '
                  f'{wheel["name"]} is not installed over it)')
    elif found and d is not None and d.version == wheel['name'].split('-')[1]:
        source = f'{wheel["name"]}, installed earlier in this session'
    else:
        data = base64.b64decode(wheel['base64'])
        digest = hashlib.sha256(data).hexdigest()
        if digest != wheel['sha256']:
            raise RuntimeError(f'the packed {wheel["name"]} is damaged (sha256 {digest[:16]}…, expected '
                               f'{wheel["sha256"][:16]}…): rebuild the notebook rather than edit it')
        path = os.path.join(tempfile.mkdtemp(prefix='blindsr_wheel_'), wheel['name'])
        with open(path, 'wb') as f: f.write(data)
        cmd = [sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', '--disable-pip-version-check', path]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0: raise RuntimeError(f'installing {wheel["name"]} failed:\n{r.stdout}{r.stderr}')
        importlib.invalidate_caches()
        source = f'{wheel["name"]} packed in this notebook ({len(data) // 1024} KiB, sha256 {digest[:12]}… checked)'
    needs = {'torch': 'torch', 'torchvision': 'torchvision', 'numpy': 'numpy', 'PIL': 'pillow', 'cv2': 'opencv-python-headless',
             'matplotlib': 'matplotlib', 'tqdm': 'tqdm', 'skimage': 'scikit-image'}
    missing = [pkg for mod, pkg in needs.items() if importlib.util.find_spec(mod) is None]
    if missing:
        print('installing what this image lacks of blindsr\'s requirements (needs internet):', ' '.join(missing), flush=True)
        subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', *missing], check=True)
    import blindsr
    info_file = os.path.join(os.path.dirname(blindsr.__file__), 'build_info.json')
    if os.path.isfile(info_file):
        with open(info_file) as f: info = json.load(f)
    else:                                       # not a packed wheel: ask git, if blindsr is a checkout
        root = os.path.dirname(os.path.dirname(blindsr.__file__))
        try: commit = subprocess.run(['git', '-C', root, 'rev-parse', 'HEAD'], capture_output=True, text=True).stdout.strip()
        except OSError: commit = ''
        info = {'commit': commit or 'unknown', 'dirty': None}
    version = dist().version if dist() is not None else blindsr.__version__
    out = {'version': version, 'commit': info['commit'] + (' (plus uncommitted changes)' if info.get('dirty') else ''),
           'source': source}
    print(f"blindsr {out['version']}, built from commit {out['commit']}; from {source}")
    return out


# %% [markdown]
# Here blindsr is an editable install, so with no wheel it reports the checkout, and with one it leaves the
# checkout in place. A damaged wheel is refused before pip runs (the editable check is bypassed for that test):

# %%
info = install_blindsr(None)
test_eq(info['version'].split('+')[0], '0.1.0'); assert 'installed in this environment' in info['source']
fake = {'name': 'blindsr-0.1.0+gdeadbee-py3-none-any.whl', 'sha256': '0' * 64, 'base64': 'UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=='}
with redirect_stdout(StringIO()): assert 'an editable install' in install_blindsr(fake)['source']
with mock.patch('importlib.util.find_spec', return_value=None):
    test_fail(lambda: install_blindsr(fake), contains='is damaged')
    test_fail(lambda: install_blindsr(None), contains='carries no wheel')

# %% [markdown]
# ## Where the notebook runs
#
# Kaggle sets `KAGGLE_KERNEL_RUN_TYPE` (kagglesdk keys on it too). Colab has `google.colab` loaded in the kernel
# and sets `COLAB_RELEASE_TAG` and friends, which `!python` subprocesses inherit; `google-colab` being importable
# proves nothing (it is on PyPI). The notebook runs for real when it finds training faces; in smoke mode when told
# (`BLINDSR_SMOKE=1`), under `nbdev_test`, or off Kaggle and Colab with neither data nor a GPU. On Kaggle or Colab
# without data it does not fall back to smoke mode — a run that "succeeds" with a 4-image submission would be worse
# than one that stops and says the data is missing.

# %%
#| export
MAX_HOURS = 11.5        # Kaggle stops GPU sessions at 12 h
RESERVE_MIN = 20.0      # minutes kept for the final validation, the submission and saving the output


def on_kaggle() -> bool:
    "Running inside a Kaggle notebook?"
    return 'KAGGLE_KERNEL_RUN_TYPE' in os.environ or Path('/kaggle/working').is_dir()


def on_colab() -> bool:
    "Running inside Google Colab (the notebook or a `!python` it starts)?"
    return 'google.colab' in sys.modules or any(os.environ.get(k) for k in ('COLAB_RELEASE_TAG', 'COLAB_GPU', 'COLAB_BACKEND_VERSION'))


def input_root() -> Path:
    "Where attached datasets and kernel outputs are: $BLINDSR_KAGGLE_INPUT or /kaggle/input."
    return Path(os.environ.get('BLINDSR_KAGGLE_INPUT') or '/kaggle/input')


def smoke_mode(found_data: bool,  # did find_data find training faces?
               gpu: bool,  # is there a CUDA GPU?
              ) -> bool:
    "Run in smoke mode? BLINDSR_SMOKE=1/0 decides; else yes under nbdev_test, or off Kaggle and Colab with no data and no GPU."
    env = os.environ.get('BLINDSR_SMOKE', '').strip().lower()
    if env: return env not in ('0', 'false', 'no', 'off')
    if os.environ.get('IN_TEST'): return True
    return not found_data and not gpu and not on_kaggle() and not on_colab()


def working_dir(smoke: bool) -> Path:
    "Where the notebook writes: $BLINDSR_WORKING, /kaggle/working, /content/blindsr (Colab), a temporary folder (smoke) or runs/notebook."
    env = os.environ.get('BLINDSR_WORKING')
    if env: out = Path(env)
    elif Path('/kaggle/working').is_dir(): out = Path('/kaggle/working')
    elif on_colab(): out = Path('/content/blindsr')
    elif smoke: out = Path(tempfile.mkdtemp(prefix='blindsr_smoke_'))
    else: out = Path('runs') / 'notebook'                 # runs/ is git-ignored
    out.mkdir(parents=True, exist_ok=True)
    return out


# %%
with mock.patch.dict(os.environ):                          # restored afterwards
    for k in ('BLINDSR_SMOKE', 'IN_TEST', 'COLAB_RELEASE_TAG', 'COLAB_GPU', 'COLAB_BACKEND_VERSION'): os.environ.pop(k, None)
    test_eq(on_colab(), False)
    with mock.patch.dict(os.environ, COLAB_RELEASE_TAG='release-colab_20261101'): test_eq(on_colab(), True)
    with mock.patch.dict(sys.modules, {'google.colab': mock.MagicMock()}): test_eq(on_colab(), True)
    with mock.patch.dict(globals(), on_kaggle=lambda: False):
        test_eq([smoke_mode(False, False), smoke_mode(True, False), smoke_mode(False, True)], [True, False, False])
        with mock.patch.dict(globals(), on_colab=lambda: True): test_eq(smoke_mode(False, False), False)  # nor on Colab
    with mock.patch.dict(globals(), on_kaggle=lambda: True): test_eq(smoke_mode(False, False), False)   # no silent smoke on Kaggle
    with mock.patch.dict(os.environ, BLINDSR_SMOKE='1'): test_eq(smoke_mode(True, True), True)
    with mock.patch.dict(os.environ, BLINDSR_SMOKE='0'): test_eq(smoke_mode(False, False), False)
    with mock.patch.dict(os.environ, IN_TEST='1'): test_eq(smoke_mode(True, True), True)
with mock.patch.dict(os.environ, BLINDSR_WORKING=str(tmp/'w')): test_eq(working_dir(False), tmp/'w')


# %% [markdown]
# ## Generated faces for smoke mode
#
# The course's layout in miniature: 12 training faces, 4 validation pairs and 4 test LQ, 64×64 HQ and 16×16 LQ
# made with the 2024 degradation (`blindsr.samples.synthetic_faces`, then `degrade_folder`).

# %%
#| export
def make_smoke_data(root: Path | str,  # created; holds train/GT, val/GT, val/LQ, test/LQ
                    n_train: int = 12, n_val: int = 4, n_test: int = 4,
                    size: int = 64,  # HQ side (LQ is size // 4)
                    preset: str = 'ai6126_2024',
                    seed: int = 0):  # -> blindsr.data.DataPaths
    "Write a miniature course data set of generated faces; returns its DataPaths."
    from blindsr.samples import synthetic_faces
    from blindsr.data import DataPaths
    from blindsr.lqset import degrade_folder
    root = Path(root)
    synthetic_faces(root / 'train' / 'GT', n_train, size, seed)
    synthetic_faces(root / 'val' / 'GT', n_val, size, seed + 1)
    degrade_folder(root / 'val' / 'GT', root / 'val' / 'LQ', preset, seed=0, workers=1, progress=False)
    synthetic_faces(root / 'test_hq', n_test, size, seed + 2)
    degrade_folder(root / 'test_hq', root / 'test' / 'LQ', preset, seed=1, workers=1, progress=False)
    return DataPaths(root / 'train' / 'GT', root / 'val' / 'GT', root / 'val' / 'LQ', root / 'test' / 'LQ', (root,))


# %%
dp = make_smoke_data(tmp/'smoke')
test_eq([len(list_images(d)) for d in (dp.train_hq, dp.val_gt, dp.val_lq, dp.test_lq)], [12, 4, 4, 4])
test_eq(read_image(list_images(dp.test_lq)[0]).shape, (16, 16, 3))
found = find_data([tmp/'smoke'])
test_eq((found.train_hq, found.val_gt, found.val_lq, found.test_lq), (dp.train_hq, dp.val_gt, dp.val_lq, dp.test_lq))

# %% [markdown]
# ## Continuing the previous version
#
# A Kaggle session ends at 12 hours, but training need not: a kernel built with `--previous USER/SLUG` has that
# kernel's output mounted under `/kaggle/input` — at `notebooks/<user>/<slug>/` now, at `<slug>/` once — so
# `run/last.ckpt` is searched for at any depth (the same bounded walk as `find_data`). The one with the most steps
# wins, preferring a path that names the expected kernel; a tie is reported. When the kernel was built to continue
# and nothing is found, it stops and lists what is attached rather than silently starting afresh.
#
# The checkpoint, `best.pt` and the logs are then copied into this run's folder — unless that folder holds a later
# checkpoint already (a re-run in the same session). The generator must be the one the previous run trained; a
# mismatch stops at once, before any training time is spent.

# %%
#| export
PREVIOUS_FILES = ('last.ckpt', 'best.pt', 'log.csv', 'val.csv')   # what a continued run takes over


def find_previous_checkpoint(roots: Sequence[Path | str] | None = None,  # default: [input_root()]
                             expected: str | None = None,  # the kernel USER/SLUG built as --previous; then a miss is an error
                            ) -> Path | None:  # the readable last.ckpt with the most steps, or None
    "A previous run's last.ckpt among the attached inputs, at any depth (e.g. notebooks/alice/blindsr-train/run/last.ckpt)."
    from blindsr.checkpoint import CheckpointError, load_checkpoint
    from blindsr.data import BoundedWalk, folder_listing
    roots = [Path(r) for r in (roots if roots is not None else [input_root()])]
    walk, found = BoundedWalk(roots), []
    slug = expected.split('/')[-1] if expected else None
    for folder, files in walk:
        if 'last.ckpt' not in files: continue
        path = folder / 'last.ckpt'
        try: step = int(load_checkpoint(path)['step'])
        except (CheckpointError, KeyError, TypeError) as e: print(f'ignoring {path}: {e}'); continue
        found.append((slug is not None and slug in path.parts, step, path))
    if walk.stopped: print(f'the search for a previous checkpoint {walk.stopped}')
    if not found:
        if expected is None: return None
        seen = [l for r in roots for l in [f'seen under {r} (two levels):'] + [f'  {x}' for x in folder_listing(r)]]
        raise FileNotFoundError('\n'.join([f'this kernel continues {expected}, but no run/last.ckpt is attached. Expected '
                                           f'{roots[0]}/notebooks/{expected}/run/last.ckpt (or {roots[0]}/{slug}/run/last.ckpt), '
                                           'the output of a completed version of that kernel.'] + seen +
                                          ['Let the previous version finish (blindsr_kaggle status), or rebuild with --previous none.']))
    found.sort(key=lambda c: (not c[0], -c[1], len(c[2].parts), str(c[2])))
    if len(found) > 1:
        best, nxt = found[0], found[1]
        why = (f'it is under {slug}' if best[0] != nxt[0] else f'more steps ({best[1]} vs {nxt[1]})' if best[1] != nxt[1]
               else f'a tie on {best[1]} steps: the shallower, then the first by path')
        print(f'previous checkpoint: picked {best[2]} of {len(found)}, as {why}; also {", ".join(str(c[2]) for c in found[1:4])}')
    return found[0][2]


def checkpoint_state(ckpt: Path | str,  # a training checkpoint (last.ckpt)
                     generator: str,  # the generator this run trains …
                     generator_kwargs: dict,  # … and its constructor overrides
                     fix: str = 'train that generator, or start afresh in another folder',  # what to do about a mismatch
                    ) -> dict:  # {'from', 'step', 'minutes', 'best_psnr'}
    "Where a checkpoint stands, after checking that it trained the same generator (CheckpointError if not)."
    from blindsr.checkpoint import check_same_arch, load_checkpoint
    ck = load_checkpoint(ckpt)
    check_same_arch(ckpt, ck, generator, generator_kwargs, fix=fix)
    best = ck.get('best_psnr')
    return {'from': str(ckpt), 'step': int(ck['step']), 'minutes': float(ck['elapsed']) / 60,
            'best_psnr': best if best is not None and best > -1e308 else float('nan')}


def adopt_previous_run(ckpt: Path | str,  # a previous run's last.ckpt
                       out_dir: Path | str,  # this run's folder (TrainConfig.out_dir)
                       generator: str,  # the generator this run trains …
                       generator_kwargs: dict,  # … and its constructor overrides
                      ) -> dict:  # checkpoint_state of the checkpoint the run will resume
    "Copy a previous run's checkpoint, best weights and logs into out_dir so that the Trainer resumes from them."
    ckpt, out = Path(ckpt), Path(out_dir)
    state = checkpoint_state(ckpt, generator, generator_kwargs,
                             fix='rebuild with the generator it trained (--generator, --generator-kwargs), or without --previous to start afresh')
    out.mkdir(parents=True, exist_ok=True)
    mine = out / 'last.ckpt'
    if mine.exists():
        here = checkpoint_state(mine, generator, generator_kwargs)
        if here['step'] >= state['step']: return here      # a re-run in the same session: keep the later checkpoint
    for name in PREVIOUS_FILES:
        if (ckpt.parent / name).is_file(): shutil.copyfile(ckpt.parent / name, out / name)
    return state


# %% [markdown]
# A run of 4 steps, attached to a new session the way Kaggle attaches a kernel's output now
# (`notebooks/<user>/<slug>/run/`): it is found, the new run's folder gets its files, and the Trainer, given four
# more steps, resumes at step 4 and ends at 8.

# %%
tiny = dict(train_hq=str(dp.train_hq), val_gt=str(dp.val_gt), val_lq=str(dp.val_lq), generator='msrresnet',
            generator_kwargs={'num_feat': 8, 'num_block': 1}, batch_size=4, log_every=2, val_every=2, ckpt_every=1000,
            degrade_on='cpu', workers=0, progress=False)
inputs = tmp/'input'
Trainer(TrainConfig(iters=4, out_dir=str(inputs/'notebooks'/'alice'/'blindsr-train'/'run'), **tiny)).fit()
prev = find_previous_checkpoint([inputs], expected='alice/blindsr-train')
test_eq(prev, inputs/'notebooks'/'alice'/'blindsr-train'/'run'/'last.ckpt')
info = adopt_previous_run(prev, tmp/'session2'/'run', 'msrresnet', {'num_feat': 8, 'num_block': 1})
test_eq(info['step'], 4); test_eq(sorted(p.name for p in (tmp/'session2'/'run').iterdir()), sorted(PREVIOUS_FILES))
s2 = Trainer(TrainConfig(iters=info['step'] + 4, out_dir=str(tmp/'session2'/'run'), **tiny)).fit()
test_eq(s2['steps'], 8)
test_eq([r['step'] for r in csv.DictReader(open(tmp/'session2'/'run'/'log.csv'))], ['2', '4', '6', '8'])
test_fail(lambda: adopt_previous_run(prev, tmp/'s3', 'msrresnet', {}), contains='rebuild with the generator it trained')
test_eq(find_previous_checkpoint([tmp/'nowhere']), None)

# %% [markdown]
# Two candidates: the old layout's copy of another kernel has more steps, but the one under the expected kernel's
# name wins, and the choice is printed. Built to continue, with nothing attached: the listing and what was expected.

# %%
shutil.copytree(tmp/'session2'/'run', inputs/'other-kernel'/'run')
buf = StringIO()
with redirect_stdout(buf): test_eq(find_previous_checkpoint([inputs], expected='alice/blindsr-train'), prev)
assert 'it is under blindsr-train' in buf.getvalue(), buf.getvalue()
with redirect_stdout(StringIO()): test_eq(find_previous_checkpoint([inputs]), inputs/'other-kernel'/'run'/'last.ckpt')
(tmp/'empty_input'/'datasets'/'alice'/'ai6126-faces').mkdir(parents=True)
try: find_previous_checkpoint([tmp/'empty_input'], expected='alice/blindsr-train')
except FileNotFoundError as e: print(e); assert 'notebooks/alice/blindsr-train/run/last.ckpt' in str(e) and 'datasets/alice/' in str(e)


# %% [markdown]
# ## The time budget
#
# The clock starts in the notebook's first cells. Training gets `hours` less what set-up took so far less
# `RESERVE_MIN` (validation of 400 faces, 400 test restorations, the zip, saving `/kaggle/working`: a few minutes
# on a GPU, 20 kept). It becomes `TrainConfig.session_min`, which stops this session; `schedule_min`, the cosine's
# length, spans every session (see `nbs/05_train.ipynb`).

# %%
#| export
def session_minutes(hours: float,  # the notebook's wall-clock budget
                    t0: float,  # time.time() when the notebook started
                    reserve_min: float = RESERVE_MIN,
                    now: float | None = None,
                   ) -> float:  # minutes of training this session can afford
    "Minutes of training left in a session of `hours` that started at `t0`."
    left = 60 * hours - ((now if now is not None else time.time()) - t0) / 60 - reserve_min
    if left < 5: raise ValueError(f'only {left:.1f} min would be left for training of a {hours} h budget; raise --hours '
                                  f'(at most {MAX_HOURS}) or start sooner')
    return left


# %%
test_eq(session_minutes(11, t0=0, now=600), 11 * 60 - 10 - RESERVE_MIN)
test_fail(lambda: session_minutes(0.3, t0=0, now=0), contains='raise --hours')


# %% [markdown]
# ## Training on one GPU or two
#
# One process: `Trainer(cfg).fit()` here. Several GPUs: the config is written to `out_dir/run_config.json` and
# `torchrun` starts one `blindsr.train` process per GPU (DistributedDataParallel; process 0 validates and
# saves); its output is relayed line by line, and a failure ends with its last lines. `LogFollower` prints the
# latest `log.csv`/`val.csv` rows every few minutes, as the progress bar is off in a kernel's log.

# %%
#| export
def train_run(cfg,  # a blindsr.train.TrainConfig
              nproc: int = 1,  # processes: one per GPU
             ) -> dict:  # the run's summary (out_dir/summary.json)
    "Train `cfg` in this process, or under torchrun with `nproc` processes."
    from blindsr.train import Trainer
    if nproc <= 1: return Trainer(cfg).fit()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / 'run_config.json'
    cfg_path.write_text(json.dumps(asdict(cfg), indent=1))
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}',
           '-m', 'blindsr.train', '--config', str(cfg_path)]
    print('running', ' '.join(cmd[2:]), flush=True)
    tail = deque(maxlen=40)
    env = {**os.environ, 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1'), 'PYTHONUNBUFFERED': '1'}
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as p:
        for line in p.stdout:
            print(line, end='', flush=True); tail.append(line)
    if p.returncode != 0:
        raise RuntimeError(f'torchrun exited with {p.returncode}; its last lines:\n' + ''.join(tail))
    return json.loads((out / 'summary.json').read_text())


def _last_row(path: Path) -> dict | None:
    try:
        with open(path, newline='') as f: rows = list(csv.DictReader(f))
    except OSError: return None
    return rows[-1] if rows else None


class LogFollower:
    "Print the newest row of out_dir/log.csv (and val.csv) every `every_s` seconds while training runs."
    def __init__(self, out_dir: Path | str, every_s: float = 600.0):
        self.out, self.every_s, self.last = Path(out_dir), every_s, None
        self._stop = threading.Event()

    def line(self) -> str | None:
        "The progress line now, or None before the first log row."
        tr, va = _last_row(self.out / 'log.csv'), _last_row(self.out / 'val.csv')
        if tr is None: return None
        s = (f"step {tr['step']}, {float(tr['minutes']):.1f} min: loss {tr['loss']}, lr {tr['lr']}, "
             f"{tr['images_per_s']} img/s")
        if va: s += f"; val {float(va['val_psnr']):.3f} dB at step {va['step']}" + (f" (bicubic {va['bicubic_psnr']})" if va['bicubic_psnr'] else '')
        return s

    def _run(self):
        while not self._stop.wait(self.every_s):
            l = self.line()
            if l and l != self.last: print(l, flush=True); self.last = l

    def __enter__(self):
        self._t = threading.Thread(target=self._run, daemon=True); self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set(); self._t.join()


# %%
show_doc(LogFollower.line)

# %%
with open(tmp/'session2'/'run'/'log.csv') as f: print(f.read().splitlines()[-1])
buf = StringIO()
with redirect_stdout(buf):
    with LogFollower(tmp/'session2'/'run', every_s=0.05): time.sleep(0.3)
test_eq(buf.getvalue().count('step 8,'), 1)                # printed once, not again while nothing changes
print(buf.getvalue())


# %% [markdown]
# ## Validation, the submission and the pictures
#
# The end of a run, the same on Kaggle and Colab: the best weights restore the validation LQ and are scored with the
# organisers' PSNR (and SSIM) against the bicubic baseline; every test LQ is restored at 4× and zipped as one folder
# of `00000.png …`, checked before and after zipping; the training curves and a comparison grid of the first
# validation faces are written beside them.

# %%
#| export
def validate_and_submit(run_dir: Path | str,  # the training run's folder (best.pt or final.pt, curves.png)
                        val_gt: Path | str, val_lq: Path | str,  # the validation pairs
                        test_lq: Path | str,  # the test LQ to restore
                        dest: Path | str,  # where submission.zip, val_scores.csv, curves.png and val_grid.png go
                       ) -> dict:  # {'weights', 'val_psnr', 'val_ssim', 'bicubic_psnr', 'submission', 'n_test'}
    "Score a run's best weights on the validation pairs and write its checked submission zip and pictures into dest."
    from blindsr.checkpoint import load_generator
    from blindsr.core import list_images, read_image
    from blindsr.demo import comparison_grid
    from blindsr.inference import restore, validate
    from blindsr.submission import check_submission, make_submission
    from blindsr.metrics import bicubic_baseline
    run, dest = Path(run_dir), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    weights = run / 'best.pt' if (run / 'best.pt').exists() else run / 'final.pt'
    model = load_generator(weights)
    scores = validate(model, val_lq, val_gt, tempfile.mkdtemp(prefix='val_sr_'), progress=False)   # restored PNGs not kept
    bicubic = bicubic_baseline(val_lq, val_gt)
    scores.to_csv(dest / 'val_scores.csv')
    print(f'{weights.name}: {scores.summary()}; bicubic {bicubic:.4f} dB ({scores.psnr - bicubic:+.4f} dB)')
    test_files = list_images(test_lq)
    h, w = read_image(test_files[0]).shape[:2]
    zip_path = make_submission(model, test_lq, dest / 'submission.zip', size=(4 * w, 4 * h), progress=False)
    members = check_submission(zip_path, n_expected=len(test_files), size=(4 * w, 4 * h))
    print(f'{zip_path}: {len(members)} images, {zip_path.stat().st_size / 2**20:.1f} MiB, checked')
    if (run / 'curves.png').exists() and run.resolve() != dest.resolve(): shutil.copyfile(run / 'curves.png', dest / 'curves.png')
    gt_of = {p.stem: p for p in list_images(val_gt)}
    first = list_images(val_lq)[:3]
    lqs = [read_image(p) for p in first]
    comparison_grid(lqs, [restore(model, lq) for lq in lqs], [read_image(gt_of[p.stem]) for p in first],
                    title=f'{weights.name}: val PSNR {scores.psnr:.2f} dB', path=dest / 'val_grid.png')
    return {'weights': str(weights), 'val_psnr': scores.psnr, 'val_ssim': scores.ssim, 'bicubic_psnr': bicubic,
            'submission': str(zip_path), 'n_test': len(members)}


# %%
res = validate_and_submit(tmp/'session2'/'run', dp.val_gt, dp.val_lq, dp.test_lq, tmp/'out')
test_eq(sorted(p.name for p in (tmp/'out').iterdir()), ['curves.png', 'submission.zip', 'val_grid.png', 'val_scores.csv'])
test_eq((res['n_test'], Path(res['weights']).name), (4, 'best.pt'))


# %% [markdown]
# ## Google Drive and uploads (Colab)
#
# Colab forgets its disk when the runtime goes (idle for a while, or after 12 hours), Google Drive does not: the
# Colab notebook keeps its data zip and its run folder — checkpoints, logs, the submission — on Drive, and a new
# runtime resumes from the checkpoint there. `drive_folder` mounts Drive on Colab (a sign-in prompt) and returns
# `MyDrive/<name>`; elsewhere it returns `$BLINDSR_DRIVE/<name>`, or a stand-in under `runs/`, so the notebook runs
# unchanged in CI. `upload_files` and `download` wrap Colab's browser file picker and download; off Colab they
# do nothing and say so (they would block waiting for a browser).

# %%
#| export
def drive_folder(name: str,  # a folder in My Drive, e.g. 'blindsr' (created)
                 mountpoint: str = '/content/drive',
                ) -> Path:
    "The notebook's folder on Google Drive (mounting Drive on Colab); elsewhere $BLINDSR_DRIVE/name, a temporary folder under nbdev_test, or runs/drive/name."
    env = os.environ.get('BLINDSR_DRIVE')
    if env: base = Path(env)
    elif on_colab():
        from google.colab import drive
        drive.mount(mountpoint)                    # prints 'Mounted at …' (or that it is mounted already)
        base = Path(mountpoint) / 'MyDrive'
    elif os.environ.get('IN_TEST'): base = Path(tempfile.mkdtemp(prefix='blindsr_drive_'))
    else: base = Path('runs') / 'drive'
    out = base / name
    out.mkdir(parents=True, exist_ok=True)
    return out


def upload_files() -> list[Path]:
    "Colab: ask for files in the browser and return where they were saved (the current folder); elsewhere []."
    if not on_colab():
        print('not on Colab: no browser to upload from; put the data zip in the Drive folder instead'); return []
    from google.colab import files
    return [Path(name).resolve() for name in files.upload()]


def download(path: Path | str) -> None:
    "Colab: start a browser download of `path`; elsewhere say where the file is."
    if not on_colab(): print(f'{path} is ready ({Path(path).stat().st_size / 2**20:.1f} MiB)'); return
    from google.colab import files
    files.download(str(path))


def unpack_data(src: Path | str,  # a zip of the course data, or a folder holding it
                dest: Path | str,  # where a zip is unpacked (fast local disk, not Drive)
               ) -> Path:  # the folder to search for the data
    "A zip unpacked once into `dest` (again if the zip changed); a folder as it is."
    src, dest = Path(src), Path(dest)
    if src.is_dir(): return src
    if not zipfile.is_zipfile(src): raise FileNotFoundError(f'{src} is neither a folder nor a zip of the course data')
    stamp, mark = f'{src.stat().st_size} {src.stat().st_mtime_ns}', dest / '.unpacked_from'
    if mark.is_file() and mark.read_text() == f'{src}\n{stamp}': return dest
    if dest.exists(): shutil.rmtree(dest)
    print(f'unpacking {src} ({src.stat().st_size / 2**20:.0f} MiB) into {dest}', flush=True)
    with zipfile.ZipFile(src) as zf: zf.extractall(dest)
    mark.write_text(f'{src}\n{stamp}')
    return dest


# %% [markdown]
# Off Colab, `BLINDSR_DRIVE` stands in for Drive; on "Colab" (a stand-in `google.colab` module that records the
# calls), Drive is mounted and the picker asked. A zip of the smoke data unpacks once and is found:

# %%
with mock.patch.dict(os.environ, BLINDSR_DRIVE=str(tmp/'drive')): test_eq(drive_folder('blindsr'), tmp/'drive'/'blindsr')
colab = mock.MagicMock()
colab.files.upload.return_value = {'faces.zip': b'...'}
with mock.patch.dict(sys.modules, {'google': mock.MagicMock(colab=colab), 'google.colab': colab}), \
     mock.patch.dict(os.environ, {'BLINDSR_DRIVE': ''}):
    test_eq(drive_folder('blindsr', mountpoint=str(tmp/'content'/'drive')), tmp/'content'/'drive'/'MyDrive'/'blindsr')
    colab.drive.mount.assert_called_once_with(str(tmp/'content'/'drive'))
    test_eq([p.name for p in upload_files()], ['faces.zip'])
    download(tmp/'x.zip'); colab.files.download.assert_called_once_with(str(tmp/'x.zip'))
with redirect_stdout(StringIO()): test_eq(upload_files(), [])
shutil.make_archive(str(tmp/'smoke_data'), 'zip', tmp/'smoke')
with redirect_stdout(StringIO()): got = unpack_data(tmp/'smoke_data.zip', tmp/'unpacked')
test_eq(find_data([got]).train_hq, tmp/'unpacked'/'train'/'GT')
(tmp/'unpacked'/'marker').write_text('kept')
test_eq(unpack_data(tmp/'smoke_data.zip', tmp/'unpacked'), tmp/'unpacked'); assert (tmp/'unpacked'/'marker').exists()

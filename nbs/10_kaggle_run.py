# %% [markdown]
# # Training on Kaggle
# > The notebook the Kaggle kernel is built from: fix torch for the GPU, install blindsr, find the faces, train within Kaggle's 12-hour limit (continuing the previous version), validate, and write the submission.

# %% [markdown]
# `blindsr_kaggle build` turns this notebook into `kaggle_kernel/blindsr-train.ipynb`, with two cells rewritten:
# the first code cell gets the source of `blindsr.cuda_guard` pasted in (it must run before blindsr is installed),
# and the `# Parameters` cell gets the build's arguments. Everything else is copied as it is, so what runs on
# Kaggle is what runs here.
#
# Run it anywhere: on a machine without Kaggle data and without a GPU (and under `nbdev_test`, and with
# `BLINDSR_SMOKE=1`) it runs in **smoke mode** — a few generated faces, a tiny network, a few steps, the whole
# notebook in seconds — and writes the same files a real run writes. `BLINDSR_WORKING` moves the outputs away
# from `/kaggle/working`, `BLINDSR_KAGGLE_INPUT` the inputs away from `/kaggle/input`.

# %% [markdown]
# ## 1. A torch that runs this GPU
#
# Nothing may import torch before this cell: on a P100 under Kaggle's CUDA 12.8 torch it installs the last build
# with `sm_60` kernels (see `nbs/09_cuda_guard.ipynb`), and prints what it found and did.

# %%
import time; KERNEL_T0 = time.time()       # the kernel's clock: the training budget counts from here
from blindsr.cuda_guard import ensure_torch
GUARD = ensure_torch()                      # 'cpu', 'ok' or 'install legacy'

# %% [markdown]
# ## 2. Parameters

# %%
# Parameters (written by blindsr_kaggle build from its arguments; rebuild rather than edit)
HOURS = 11.0  # wall-clock budget of the whole kernel; Kaggle stops GPU sessions at 12 h
GENERATOR = 'msrresnet_deep'  # a key of blindsr.models.GENERATORS
GENERATOR_KWARGS = {}  # its constructor overrides
MACHINE = 'P100'  # the accelerator asked for; the kernel uses whatever GPUs it finds
PREVIOUS = None  # the kernel (kernel_sources) whose output run/last.ckpt this run continues
GIT_URL = 'https://github.com/blindsr/blindsr'  # where blindsr is installed from, unless installed or attached as a wheel

# %% [markdown]
# ## 3. Install blindsr
#
# Already importable (a local run, the CI smoke test): nothing to do. Else a wheel attached as a dataset
# (`blindsr-*.whl` anywhere in `/kaggle/input/*/`) is installed — the way without internet — and otherwise the
# repository at `GIT_URL` (pin a version with `blindsr_kaggle build --git-url https://github.com/blindsr/blindsr@v0.1.0`).
# `--no-deps` keeps pip away from the torch the guard chose; the few runtime requirements Kaggle's image might
# lack are installed afterwards.

# %%
import glob, importlib.util, os, subprocess, sys

def install_blindsr(git_url):
    if importlib.util.find_spec('blindsr') is not None:
        print('blindsr is installed already:', importlib.util.find_spec('blindsr').origin)
        return
    root = os.environ.get('BLINDSR_KAGGLE_INPUT', '/kaggle/input')
    wheels = sorted(glob.glob(f'{root}/*/blindsr-*.whl') + glob.glob(f'{root}/*/*/blindsr-*.whl'))
    target = wheels[-1] if wheels else f'blindsr @ git+{git_url}'
    print('installing', target, flush=True)
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', target], check=True)
    needs = {'torchvision': 'torchvision', 'numpy': 'numpy', 'PIL': 'pillow', 'cv2': 'opencv-python-headless',
             'matplotlib': 'matplotlib', 'tqdm': 'tqdm', 'skimage': 'scikit-image'}
    missing = [pkg for mod, pkg in needs.items() if importlib.util.find_spec(mod) is None]
    if missing: subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', *missing], check=True)

install_blindsr(GIT_URL)

# %% [markdown]
# ## 4. Data, mode and output folder
#
# `find_data` looks for `train/GT` (or `train/HQ`, …), `val/GT` + `val/LQ` and `test/LQ` under the attached
# datasets. Smoke mode writes generated faces instead.

# %%
import json, shutil, tempfile
from pathlib import Path

import torch

import blindsr
from blindsr.core import list_images, read_image
from blindsr.data import find_data
from blindsr.kaggle import (LogFollower, adopt_previous_run, find_previous_checkpoint, input_root, make_smoke_data,
                            session_minutes, smoke_mode, train_run, working_dir)
from blindsr.train import TrainConfig

gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
data = find_data([input_root(), Path('data')])
SMOKE = smoke_mode(found_data=data.train_hq is not None, gpu=gpus > 0)
WORKING = working_dir(SMOKE)
if SMOKE: data = make_smoke_data(WORKING / 'smoke_data')
data.require('train_hq', 'test_lq')
print(f"blindsr {blindsr.__version__}, torch {torch.__version__}, {gpus} GPU(s) "
      f"{[torch.cuda.get_device_name(i) for i in range(gpus)]}; {'SMOKE MODE' if SMOKE else 'full run'}; writing to {WORKING}")
for k in ('train_hq', 'val_gt', 'val_lq', 'test_lq'):
    d = getattr(data, k)
    print(f'  {k:9} {d} ({len(list_images(d)) if d else 0} images)')

# %% [markdown]
# ## 5. Continue the previous version
#
# A kernel built with `--previous USER/SLUG` has that kernel's output attached (`kernel_sources`), with its
# `run/last.ckpt`. Its checkpoint, best weights and logs are copied into this run's folder, and this session's
# minutes are added to the schedule: the cosine stretches over both sessions and training goes on from the saved
# step, weights, optimiser and EMA.

# %%
OUT = WORKING / 'run'
gen, gen_kwargs = ('msrresnet', {'num_feat': 8, 'num_block': 1}) if SMOKE else (GENERATOR, GENERATOR_KWARGS)
prev_ckpt = find_previous_checkpoint()
prev = adopt_previous_run(prev_ckpt, OUT, gen, gen_kwargs) if prev_ckpt else None
print(f"continuing {prev['from']}: step {prev['step']}, {prev['minutes']:.0f} min trained, best val {prev['best_psnr']:.3f} dB"
      if prev else 'no previous checkpoint attached: training from scratch')

# %% [markdown]
# ## 6. Configure
#
# The time budget is what is left of `HOURS` after the set-up so far, less a reserve for the final validation,
# the submission and saving the output. Validation every 30 minutes picks `best.pt`; checkpoints every 2,000 steps
# (and on SIGTERM) keep the run safe. Smoke mode trains a 2-layer network for 6 steps (6 more when continuing).

# %%
val = dict(val_gt=str(data.val_gt), val_lq=str(data.val_lq) if data.val_lq else None) if data.val_gt else dict(val_holdout=100)
if SMOKE:
    cfg = TrainConfig(train_hq=str(data.train_hq), **val, generator=gen, generator_kwargs=gen_kwargs,
                      iters=(prev['step'] if prev else 0) + 6, batch_size=4, out_dir=str(OUT), log_every=2, val_every=3,
                      ckpt_every=1000, degrade_on='cpu', workers=0, progress=False)
else:
    minutes = session_minutes(HOURS, KERNEL_T0)
    cfg = TrainConfig(train_hq=str(data.train_hq), **val, generator=gen, generator_kwargs=gen_kwargs,
                      schedule_min=(prev['minutes'] if prev else 0) + minutes, session_min=minutes, out_dir=str(OUT),
                      val_every=10**9, val_every_min=30, ckpt_every=2000, progress=False)
    print(f'training for {minutes:.0f} min of this session ({HOURS} h budget, started {(time.time() - KERNEL_T0) / 60:.1f} min ago)')
print(json.dumps({k: v for k, v in cfg.__dict__.items() if k in ('generator', 'generator_kwargs', 'batch_size', 'iters', 'schedule_min', 'session_min', 'amp')}))

# %% [markdown]
# ## 7. Train
#
# One GPU (or the CPU): in this process. Two (Kaggle's T4×2, which is also what a P100 request gets once Kaggle
# has retired the P100): `torchrun` with one process per GPU, DistributedDataParallel. A line of progress is
# printed every 10 minutes.

# %%
with LogFollower(OUT, every_s=600):
    summary = train_run(cfg, nproc=max(1, gpus))
print(json.dumps(summary, indent=1))

# %% [markdown]
# ## 8. Validate
#
# The best weights restore the validation LQ and are scored with the organisers' PSNR (and SSIM), against the
# bicubic baseline.

# %%
from blindsr.metrics import bicubic_baseline
from blindsr.checkpoint import load_generator
from blindsr.inference import restore, validate
from blindsr.submission import check_submission, make_submission
from blindsr.demo import comparison_grid

weights = OUT / 'best.pt' if (OUT / 'best.pt').exists() else OUT / 'final.pt'
model = load_generator(weights)
val_gt = Path(cfg.val_gt) if cfg.val_gt else OUT / 'val_gt'
val_lq = Path(cfg.val_lq) if cfg.val_lq else OUT / f'val_lq_{cfg.preset}'
val_sr = Path(tempfile.mkdtemp(prefix='val_sr_'))             # 400 restored PNGs: not worth keeping in the output
scores = validate(model, val_lq, val_gt, val_sr, progress=False)
bicubic = bicubic_baseline(val_lq, val_gt)
scores.to_csv(WORKING / 'val_scores.csv')
print(f'{weights.name}: {scores.summary()}; bicubic {bicubic:.4f} dB ({scores.psnr - bicubic:+.4f} dB)')

# %% [markdown]
# ## 9. The submission
#
# Every test LQ restored at 4×, zipped as one folder of `00000.png …`, and checked before and after zipping.

# %%
test_files = list_images(data.test_lq)
h, w = read_image(test_files[0]).shape[:2]
zip_path = make_submission(model, data.test_lq, WORKING / 'submission.zip', size=(4 * w, 4 * h), progress=False)
members = check_submission(zip_path, n_expected=len(test_files), size=(4 * w, 4 * h))
print(f'{zip_path}: {len(members)} images, {zip_path.stat().st_size / 2**20:.1f} MiB, checked')

# %% [markdown]
# ## 10. Pictures and the record
#
# The training curves, a comparison grid of the first validation faces, and `kaggle_summary.json`.

# %%
shutil.copyfile(OUT / 'curves.png', WORKING / 'curves.png')
gt_of = {p.stem: p for p in list_images(val_gt)}
first = list_images(val_lq)[:3]
lqs = [read_image(p) for p in first]
comparison_grid(lqs, [restore(model, lq) for lq in lqs], [read_image(gt_of[p.stem]) for p in first],
                title=f'{weights.name}: val PSNR {scores.psnr:.2f} dB', path=WORKING / 'val_grid.png')
record = {'smoke': SMOKE, 'weights': str(weights), 'val_psnr': scores.psnr, 'val_ssim': scores.ssim, 'bicubic_psnr': bicubic,
          'submission': str(zip_path), 'continued_from': prev, 'train': summary, 'torch': torch.__version__,
          'gpus': [torch.cuda.get_device_name(i) for i in range(gpus)], 'kernel_minutes': (time.time() - KERNEL_T0) / 60}
(WORKING / 'kaggle_summary.json').write_text(json.dumps(record, indent=1, default=str))
for f in ('submission.zip', 'curves.png', 'val_grid.png', 'val_scores.csv', 'kaggle_summary.json', 'run/best.pt', 'run/last.ckpt'):
    assert (WORKING / f).exists(), f
print(f"done in {record['kernel_minutes']:.1f} min; outputs in {WORKING}:", ', '.join(sorted(p.name for p in WORKING.iterdir())))

# %%
from IPython.display import Image as IPImage, display
display(IPImage(filename=str(WORKING / 'curves.png')), IPImage(filename=str(WORKING / 'val_grid.png')))

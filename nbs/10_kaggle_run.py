# %% [markdown]
# # Training on Kaggle
# > The notebook the Kaggle kernel is built from: fix torch for the GPU, install the blindsr it carries, find the faces, train within Kaggle's 12-hour limit (continuing the previous version), validate, and write the submission.

# %% [markdown]
# You do not open this notebook to train: `blindsr_kaggle build --user YOU --dataset YOU/ai6126-faces` turns it into
# the Kaggle kernel, `blindsr_kaggle push` runs it on Kaggle's GPU, and `blindsr_kaggle output` downloads its
# checked `submission.zip`, curves and scores (the user guide, `nbs/12_guide.ipynb`, has every step). You run it
# here to try the whole kernel on a CPU in seconds, or read it to see what the kernel does, cell by cell.
#
# `blindsr_kaggle build` turns this notebook into `kaggle_kernel/blindsr-train.ipynb` (see
# `nbs/09a_kaggle_build.ipynb`): the parameters cell gets the build's arguments, the CUDA guard's source and
# `install_blindsr`'s source are pasted in, and a wheel of the checkout is packed into the notebook. Everything else
# is copied as it is, so what runs on Kaggle is what runs here.
#
# Run it anywhere: on a machine without Kaggle data and without a GPU (and under `nbdev_test`, and with
# `BLINDSR_SMOKE=1`) it runs in **smoke mode** — a few generated faces, a tiny network, a few steps, the whole
# notebook in seconds — and writes the same files a real run writes. `BLINDSR_WORKING` moves the outputs away
# from `/kaggle/working`, `BLINDSR_KAGGLE_INPUT` the inputs away from `/kaggle/input`.

# %% [markdown]
# ## 1. Parameters
#
# Written by the build. `MACHINE_ASKED` is what `kernel-metadata.json` asks for; `MACHINE`, set in the next cell
# from `nvidia-smi`, is what runs — on Kaggle today a P100 request runs on two T4s.

# %%
# Parameters (written by blindsr_kaggle build from its arguments; rebuild rather than edit)
MACHINE_ASKED = 'P100'  # the accelerator kernel-metadata.json asks for; MACHINE (set below) is what runs
MACHINE_NOTE = 'Asked for NvidiaTeslaP100 (--machine P100, as designed). Kaggle has retired the P100 and runs P100 requests on T4 x2 (two T4s, sm_75): the kernel trains on the GPUs it finds (DDP on two), and swaps torch for a P100 build only if a P100 does turn up.'
HOURS = 11.0  # wall-clock budget of the whole kernel; Kaggle stops GPU sessions at 12 h
GENERATOR = 'msrresnet_deep'  # a key of blindsr.models.GENERATORS
GENERATOR_KWARGS = {}  # its constructor overrides
PREVIOUS = None  # the kernel (kernel_sources) whose output run/last.ckpt this run continues

# %% [markdown]
# ## 2. A torch that runs this GPU
#
# Nothing may import torch before this cell: on a P100 under a torch without `sm_60` kernels it swaps in the last
# build that has them (see `nbs/09_cuda_guard.ipynb`), and prints what it found and did.

# %%
import time; KERNEL_T0 = time.time()       # the kernel's clock: the training budget counts from here
print(MACHINE_NOTE)
from blindsr.cuda_guard import ensure_torch, machine_description
MACHINE = machine_description()             # what runs, e.g. '2 x Tesla T4 (sm_75)', whatever was asked for
print(f'running on: {MACHINE}')
GUARD = ensure_torch()                      # 'cpu', 'ok' or 'install legacy'

# %% [markdown]
# ## 3. blindsr, from this notebook
#
# The built kernel carries a wheel of the checkout it was built from (the next cell, hidden: base64 and its
# sha256), installed with no internet and no git, so the kernel runs exactly that code — a Kaggle dataset of the
# wheel would be one more thing to create, version and attach for every build. Here, unbuilt, the cell is empty
# and the blindsr of this environment runs. Either way the cell after prints the version and the commit.

# %%
# Packed blindsr wheel (written by blindsr_kaggle build; here none: the installed blindsr runs)
WHEEL = None

# %%
from blindsr.notebook_runtime import install_blindsr
BLINDSR = install_blindsr(WHEEL)            # {'version', 'commit', 'source'}

# %% [markdown]
# ## 4. Data, mode and output folder
#
# `find_data` looks under the attached datasets, at any depth, for folders named like `train/GT` (or `train/HQ`, …),
# `val/GT` + `val/LQ` and `test/LQ` holding images of one size, and says which it picked when there was a choice.
# Smoke mode writes generated faces instead.

# %%
import json
from pathlib import Path

import torch

from blindsr.data import find_data
from blindsr.notebook_runtime import (LogFollower, adopt_previous_run, find_previous_checkpoint, input_root, make_smoke_data,
                                      session_minutes, smoke_mode, train_run, validate_and_submit, working_dir)
from blindsr.train import TrainConfig

gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
data = find_data([input_root(), Path('data')])
SMOKE = smoke_mode(found_data=data.train_hq is not None, gpu=gpus > 0)
WORKING = working_dir(SMOKE)
if SMOKE: data = make_smoke_data(WORKING / 'smoke_data')
data.require('train_hq', 'test_lq')
print(f"torch {torch.__version__}, {gpus} GPU(s) {[torch.cuda.get_device_name(i) for i in range(gpus)]}; "
      f"{'SMOKE MODE' if SMOKE else 'full run'}; writing to {WORKING}")
print(data.report())

# %% [markdown]
# ## 5. Continue the previous version
#
# A kernel built with `--previous USER/SLUG` has that kernel's output attached (`kernel_sources`; Kaggle mounts it
# at `/kaggle/input/notebooks/USER/SLUG/`), with its `run/last.ckpt`. Its checkpoint, best weights and logs are
# copied into this run's folder, and this session's minutes are added to the schedule: the cosine stretches over
# both sessions and training goes on from the saved step, weights, optimiser and EMA. Built with `--previous` and
# nothing attached, the kernel stops and lists what is there; built without it, a real run starts afresh (smoke mode
# looks anyway, to show the continuation).

# %%
OUT = WORKING / 'run'
gen, gen_kwargs = ('msrresnet', {'num_feat': 8, 'num_block': 1}) if SMOKE else (GENERATOR, GENERATOR_KWARGS)
prev_ckpt = find_previous_checkpoint(expected=None if SMOKE else PREVIOUS) if SMOKE or PREVIOUS else None
prev = adopt_previous_run(prev_ckpt, OUT, gen, gen_kwargs) if prev_ckpt else None
print(f"continuing {prev['from']}: step {prev['step']}, {prev['minutes']:.0f} min trained, best val {prev['best_psnr']:.3f} dB"
      if prev else 'no previous checkpoint attached: training from scratch')

# %% [markdown]
# ## 6. Configure
#
# This session trains for what is left of `HOURS` after the set-up so far, less a reserve for the final validation,
# the submission and saving the output (`session_min`); the learning-rate schedule spans the previous sessions'
# minutes plus this one's (`schedule_min`). Validation every 30 minutes picks `best.pt`; checkpoints every 2,000
# steps (and on SIGTERM) keep the run safe. Smoke mode trains a 2-layer network for 6 steps (6 more when continuing).

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
# One GPU (or the CPU): in this process. Two (Kaggle's T4×2, which is also what a P100 request gets now):
# `torchrun` with one process per GPU, DistributedDataParallel. A line of progress is printed every 10 minutes.

# %%
with LogFollower(OUT, every_s=600):
    summary = train_run(cfg, nproc=max(1, gpus))
print(json.dumps(summary, indent=1))

# %% [markdown]
# ## 8. Validate, submit, draw
#
# The best weights restore the validation LQ and are scored with the organisers' PSNR (and SSIM), against the
# bicubic baseline; every test LQ is restored at 4× and zipped as one folder of `00000.png …`, checked before and
# after zipping; the training curves and a comparison grid of the first validation faces go beside it
# (`blindsr.notebook_runtime.validate_and_submit`).

# %%
val_gt = Path(cfg.val_gt) if cfg.val_gt else OUT / 'val_gt'
val_lq = Path(cfg.val_lq) if cfg.val_lq else OUT / f'val_lq_{cfg.preset}'
result = validate_and_submit(OUT, val_gt, val_lq, data.test_lq, WORKING)

# %% [markdown]
# ## 9. The record
#
# `kaggle_summary.json`: what ran (the blindsr version and commit, the machine asked for and the one that ran), the
# scores, and the training summary.

# %%
record = {'smoke': SMOKE, 'blindsr': BLINDSR, 'machine_asked': MACHINE_ASKED, 'machine': MACHINE, **result,
          'continued_from': prev, 'train': summary, 'torch': torch.__version__,
          'gpus': [torch.cuda.get_device_name(i) for i in range(gpus)], 'kernel_minutes': (time.time() - KERNEL_T0) / 60}
(WORKING / 'kaggle_summary.json').write_text(json.dumps(record, indent=1, default=str))
for f in ('submission.zip', 'curves.png', 'val_grid.png', 'val_scores.csv', 'kaggle_summary.json', 'run/best.pt', 'run/last.ckpt'):
    assert (WORKING / f).exists(), f
print(f"done in {record['kernel_minutes']:.1f} min; outputs in {WORKING}:", ', '.join(sorted(p.name for p in WORKING.iterdir())))

# %%
from IPython.display import Image as IPImage, display
display(IPImage(filename=str(WORKING / 'curves.png')), IPImage(filename=str(WORKING / 'val_grid.png')))

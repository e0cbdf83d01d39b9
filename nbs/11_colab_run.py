# %% [markdown]
# # Training on Colab
# > The notebook the Colab notebook is built from: a torch that runs the GPU, the blindsr it carries, the data from Google Drive (or an uploaded zip), training whose checkpoint lives on Drive so that a new runtime resumes it, then validation, the submission zip and pictures.

# %% [markdown]
# On Colab you open the notebook built from this one (the README's "Open in Colab" badge), put the course data in
# your Google Drive, and *Run all*: it trains, resumes after a disconnect, and downloads a checked `submission.zip`
# (the user guide, `nbs/12_guide.ipynb`, has the steps). You run this source here to try it all on a CPU in seconds.
#
# `blindsr_colab build` turns this notebook into `colab/blindsr-colab.ipynb`, which the README's "Open in Colab"
# badge opens (or which you upload to Colab by hand: it carries everything it needs). The build pastes in the
# CUDA guard and `install_blindsr` and packs a wheel of the checkout, as for the Kaggle kernel
# (`nbs/09a_kaggle_build.ipynb`); the parameters below are Colab form fields, edited in Colab.
#
# Colab ends a runtime when it sits idle and after 12 hours, and its disk goes with it. So the run folder —
# checkpoints, logs, best weights, the submission — is on Google Drive: after a disconnect, *Run all* again and
# training resumes from the last checkpoint, on the same learning-rate schedule (`SCHEDULE_MIN` in all, at most
# `SESSION_MIN` per runtime).
#
# Off Colab (a laptop, CI) it runs as it is: `BLINDSR_DRIVE` stands in for Drive, and without data and a GPU (or
# with `BLINDSR_SMOKE=1`, or under `nbdev_test`) it runs in **smoke mode** — generated faces, a tiny network, a few
# steps — writing the same files.

# %% [markdown]
# ## 1. Parameters

# %%
# Parameters (Colab shows them as a form; edit them there)
#@markdown A folder in My Drive for the data and the run (checkpoints there survive a disconnect):
DRIVE_FOLDER = 'blindsr'  #@param {type:"string"}
#@markdown The course data in that folder: a zip (or a folder) holding train/GT, val/GT, val/LQ, test/LQ at any depth; if it is not there, Colab asks you to upload it:
DATA = 'ai6126-faces.zip'  #@param {type:"string"}
#@markdown Minutes of training in all, over as many runtimes as it takes (the learning-rate schedule's length):
SCHEDULE_MIN = 600  #@param {type:"number"}
#@markdown Minutes of training in this runtime, at most (Colab ends runtimes after 12 hours, sooner on the free tier):
SESSION_MIN = 240  #@param {type:"number"}
#@markdown The generator, a key of blindsr.models.GENERATORS (msrresnet, msrresnet_deep, rcan_lite, plksr, resunet):
GENERATOR = 'msrresnet_deep'  #@param {type:"string"}
GENERATOR_KWARGS = {}  # its constructor overrides, e.g. {"num_block": 24}
MACHINE_NOTE = 'Colab: Runtime > Change runtime type > T4 GPU (or better) before running; without a GPU this trains on the CPU.'

# %% [markdown]
# ## 2. A torch that runs this GPU
#
# Colab's GPUs (T4 and newer) run its torch; the guard (`nbs/09_cuda_guard.ipynb`) checks that before anything
# imports torch, and says what it found.

# %%
import time; T0 = time.time()
print(MACHINE_NOTE)
from blindsr.cuda_guard import ensure_torch, machine_description
MACHINE = machine_description()             # what runs, e.g. 'Tesla T4 (sm_75)'
print(f'running on: {MACHINE}')
GUARD = ensure_torch()

# %% [markdown]
# ## 3. blindsr, from this notebook
#
# The built notebook carries a wheel of the checkout it was built from (the next cell, hidden), checked by its
# sha256 and installed with no internet and no git; here, unbuilt, the blindsr of this environment runs. The cell
# after says which version and commit.

# %%
# Packed blindsr wheel (written by blindsr_colab build; here none: the installed blindsr runs)
WHEEL = None

# %%
from blindsr.notebook_runtime import install_blindsr
BLINDSR = install_blindsr(WHEEL)

# %% [markdown]
# ## 4. Drive, data, mode
#
# On Colab, Drive is mounted (a sign-in prompt the first time) and the data zip is looked for in
# `My Drive/DRIVE_FOLDER/`; if it is missing, Colab asks for it in the browser. A zip is unpacked once onto the
# runtime's local disk, which reads faster than Drive, and searched at any depth (`blindsr.data.find_data`).

# %%
import json, tempfile
from pathlib import Path

import torch

from blindsr.data import find_data
from blindsr.notebook_runtime import (LogFollower, checkpoint_state, download, drive_folder, make_smoke_data, on_colab,
                                      smoke_mode, train_run, unpack_data, upload_files, validate_and_submit, working_dir)
from blindsr.train import TrainConfig

gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
DRIVE = drive_folder(DRIVE_FOLDER)
src = DRIVE / DATA if DATA else None
if on_colab() and (src is None or not src.exists()):
    print(f'{src} not found: pick the data zip to upload (or put it in My Drive/{DRIVE_FOLDER}/ and run again)')
    uploaded = upload_files()
    src = uploaded[0] if uploaded else src
data = find_data([unpack_data(src, Path(tempfile.gettempdir()) / 'blindsr_data') if src is not None and src.exists() else Path('data')])
SMOKE = smoke_mode(found_data=data.train_hq is not None, gpu=gpus > 0)
WORKING = working_dir(SMOKE)
if SMOKE: data = make_smoke_data(WORKING / 'smoke_data')
data.require('train_hq', 'test_lq')
print(f"torch {torch.__version__}, {gpus} GPU(s); {'SMOKE MODE' if SMOKE else 'full run'}; the run is in {DRIVE}")
print(data.report())

# %% [markdown]
# ## 5. Resume from Drive
#
# `DRIVE/run` holds the run. If it has a checkpoint — an earlier runtime of this notebook — the Trainer resumes
# from it: same step, weights, optimiser, EMA and schedule. It must have trained the same generator.

# %%
RUN = DRIVE / 'run'
gen, gen_kwargs = ('msrresnet', {'num_feat': 8, 'num_block': 1}) if SMOKE else (GENERATOR, GENERATOR_KWARGS)
state = checkpoint_state(RUN / 'last.ckpt', gen, gen_kwargs, fix=f'set GENERATOR back, or DRIVE_FOLDER to a new folder') \
        if (RUN / 'last.ckpt').exists() else None
print(f"resuming {state['from']}: step {state['step']}, {state['minutes']:.0f} of {SCHEDULE_MIN} min trained" if state
      else f'no checkpoint in {RUN}: training from scratch')

# %% [markdown]
# ## 6. Configure and train
#
# The schedule spans `SCHEDULE_MIN` minutes over all runtimes; this runtime stops after `SESSION_MIN` (saving a
# checkpoint), or when the schedule is done. Checkpoints every 2,000 steps go to Drive, so a disconnect loses at
# most that. Smoke mode trains a 2-layer network for 6 steps (6 more when resuming).

# %%
val = dict(val_gt=str(data.val_gt), val_lq=str(data.val_lq) if data.val_lq else None) if data.val_gt else dict(val_holdout=100)
if SMOKE:
    cfg = TrainConfig(train_hq=str(data.train_hq), **val, generator=gen, generator_kwargs=gen_kwargs,
                      iters=(state['step'] if state else 0) + 6, batch_size=4, out_dir=str(RUN), log_every=2, val_every=3,
                      ckpt_every=1000, degrade_on='cpu', workers=0, progress=False)
else:
    cfg = TrainConfig(train_hq=str(data.train_hq), **val, generator=gen, generator_kwargs=gen_kwargs,
                      schedule_min=SCHEDULE_MIN, session_min=SESSION_MIN, out_dir=str(RUN),
                      val_every=10**9, val_every_min=30, ckpt_every=2000, progress=False)
with LogFollower(RUN, every_s=600):
    summary = train_run(cfg, nproc=max(1, gpus))
print(json.dumps(summary, indent=1))

# %% [markdown]
# ## 7. Validate, submit, download
#
# The best weights are scored on the validation pairs (organisers' PSNR, against bicubic); the test faces are
# restored and zipped, checked; the curves and a comparison grid are drawn — all into the Drive folder. On Colab
# the browser then downloads `submission.zip`.

# %%
val_gt = Path(cfg.val_gt) if cfg.val_gt else RUN / 'val_gt'
val_lq = Path(cfg.val_lq) if cfg.val_lq else RUN / f'val_lq_{cfg.preset}'
result = validate_and_submit(RUN, val_gt, val_lq, data.test_lq, DRIVE)
record = {'smoke': SMOKE, 'blindsr': BLINDSR, 'machine': MACHINE, **result, 'resumed_from': state, 'train': summary,
          'torch': torch.__version__, 'minutes': (time.time() - T0) / 60}
(DRIVE / 'colab_summary.json').write_text(json.dumps(record, indent=1, default=str))
print(f"done in {record['minutes']:.1f} min; in {DRIVE}:", ', '.join(sorted(p.name for p in DRIVE.iterdir())))
download(DRIVE / 'submission.zip')

# %%
from IPython.display import Image as IPImage, display
display(IPImage(filename=str(DRIVE / 'curves.png')), IPImage(filename=str(DRIVE / 'val_grid.png')))

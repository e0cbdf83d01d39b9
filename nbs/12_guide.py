# %% [markdown]
# # User guide
# > The three things people do with blindsr, each as a short walk-through you can run: make LQ like the organisers', train on Kaggle or Colab and submit, and use blindsr from your own notebook.

# %%
#| hide
import contextlib
import io
import json
import os
import re
import shlex
import tempfile
from importlib.metadata import entry_points
from pathlib import Path

import matplotlib.pyplot as plt
from fastcore.test import test_eq

from blindsr.core import list_images, read_image, write_png
from blindsr.samples import sample_faces

WORK = Path(tempfile.mkdtemp(prefix='blindsr_guide_'))     # the walk-throughs' working folder
SCRIPTS = {e.name: e for e in entry_points(group='console_scripts') if e.name.startswith('blindsr_')}


def run_command(command: str,  # a command line as you would type it, e.g. 'blindsr_degrade faces/GT faces/LQ'
                expect: int = 0,  # the exit status it must end with
               ) -> None:
    "Run a blindsr_* command in this process, in WORK, as the shell would; print it and what it printed (not progress bars)."
    prog, *args = shlex.split(command)
    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(WORK)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): status = SCRIPTS[prog].load()(args)
    finally: os.chdir(here)
    progress = re.compile(r'\d+%\|')                        # tqdm's bars go to stderr; error messages stay
    shown = [l for part in err.getvalue().split('\r') for l in part.splitlines() if l.strip() and not progress.search(l)]
    print('\n'.join([f'$ {command}', *out.getvalue().rstrip('\n').splitlines(), *shown, f'(exit status {status})']))
    test_eq(status, expect)


def show_images(images, titles, size: float = 2.2):
    "A row of images (nearest-neighbour, so LQ pixels stay visible), each with its title."
    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size + 0.4), squeeze=False)
    for ax, img, title in zip(axes[0], images, titles):
        ax.imshow(img, interpolation='nearest'); ax.set_title(title, fontsize=8); ax.axis('off')
    fig.tight_layout()


# %% [markdown]
# blindsr restores 512×512 faces from 128×128 copies degraded in ways nobody tells you (the NTU AI6126 project). Most
# people come to it for one of three things:
#
# 1. **[Make LQ like the organisers'](#make-lq-like-the-organisers)**: low-quality faces that are degraded the way
#    the course's test faces were, to train and validate on;
# 2. **[Train on Kaggle or Colab and submit](#train-on-kaggle-or-colab-and-submit)**: a free GPU trains a model for
#    hours, and you download a checked `submission.zip` for CodaLab;
# 3. **[Use blindsr from your own notebook](#use-blindsr-from-your-own-notebook)**: `import` it, degrade a face,
#    restore it and score it in ten lines.
#
# Install it once, from a clone (a CPU is enough for everything on this page):
#
# ```bash
# git clone https://github.com/blindsr/blindsr && cd blindsr
# pip install -e .          # for a CPU-only machine, install torch from https://download.pytorch.org/whl/cpu first
# blindsr_demo              # degrades and restores a sample face, writes demo.png: proof that it works
# ```
#
# The walk-throughs below run here as you read them: each `$ blindsr_…` block is the command and what it printed,
# run in a scratch folder on 16 small faces, in seconds.

# %% [markdown]
# ## Make LQ like the organisers'
#
# The course gives you HQ faces (`train/GT`, 5,000 of them, 512×512) and only the validation and test faces as LQ.
# A model learns from HQ/LQ pairs, so the LQ you make must be degraded the way the organisers degraded theirs:
# blur, resize, noise and JPEG twice (the Real-ESRGAN second-order pipeline), with the course's numbers. blindsr
# reproduces it exactly as the preset `ai6126_2024` (`ai6126_2023` is last year's single-order pipeline).
#
# **1. A folder of HQ faces.** Here 16 small ones (128×128; the course's are 512×512) stand in for `train/GT`:

# %%
#| exec_doc
for i, face in enumerate(sample_faces(16, 128)): write_png(WORK/'faces'/'GT'/f'{i:05d}.png', face)
print(len(list_images(WORK/'faces'/'GT')), 'faces in faces/GT')

# %% [markdown]
# **2. One command makes their LQ**, a quarter of the size, same names, as PNG:

# %%
#| exec_doc
#| echo: false
run_command('blindsr_degrade faces/GT faces/LQ --preset ai6126_2024 --seed 0')

# %%
#| exec_doc
#| echo: false
stems = [p.stem for p in list_images(WORK/'faces'/'GT')][:4]
show_images([read_image(WORK/'faces'/d/f'{s}.png') for s in stems for d in ('GT', 'LQ')],
            [f'{s}: {d} {read_image(WORK/"faces"/d/f"{s}.png").shape[0]}²' for s in stems for d in ('GT', 'LQ')])

# %% [markdown]
# Each face gets its own random draw of blur, resize, noise and JPEG, which depends only on the preset, the seed and
# the file's name — so the same command on the same faces gives the same bytes on any machine, adding faces never
# changes the LQ of the others, and an interrupted run resumes where it stopped. `faces/LQ/degradation.json` records
# every draw. For the course: `blindsr_degrade data/train/GT data/train/LQ --seed 0` (a few minutes on all cores).
# Training does not even need this folder: `blindsr_train` degrades each batch on the fly, with fresh draws.
#
# **3. Check that your LQ look like theirs.** Degrade the validation GT yourself and compare the result with the
# organisers' validation LQ: `blindsr_compare_lq` measures noise, blockiness, JPEG quality, sharpness, colour and the
# error against the GT on every image of both sets, and tests whether each statistic could come from one
# degradation. Here "theirs" is the same preset with another seed, so they should match:

# %%
#| exec_doc
#| echo: false
run_command('blindsr_degrade faces/GT theirs/LQ --preset ai6126_2024 --seed 1')
run_command('blindsr_compare_lq faces/LQ theirs/LQ --gt faces/GT --no-plot --quiet')

# %% [markdown]
# LQ made another way are told apart. The 2024 seed report's preset compresses far harder (JPEG quality 5–50):

# %%
#| exec_doc
#| echo: false
run_command('blindsr_degrade faces/GT other/LQ --preset seed_report_2024 --seed 1')
run_command('blindsr_compare_lq faces/LQ other/LQ --gt faces/GT --no-plot --quiet', expect=1)

# %% [markdown]
# The exit status says it to scripts: 0 same degradation, 1 different. With the course data:
#
# ```bash
# blindsr_degrade data/val/GT runs/val_LQ_ours --seed 0
# blindsr_compare_lq runs/val_LQ_ours data/val/LQ --gt data/val/GT     # also draws OURS_vs_THEIRS.png
# ```
#
# 16 faces can only catch large differences; the 100 validation faces see much finer ones. How the presets were
# checked against LQ nobody here made is in the README; the mathematics, one piece at a time, in
# [the degradation notebook](01_degradation.ipynb).

# %% [markdown]
# ## Train on Kaggle or Colab and submit
#
# A CPU trains far too slowly for this task; Kaggle (30 GPU hours a week) and Colab lend GPUs for free. blindsr
# builds the notebook that runs there from [the Kaggle run notebook](10_kaggle_run.ipynb) (or
# [the Colab one](11_colab_run.ipynb)), with a wheel of your checkout packed inside, so no internet or git is needed
# to install blindsr there. The notebook checks that torch runs the GPU, finds the faces, trains for as long as the
# session allows, validates, and writes `submission.zip`.
#
# ### On Kaggle
#
# From a clone, with the course data in `data/` (`train/GT`, `val/GT`, `val/LQ`, `test/LQ`) and an API token from
# kaggle.com/settings ("Create New Token", saved as `~/.kaggle/access_token`; GPUs need a phone-verified account):
#
# ```bash
# pip install -e . 'kaggle==2.2.5' six        # the Kaggle CLI 2.2.5 needs six, which it does not declare
# mkdir -p ai6126-faces && (cd data && zip -qr ../ai6126-faces/ai6126-faces.zip train val test)
# kaggle datasets init -p ai6126-faces
# sed -i 's/INSERT_TITLE_HERE/ai6126 faces/; s/INSERT_SLUG_HERE/ai6126-faces/' ai6126-faces/dataset-metadata.json
# kaggle datasets create -p ai6126-faces      # the faces as a private dataset YOU/ai6126-faces (once)
# blindsr_kaggle build --user YOU --dataset YOU/ai6126-faces
# blindsr_kaggle push --dry-run               # shows the command, the metadata and every check; sends nothing
# blindsr_kaggle push                         # starts the run: up to 11 hours on Kaggle's GPU
# while blindsr_kaggle status; [ $? -eq 3 ]; do sleep 600; done     # 0 complete, 3 queued/running, 1 error
# blindsr_kaggle output                       # downloads it to runs/kaggle/blindsr-train/ and checks submission.zip
# ```
#
# Upload `runs/kaggle/blindsr-train/submission.zip` to CodaLab; `curves.png`, `val_grid.png` and `val_scores.csv`
# beside it show how the training went. To train longer, continue the same run in a new version:
# `blindsr_kaggle build --previous YOU/blindsr-train && blindsr_kaggle push` (it picks up `run/last.ckpt` from the
# previous output and stretches the learning-rate schedule over both sessions). `blindsr_kaggle build --help` lists
# the rest: `--machine T4`, `--hours`, `--generator`, a pinned dataset version `YOU/ai6126-faces/3`.
#
# ### On Colab
#
# 1. Open `colab/blindsr-colab.ipynb` with the README's "Open in Colab" badge (or upload the file at
#    colab.research.google.com), and pick *Runtime → Change runtime type → T4 GPU*.
# 2. Put the data as `My Drive/blindsr/ai6126-faces.zip` (`cd data && zip -qr ../ai6126-faces.zip train val test`);
#    without it the notebook asks you to upload one.
# 3. *Runtime → Run all*; sign in to Drive when asked. It trains for `SESSION_MIN` minutes of a `SCHEDULE_MIN`-minute
#    schedule, saving checkpoints to `My Drive/blindsr/run/`. When Colab disconnects, *Run all* again: it resumes.
# 4. At the end the browser downloads `submission.zip` (a copy stays in `My Drive/blindsr/`).
#
# ### Try it here first
#
# `nbdev_test --path nbs/10_kaggle_run.ipynb` runs the whole Kaggle notebook on a CPU in seconds (smoke mode:
# generated faces, a tiny network, a few steps), writing the same files. Its last step is what you can also do
# yourself with any weights — restore a folder of test LQ into a checked zip, and score it when you have the GT.
# Here with the weights shipped with blindsr, on the small LQ made above (the course's test LQ are 128×128 and
# need no `--size`: 512 is the default). The score only shows the mechanics: these 32×32 thumbnails are far from
# the faces the model learnt.

# %%
#| exec_doc
#| echo: false
run_command('blindsr_submit faces/LQ submission.zip --size 128')
run_command('blindsr_evaluate submission.zip faces/GT')

# %% [markdown]
# `blindsr_evaluate` computes the organisers' PSNR (the leaderboard number) and SSIM, and writes one CSV row per
# image; missing, extra or wrongly sized predictions are an error that lists them, never skipped.

# %% [markdown]
# ## Use blindsr from your own notebook
#
# Everything the commands do is a function you can call. Ten lines degrade a face as the organisers did, restore it
# with the shipped model and score both against the original:

# %%
import numpy as np
from blindsr.samples import astronaut_face
from blindsr.degradation import sample, degrade_image
from blindsr.checkpoint import load_generator, default_weights
from blindsr.inference import restore
from blindsr.metrics import psnr, bicubic_psnr
from blindsr.demo import comparison_grid

# %%
#| exec_doc
hq = astronaut_face()                                          # (512, 512, 3) uint8: a public-domain face
params = sample('ai6126_2024', np.random.default_rng(0))       # one random draw of the 2024 degradation
lq = degrade_image(hq, params)                                 # (128, 128, 3) uint8, deterministic given params
model = load_generator(default_weights(), device='cpu')        # the MSRResNet shipped with blindsr
sr = restore(model, lq)                                        # (512, 512, 3) uint8: 4x, on the model's device
print(params.caption(0))
print(f'bicubic {bicubic_psnr(lq, hq):.2f} dB, blindsr {psnr(sr, hq):.2f} dB')

# %% [markdown]
# `sample` draws the parameters and `degrade_image` applies them, so the same draw can be shown, stored or applied
# again. `restore` takes one image or a batch, as uint8 arrays, PIL images or float tensors, and returns the same
# kind (`tta='flip'` averages with the mirrored face, `tile=` bounds the memory for big inputs). Side by side:

# %%
#| exec_doc
comparison_grid(lq, {'blindsr': sr}, hq, zoom=(0.28, 0.3, 0.28, 0.4), panel=2.4)

# %% [markdown]
# The same on folders, with your own weights, and training from Python — the functions behind `blindsr_restore`,
# `blindsr_evaluate` and `blindsr_train`:

# %%
#| eval: false
from blindsr.core import list_images
from blindsr.inference import restore_files
from blindsr.metrics import evaluate
from blindsr.train import TrainConfig, Trainer

model = load_generator('runs/deep/best.pt')                     # any blindsr weights, checkpoint or BasicSR .pth
restore_files(model, list_images('data/val/LQ'), 'results/val')
print(evaluate('results/val', 'data/val/GT').summary())         # the organisers' PSNR and SSIM
cfg = TrainConfig(train_hq='data/train/GT', val_gt='data/val/GT', val_lq='data/val/LQ',
                  generator='msrresnet_deep', time_budget_min=60, out_dir='runs/deep')
Trainer(cfg).fit()                                              # on the best device; resumes when run again


# %% [markdown]
# Each module's notebook shows its functions with examples: [degradation](01_degradation.ipynb),
# [sample faces](00b_samples.ipynb), [data folders](04_data.ipynb), [the training step](04d_train_step.ipynb), the
# generators ([MSRResNet](03a_msrresnet.ipynb), [RCAN-lite](03b_rcan.ipynb), [PLKSR](03c_plksr.ipynb),
# [ResUNet](03e_resunet.ipynb)).

# %%
#| hide
# Every blindsr_… command line on this page and in the README names only flags its command has: the guide cannot
# drift from the commands.
def command_lines(markdown: str) -> list[str]:
    "Every blindsr_* command line in code blocks and code spans of `markdown` (up to ;, &&, |, # or the span's end)."
    markdown = re.sub(r'\\\n\s*', ' ', markdown)                # a line continued with a backslash is one line
    spans = re.findall(r'```[a-z]*\n(.*?)```', markdown, re.S) + re.findall(r'`([^`\n]+)`', markdown)
    return [m.strip() for s in spans for m in re.findall(r'(blindsr_[a-z_]+[^;&|#`\n]*)', s) if m.split()[0] in SCRIPTS]


def help_text(prog: str, *sub: str) -> str:
    "What `prog [sub] --help` prints (in this process)."
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit): SCRIPTS[prog].load()([*sub, '--help'])
    return out.getvalue()


def unknown_flags(line: str) -> list[str]:
    "The --flags of a command line that its command's help does not list."
    words = shlex.split(line.replace('[', ' ').replace(']', ' ').replace('…', ' '))
    text = help_text(words[0])
    sub = words[1] if len(words) > 1 and not words[1].startswith('-') else None      # a subcommand, listed as {a,b} or one per line
    if sub and (re.search(r'\{[a-z,]*\b' + re.escape(sub) + r'\b[a-z,]*\}', text) or re.search(rf'^\s+{re.escape(sub)}\s', text, re.M)):
        text += help_text(*words[:2])
    return [w for w in words[1:] if w.startswith('--') and w.split('=')[0] not in text]


here = Path('12_guide.ipynb') if Path('12_guide.ipynb').exists() else Path('nbs/12_guide.ipynb')
docs = {p.name: '\n'.join(''.join(c['source']) for c in json.loads(p.read_text())['cells'] if c['cell_type'] == 'markdown')
        for p in (here, here.parent/'index.ipynb')}
lines = {name: command_lines(md) for name, md in docs.items()}
assert len(lines['12_guide.ipynb']) >= 8 and len(lines['index.ipynb']) >= 8, lines
test_eq({name: {l: unknown_flags(l) for l in ls if unknown_flags(l)} for name, ls in lines.items()},
        {'12_guide.ipynb': {}, 'index.ipynb': {}})
test_eq(unknown_flags('blindsr_degrade a b --seed 0 --no-such-flag'), ['--no-such-flag'])

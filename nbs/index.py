# %% [markdown]
# # blindsr
# > Blind face super-resolution, 128 → 512: the AI6126 degradations, models under the parameter cap, a fast
# > resumable trainer, and the organisers' exact metric — in notebooks that run on Kaggle, Colab or a laptop.

# %% [markdown]
# blindsr restores a 512×512 face from a 128×128 copy that was blurred, resized, noised and JPEG-compressed by
# amounts nobody tells you — the NTU AI6126 "blind face super-resolution" project. It gives you, as one
# `import blindsr`:
#
# - `blindsr.core` — image I/O that turns any PNG/JPEG/WebP/BMP into RGB uint8 and names the file that broke;
#   device choice that catches a P100 under a torch build without `sm_60` before your first kernel dies.
# - `blindsr.metrics` — the organisers' PSNR to 1e-9 dB, SSIM, and `blindsr_evaluate PRED GT` for a folder or a
#   CodaLab submission zip.

# %% [markdown]
# ## Install and run
#
# The main job (a fresh machine, no data, no GPU needed):
#
# ```bash
# git clone https://github.com/blindsr/blindsr && cd blindsr
# pip install -e . && blindsr_evaluate --help
# ```
#
# The tests (what CI runs, on a CPU in a few minutes):
#
# ```bash
# pip install -e ".[dev]" && nbdev_test && pytest tests
# ```
#
# `pip install -e .` pulls PyTorch from PyPI, a CUDA build on Linux. For a CPU-only machine install torch first
# from `https://download.pytorch.org/whl/cpu`; for a P100 (Kaggle's "GPU P100") see the device notes in
# `nbs/00_core.ipynb`.

# %% [markdown]
# ## Score a submission
#
# ```bash
# blindsr_evaluate submission.zip val/GT          # or a folder of predictions
# ```
#
# prints the mean PSNR (the leaderboard number) and SSIM, and writes one CSV row per image. Missing, extra or
# wrongly sized predictions are listed in one error, never skipped. From Python:

# %%
#| eval: false
from blindsr.metrics import evaluate
res = evaluate('results/val', 'data/val/GT')
print(res.summary())

# %% [markdown]
# ## Developing blindsr
#
# The notebooks in `nbs/` are the source; `blindsr/*.py` and this README are generated from them. Each notebook
# is paired with a `py:percent` script (jupytext) for readable diffs — edit either, then run `.ci/sync`, which
# syncs the pairs, cleans the notebooks, exports the package and rebuilds this README. `.ci/run` is what CI runs.

# %% [markdown]
# # Kaggle
# > `blindsr_kaggle`: build the Kaggle kernel from `nbs/10_kaggle_run.ipynb` (metadata and notebook, byte for byte reproducible), push it, follow its status, fetch its output; and the helpers the kernel runs.

# %%
#| default_exp kaggle

# %% [markdown]
# One push should train on a Kaggle GPU, top to bottom. The pieces:
#
# - `kaggle_kernel/` holds what `kaggle kernels push` uploads: `kernel-metadata.json` and `blindsr-train.ipynb`,
#   plus `build.json`, the arguments they were built with.
# - `blindsr_kaggle build` makes them from `nbs/10_kaggle_run.ipynb` (never by hand, so the kernel cannot drift
#   from the notebook that `nbdev_test` runs); a test rebuilds from `build.json` and compares bytes.
# - `blindsr_kaggle push | status | output` wrap the Kaggle CLI with the checks and messages it lacks.
# - The kernel itself calls the helpers at the end of this notebook: smoke data, the previous version's
#   checkpoint, the time budget, and training in one process or under `torchrun`.

# %%
#| export
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Sequence

import blindsr

# %%
#| hide
from contextlib import redirect_stdout
from io import StringIO
from unittest import mock
from fastcore.test import test_eq, test_fail

tmp = Path(tempfile.mkdtemp())

# %% [markdown]
# ## What the kernel is built from -
#
# `KernelSpec` holds the build's arguments. Kaggle names: the kernel is `USER/SLUG`, datasets are `OWNER/SLUG`
# (a bare `SLUG` means one of yours). The machine is `P100`, as the project was designed, or `T4`:
#
# - **P100** (`machine_shape: "NvidiaTeslaP100"`): one P100 (sm_60). Kaggle's image carries a torch without
#   sm_60 kernels, which the kernel's first cell fixes. Kaggle is retiring the P100: Kaggle CLI 2.x warns that
#   `NvidiaTeslaP100` "is retired" and the server then runs the kernel on T4×2 instead.
# - **T4** (`machine_shape: "NvidiaTeslaT4"`): two T4s (sm_75; Kaggle has no single-T4 shape). The kernel trains
#   with DistributedDataParallel on both.
#
# Either way the kernel uses the GPUs it finds. `hours` is the budget of the whole kernel: Kaggle stops a GPU
# session at 12 hours, so it is capped at 11.5, and the training gets what is left after set-up, less a reserve
# for the final validation, the submission and saving the output.

# %%
#| export
MACHINES = {'P100': 'NvidiaTeslaP100', 'T4': 'NvidiaTeslaT4'}   # --machine -> machine_shape
KERNEL_DIR = 'kaggle_kernel'            # what `kaggle kernels push -p` uploads, beside nbs/
CODE_FILE = 'blindsr-train.ipynb'       # the kernel notebook in it
METADATA_FILE = 'kernel-metadata.json'
BUILD_FILE = 'build.json'               # the build's arguments, so that CI can rebuild and compare
RUN_NOTEBOOK = '10_kaggle_run.ipynb'    # the source, in nbs/
PLACEHOLDER_USER = 'your-kaggle-name'   # the committed kernel's user: push refuses it
MAX_HOURS = 11.5                        # Kaggle stops GPU sessions at 12 h
RESERVE_MIN = 20.0                      # minutes kept for final validation, submission and saving the output
_OWNER = re.compile(r'[A-Za-z0-9][A-Za-z0-9_-]{0,49}$')
_SLUG = re.compile(r'[a-z0-9][a-z0-9_-]{1,49}$')


def slugify(title: str) -> str:
    "Kaggle's slug of a title: lower case, runs of other characters become one hyphen."
    return re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')


def qualify(ref: str,  # 'OWNER/SLUG', or 'SLUG' for one of `user`'s
            user: str,
            what: str = 'dataset',  # what it names, for the error message
           ) -> str:  # 'OWNER/SLUG'
    "A Kaggle reference with its owner; raises naming the bad value."
    ref = ref.strip()
    if '/' not in ref: ref = f'{user}/{ref}'
    owner, _, slug = ref.partition('/')
    if not _OWNER.match(owner) or not _SLUG.match(slug):
        raise ValueError(f'{what} must be OWNER/SLUG (letters, digits, hyphens; slug in lower case), got {ref!r}; '
                         f'the slug is the last part of its kaggle.com URL')
    return ref


# %%
test_eq(slugify('blindsr train'), 'blindsr-train'); test_eq(slugify('  Blind SR: v2!'), 'blind-sr-v2')
test_eq(qualify('ai6126-faces', 'alice'), 'alice/ai6126-faces')
test_eq(qualify('bob/ffhq-val', 'alice'), 'bob/ffhq-val')
test_fail(lambda: qualify('alice/AI 6126', 'alice'), contains="'alice/AI 6126'")


# %%
#| export
@dataclass
class KernelSpec:
    "What `blindsr_kaggle build` makes the kernel from; stored in kaggle_kernel/build.json."
    user: str                          # your Kaggle user name: the kernel is USER/SLUG
    dataset: str                       # the dataset with the faces (train HQ, val GT/LQ, test LQ): OWNER/SLUG, or SLUG (yours)
    val_datasets: list = field(default_factory=list)  # more datasets, e.g. val/test faces uploaded apart
    machine: str = 'P100'              # 'P100' (NvidiaTeslaP100, as designed) or 'T4' (NvidiaTeslaT4: two T4s, DDP)
    hours: float = 11.0                # wall-clock budget of the whole kernel, at most MAX_HOURS
    generator: str = 'msrresnet_deep'  # a key of GENERATORS; the deep MSRResNet is the pick for 11 h on a T4 (fast fp16, fills the cap)
    generator_kwargs: dict = field(default_factory=dict)  # its constructor overrides, e.g. {"num_block": 24}
    previous: str | None = None        # a kernel USER/SLUG whose output (run/last.ckpt) this one continues
    slug: str = 'blindsr-train'        # the kernel's name on Kaggle
    private: bool = True               # keep the kernel private
    git_url: str | None = None         # where the kernel pip-installs blindsr from (None: settings.ini's git_url)

    def __post_init__(self):
        if not _OWNER.match(self.user or ''):
            raise ValueError(f'user must be your Kaggle user name (letters, digits, hyphens), got {self.user!r}')
        if not _SLUG.match(self.slug) or len(self.slug) < 5:
            raise ValueError(f'slug must be 5-50 lower-case letters, digits and hyphens, got {self.slug!r}')
        self.dataset = qualify(self.dataset, self.user)
        self.val_datasets = [qualify(d, self.user) for d in self.val_datasets]
        if self.previous: self.previous = qualify(self.previous, self.user, 'previous (a kernel)')
        m = {k.lower(): k for k in MACHINES} | {v.lower(): k for k, v in MACHINES.items()}
        if str(self.machine).lower() not in m:
            raise ValueError(f'machine must be P100 or T4 (or {" / ".join(MACHINES.values())}), got {self.machine!r}')
        self.machine = m[str(self.machine).lower()]
        self.hours = float(self.hours)
        if not 0 < self.hours <= MAX_HOURS:
            raise ValueError(f'hours must be in (0, {MAX_HOURS}]: Kaggle stops GPU sessions at 12 h, got {self.hours}')
        if not isinstance(self.generator_kwargs, dict):
            raise ValueError(f'generator_kwargs must be a dict (JSON object), got {self.generator_kwargs!r}')
        self.generator_kwargs = dict(sorted(self.generator_kwargs.items()))

    @property
    def kernel(self) -> str: return f'{self.user}/{self.slug}'

    @property
    def title(self) -> str: return self.slug.replace('-', ' ')


# %%
s = KernelSpec('alice', 'ai6126-faces', machine='nvidiateslat4', previous='blindsr-train')
test_eq((s.dataset, s.machine, s.previous, s.kernel, slugify(s.title)),
        ('alice/ai6126-faces', 'T4', 'alice/blindsr-train', 'alice/blindsr-train', 'blindsr-train'))
test_fail(lambda: KernelSpec('alice', 'faces', hours=12), contains='12 h')
test_fail(lambda: KernelSpec('alice', 'faces', machine='A100'), contains='P100 or T4')
test_fail(lambda: KernelSpec('', 'faces'), contains='Kaggle user name')

# %% [markdown]
# ## The metadata -
#
# `kernel-metadata.json` is what `kaggle kernels push` reads. GPU and internet on (the kernel pip-installs a torch
# for the P100 and blindsr itself), private, the data as `dataset_sources`, the previous version as
# `kernel_sources`. `check_metadata` lists every problem, so a push never fails on Kaggle's side for a typo.

# %%
#| export
REQUIRED = ('id', 'title', 'code_file', 'language', 'kernel_type', 'is_private', 'enable_gpu', 'enable_internet',
            'machine_shape', 'dataset_sources', 'kernel_sources')


def kernel_metadata(spec: KernelSpec) -> dict:
    "kernel-metadata.json for `spec`."
    return {'id': spec.kernel, 'title': spec.title, 'code_file': CODE_FILE, 'language': 'python',
            'kernel_type': 'notebook', 'is_private': spec.private, 'enable_gpu': True, 'enable_tpu': False,
            'enable_internet': True, 'machine_shape': MACHINES[spec.machine],
            'dataset_sources': [spec.dataset, *spec.val_datasets], 'competition_sources': [],
            'kernel_sources': [spec.previous] if spec.previous else [], 'model_sources': []}


def _torch_import_line(src: str) -> str | None:
    return next((l for l in src.splitlines() if re.match(r'\s*(import\s+torch\b|from\s+torch\b)', l)), None)


def check_notebook(path: Path) -> list[str]:
    "Problems of a kernel notebook: not JSON, not nbformat 4, malformed cells, or a first code cell that imports torch."
    try: nb = json.loads(Path(path).read_text(encoding='utf-8'))
    except (OSError, ValueError) as e: return [f'{path} is not a readable JSON notebook ({type(e).__name__}: {e})']
    if nb.get('nbformat') != 4 or not isinstance(nb.get('cells'), list) or not nb['cells']:
        return [f'{path} is not an nbformat 4 notebook with cells']
    problems = []
    for i, c in enumerate(nb['cells']):
        if c.get('cell_type') not in ('code', 'markdown', 'raw') or not isinstance(c.get('source'), (str, list)):
            problems.append(f'{path}: cell {i} is malformed')
        elif c['cell_type'] == 'code' and ('outputs' not in c or 'execution_count' not in c):
            problems.append(f'{path}: code cell {i} lacks outputs/execution_count')
    code = [c for c in nb['cells'] if c.get('cell_type') == 'code']
    if not code: problems.append(f'{path} has no code cells')
    else:
        line = _torch_import_line(''.join(code[0]['source']))
        if line: problems.append(f'{path}: the first code cell imports torch ({line.strip()!r}); the CUDA guard must run first')
    return problems


def check_metadata(meta: dict,  # the parsed kernel-metadata.json
                   kernel_dir: Path | None = None,  # where code_file must be (None: not checked)
                  ) -> list[str]:  # every problem found; [] when it is fine
    "Problems of a kernel-metadata.json: missing fields, invalid values, a missing or invalid code_file."
    p = [f'missing field {k!r}' for k in REQUIRED if k not in meta]
    def ref_ok(r, kind):
        try: return qualify(r, '_', kind) == r
        except ValueError: return False
    kid = meta.get('id', '')
    if 'id' in meta and not ref_ok(kid, 'id'): p.append(f'id must be USER/SLUG, got {kid!r}')
    if 'title' in meta and ref_ok(kid, 'id') and slugify(meta['title']) != kid.split('/')[1]:
        p.append(f"title {meta['title']!r} does not give the slug of id {kid!r}; Kaggle would rename the kernel")
    for k, want in (('language', 'python'), ('kernel_type', 'notebook')):
        if k in meta and meta[k] != want: p.append(f'{k} must be {want!r}, got {meta[k]!r}')
    for k in ('is_private', 'enable_gpu', 'enable_internet'):
        if k in meta and not isinstance(meta[k], bool): p.append(f'{k} must be true or false, got {meta[k]!r}')
    if meta.get('enable_gpu') is False: p.append('enable_gpu is false: the kernel would train on the CPU')
    if 'machine_shape' in meta and meta['machine_shape'] not in MACHINES.values():
        p.append(f"machine_shape must be one of {', '.join(MACHINES.values())}, got {meta['machine_shape']!r}")
    for k in ('dataset_sources', 'kernel_sources'):
        v = meta.get(k, [])
        if not isinstance(v, list) or not all(isinstance(r, str) and ref_ok(r, k) for r in v):
            p.append(f'{k} must be a list of OWNER/SLUG, got {v!r}')
    if 'dataset_sources' in meta and not meta['dataset_sources']: p.append('dataset_sources is empty: the kernel would find no faces')
    if kernel_dir is not None and 'code_file' in meta:
        f = Path(kernel_dir) / meta['code_file']
        if not f.is_file(): p.append(f'code_file {f} does not exist')
        elif f.suffix != '.ipynb': p.append(f'code_file {f} is not an .ipynb notebook')
        else: p += check_notebook(f)
    return p


# %%
meta = kernel_metadata(KernelSpec('alice', 'ai6126-faces'))
test_eq(meta['machine_shape'], 'NvidiaTeslaP100'); test_eq(meta['dataset_sources'], ['alice/ai6126-faces'])
test_eq(check_metadata(meta), [])
test_eq(kernel_metadata(KernelSpec('alice', 'faces', machine='T4', previous='blindsr-train'))['kernel_sources'], ['alice/blindsr-train'])
bad = {**meta, 'title': 'something else', 'machine_shape': 'Gpu', 'enable_internet': 'yes', 'dataset_sources': []}
del bad['language']
for frag in ("missing field 'language'", 'Kaggle would rename', 'machine_shape must be', 'enable_internet must be', 'dataset_sources is empty'):
    assert any(frag in x for x in check_metadata(bad)), (frag, check_metadata(bad))
(tmp/'k').mkdir()
test_eq(check_metadata(meta, tmp/'k'), [f"code_file {tmp/'k'/CODE_FILE} does not exist"])
(tmp/'k'/CODE_FILE).write_text(json.dumps({'nbformat': 4, 'nbformat_minor': 5, 'metadata': {},
                                           'cells': [{'cell_type': 'code', 'source': 'import torch\n', 'outputs': [], 'execution_count': None, 'metadata': {}}]}))
assert 'imports torch' in check_metadata(meta, tmp/'k')[0]

# %% [markdown]
# ## Building the notebook -
#
# The kernel is `nbs/10_kaggle_run.ipynb` with two cells rewritten and a header added:
#
# - the cell holding `from blindsr.cuda_guard import ensure_torch` (the first code cell) gets that line replaced by
#   the source of `blindsr/cuda_guard.py` — standard library only — so the guard runs before blindsr exists;
# - the cell starting `# Parameters` is written from the spec.
#
# Outputs, execution counts and cell metadata are dropped, cell ids are numbered, JSON is written with sorted
# keys: the same spec and the same `nbs/` give the same bytes, which is what lets CI compare the committed kernel
# with a fresh build.

# %%
#| export
GUARD_LINE = 'from blindsr.cuda_guard import ensure_torch'
PARAMS_MARK = '# Parameters'


def repo_root(start: Path | str | None = None) -> Path:
    "The blindsr checkout: `start`, or the current folder, its parent or the package's parent, whichever holds nbs/10_kaggle_run.ipynb."
    cands = [Path(start)] if start else [Path.cwd(), Path.cwd().parent, Path(blindsr.__file__).resolve().parent.parent]
    for c in cands:
        if (c / 'nbs' / RUN_NOTEBOOK).is_file(): return c.resolve()
    raise FileNotFoundError(f'no blindsr checkout with nbs/{RUN_NOTEBOOK} at {", ".join(map(str, cands))}: the kernel is '
                            'built from the notebooks, so run blindsr_kaggle in a clone of the repository (or pass --root)')


def git_url(root: Path) -> str:
    "settings.ini's git_url: where the kernel installs blindsr from."
    import configparser
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(Path(root) / 'settings.ini', encoding='utf-8')
    try: return cfg['DEFAULT']['git_url']
    except KeyError: raise FileNotFoundError(f'{Path(root) / "settings.ini"} has no git_url; pass --git-url') from None


def guard_source(root: Path | None = None) -> str:
    "The checkout's blindsr/cuda_guard.py (else the installed one) without nbdev's export markers: the kernel's first cell."
    path = Path(root) / 'blindsr' / 'cuda_guard.py' if root is not None else None
    if path is None or not path.is_file():
        import blindsr.cuda_guard as g
        path = Path(g.__file__)
    lines = [l for l in path.read_text(encoding='utf-8').splitlines()
             if not l.startswith(('# %%', '# AUTOGENERATED'))]
    text = re.sub(r'\n{3,}', '\n\n', '\n'.join(lines)).strip('\n')
    return f'# ---- blindsr/cuda_guard.py, pasted by blindsr_kaggle build (this cell must not import torch) ----\n{text}\n# ---- end of blindsr/cuda_guard.py ----'


def params_source(spec: KernelSpec, url: str) -> str:
    "The kernel's parameters cell."
    return '\n'.join([
        f'{PARAMS_MARK} (written by blindsr_kaggle build from its arguments; rebuild rather than edit)',
        f'HOURS = {spec.hours!r}  # wall-clock budget of the whole kernel; Kaggle stops GPU sessions at 12 h',
        f'GENERATOR = {spec.generator!r}  # a key of blindsr.models.GENERATORS',
        f'GENERATOR_KWARGS = {spec.generator_kwargs!r}  # its constructor overrides',
        f'MACHINE = {spec.machine!r}  # the accelerator asked for; the kernel uses whatever GPUs it finds',
        f'PREVIOUS = {spec.previous!r}  # the kernel (kernel_sources) whose output run/last.ckpt this run continues',
        f'GIT_URL = {url!r}  # where blindsr is installed from, unless installed or attached as a wheel'])


def build_command(spec: KernelSpec) -> str:
    "The blindsr_kaggle build command line that makes `spec`."
    d = KernelSpec(spec.user, spec.dataset)
    args = ['blindsr_kaggle build', f'--user {spec.user}', f'--dataset {spec.dataset}']
    args += [f'--val-dataset {v}' for v in spec.val_datasets]
    for f in ('machine', 'hours', 'generator', 'previous', 'slug', 'git_url'):
        if getattr(spec, f) != getattr(d, f): args.append(f"--{f.replace('_', '-')} {getattr(spec, f)}")
    if spec.generator_kwargs: args.append(f"--generator-kwargs '{json.dumps(spec.generator_kwargs)}'")
    if not spec.private: args.append('--public')
    return ' '.join(args)


def _cell(kind: str, text: str, i: int) -> dict:
    c = {'cell_type': kind, 'id': f'cell-{i:02d}', 'metadata': {}, 'source': text.splitlines(keepends=True)}
    if kind == 'code': c.update(execution_count=None, outputs=[])
    return c


def build_notebook(spec: KernelSpec,
                   root: Path | str | None = None,  # the checkout (default: see repo_root)
                  ) -> dict:  # the kernel notebook (nbformat 4)
    "The kernel notebook: nbs/10_kaggle_run.ipynb with the guard pasted in and the parameters written."
    root = repo_root(root)
    src = root / 'nbs' / RUN_NOTEBOOK
    nb = json.loads(src.read_text(encoding='utf-8'))
    url = spec.git_url or git_url(root)
    page = re.sub(r'(\.git)?(@[^/]*)?$', '', url)                 # the repository page, without .git or @ref
    head = (f'**blindsr: train a blind face super-resolution model on Kaggle.** Built by `{build_command(spec)}` from '
            f'[`nbs/{RUN_NOTEBOOK}`]({page}/blob/main/nbs/{RUN_NOTEBOOK}): edit that notebook and rebuild, not this one. '
            'Outputs: `submission.zip`, `curves.png`, `val_grid.png`, `val_scores.csv`, `kaggle_summary.json`, `run/`.')
    cells, seen = [_cell('markdown', head, 0)], []
    for c in nb['cells']:
        text = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        if c['cell_type'] == 'code' and GUARD_LINE in text.splitlines():
            if any(x['cell_type'] == 'code' for x in cells): raise ValueError(f'{src}: the guard cell must be the first code cell')
            text = text.replace(GUARD_LINE, guard_source(root)); seen.append('guard')
        elif c['cell_type'] == 'code' and text.startswith(PARAMS_MARK):
            text = params_source(spec, url); seen.append('params')
        cells.append(_cell(c['cell_type'], text, len(cells)))
    for what, how in (('guard', f'a first code cell with the line `{GUARD_LINE}`'), ('params', f'a cell starting `{PARAMS_MARK}`')):
        if seen.count(what) != 1: raise ValueError(f'{src} must have exactly one {how}; found {seen.count(what)}')
    return {'cells': cells, 'metadata': {'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'},
                                         'language_info': {'name': 'python'}}, 'nbformat': 4, 'nbformat_minor': 5}


def _json(obj) -> str: return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + '\n'


def build_files(spec: KernelSpec, root: Path | str | None = None) -> dict[str, str]:
    "{file name: text} of the kernel folder for `spec`."
    return {METADATA_FILE: _json(kernel_metadata(spec)), CODE_FILE: _json(build_notebook(spec, root)),
            BUILD_FILE: _json(asdict(spec))}


def write_kernel(spec: KernelSpec, out: Path | str | None = None, root: Path | str | None = None) -> list[Path]:
    "Write kernel-metadata.json, the kernel notebook and build.json into `out` (default: <checkout>/kaggle_kernel)."
    out = Path(out) if out is not None else repo_root(root) / KERNEL_DIR
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in build_files(spec, root).items():
        (out / name).write_text(text, encoding='utf-8'); paths.append(out / name)
    return paths


def load_spec(kernel_dir: Path | str) -> KernelSpec:
    "The KernelSpec a kernel folder was built with (its build.json)."
    f = Path(kernel_dir) / BUILD_FILE
    if not f.is_file(): raise FileNotFoundError(f'{f} not found: build the kernel first (blindsr_kaggle build --user NAME --dataset SLUG)')
    d = json.loads(f.read_text(encoding='utf-8'))
    unknown = set(d) - {f_.name for f_ in fields(KernelSpec)}
    if unknown: raise ValueError(f'{f}: unknown fields {sorted(unknown)}; rebuild it with this blindsr')
    return KernelSpec(**d)


def stale_files(kernel_dir: Path | str, root: Path | str | None = None) -> list[str]:
    "The files of `kernel_dir` that differ from a fresh build with its build.json ([] when it is up to date)."
    fresh = build_files(load_spec(kernel_dir), root)
    return [n for n, t in fresh.items() if not (Path(kernel_dir) / n).is_file()
            or (Path(kernel_dir) / n).read_text(encoding='utf-8') != t]


# %% [markdown]
# A build from this checkout's `nbs/`: the guard is pasted into the first code cell (which then imports no
# torch), the parameters are written, and two builds are byte-identical; `stale_files` sees any edit.

# %%
spec = KernelSpec('alice', 'ai6126-faces', machine='T4', hours=9.5, generator_kwargs={'num_block': 24})
paths = write_kernel(spec, tmp/'kernel')
test_eq(sorted(p.name for p in paths), sorted([METADATA_FILE, CODE_FILE, BUILD_FILE]))
nb = json.loads((tmp/'kernel'/CODE_FILE).read_text())
code = [''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code']
assert 'def ensure_torch(' in code[0] and GUARD_LINE not in code[0] and _torch_import_line(code[0]) is None
assert "HOURS = 9.5" in code[1] and "GENERATOR_KWARGS = {'num_block': 24}" in code[1], code[1]
test_eq(check_metadata(json.loads((tmp/'kernel'/METADATA_FILE).read_text()), tmp/'kernel'), [])
test_eq(load_spec(tmp/'kernel'), spec)
test_eq(stale_files(tmp/'kernel'), [])
write_kernel(spec, tmp/'kernel2')
for n in (METADATA_FILE, CODE_FILE, BUILD_FILE): test_eq((tmp/'kernel'/n).read_bytes(), (tmp/'kernel2'/n).read_bytes())
(tmp/'kernel2'/CODE_FILE).write_text((tmp/'kernel2'/CODE_FILE).read_text().replace('HOURS = 9.5', 'HOURS = 3.0'))
test_eq(stale_files(tmp/'kernel2'), [CODE_FILE])
print(build_command(spec))

# %% [markdown]
# The parameters cell of `nbs/10_kaggle_run.ipynb` defines the same names as the one the build writes, so the
# notebook `nbdev_test` runs and the kernel agree:

# %%
import ast
run_nb = json.loads((repo_root()/'nbs'/RUN_NOTEBOOK).read_text())
ours = next(''.join(c['source']) for c in run_nb['cells'] if ''.join(c['source']).startswith(PARAMS_MARK))
names = lambda src: sorted(t.id for n in ast.parse(src).body for t in n.targets)
test_eq(names(ours), names(params_source(spec, 'u')))


# %% [markdown]
# ## Helpers the kernel runs -
#
# ### Smoke mode, and where things are
#
# The kernel runs for real when it finds training faces; in smoke mode when told (`BLINDSR_SMOKE=1`), under
# `nbdev_test`, or off Kaggle with neither data nor a GPU. On Kaggle without data it does not fall back to smoke
# mode — a kernel that "succeeds" with a 4-image submission would be worse than one that stops and says the
# dataset is missing.

# %%
#| export
def on_kaggle() -> bool:
    "Running inside a Kaggle kernel?"
    return 'KAGGLE_KERNEL_RUN_TYPE' in os.environ or Path('/kaggle/working').is_dir()


def input_root() -> Path:
    "Where attached datasets and kernel outputs are: $BLINDSR_KAGGLE_INPUT or /kaggle/input."
    return Path(os.environ.get('BLINDSR_KAGGLE_INPUT') or '/kaggle/input')


def smoke_mode(found_data: bool,  # did find_data find training faces?
               gpu: bool,  # is there a CUDA GPU?
              ) -> bool:
    "Run the kernel in smoke mode? BLINDSR_SMOKE=1/0 decides; else yes under nbdev_test, or off Kaggle with no data and no GPU."
    env = os.environ.get('BLINDSR_SMOKE', '').strip().lower()
    if env: return env not in ('0', 'false', 'no', 'off')
    if os.environ.get('IN_TEST'): return True
    return not found_data and not gpu and not on_kaggle()


def working_dir(smoke: bool) -> Path:
    "Where the kernel writes: $BLINDSR_WORKING, /kaggle/working, a temporary folder (smoke mode) or runs/kaggle_working."
    env = os.environ.get('BLINDSR_WORKING')
    if env: out = Path(env)
    elif Path('/kaggle/working').is_dir(): out = Path('/kaggle/working')
    elif smoke: out = Path(tempfile.mkdtemp(prefix='blindsr_smoke_'))
    else: out = Path('runs') / 'kaggle_working'             # runs/ is git-ignored
    out.mkdir(parents=True, exist_ok=True)
    return out


# %%
with mock.patch.dict(os.environ):                          # restored afterwards
    for k in ('BLINDSR_SMOKE', 'IN_TEST'): os.environ.pop(k, None)
    with mock.patch.dict(globals(), on_kaggle=lambda: False):
        test_eq([smoke_mode(False, False), smoke_mode(True, False), smoke_mode(False, True)], [True, False, False])
    with mock.patch.dict(globals(), on_kaggle=lambda: True): test_eq(smoke_mode(False, False), False)   # no silent smoke on Kaggle
    with mock.patch.dict(os.environ, BLINDSR_SMOKE='1'): test_eq(smoke_mode(True, True), True)
    with mock.patch.dict(os.environ, BLINDSR_SMOKE='0'): test_eq(smoke_mode(False, False), False)
    with mock.patch.dict(os.environ, IN_TEST='1'): test_eq(smoke_mode(True, True), True)
with mock.patch.dict(os.environ, BLINDSR_WORKING=str(tmp/'w')): test_eq(working_dir(False), tmp/'w')


# %% [markdown]
# ### Generated faces for smoke mode
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
    from blindsr.degradation import degrade_folder
    root = Path(root)
    synthetic_faces(root / 'train' / 'GT', n_train, size, seed)
    synthetic_faces(root / 'val' / 'GT', n_val, size, seed + 1)
    degrade_folder(root / 'val' / 'GT', root / 'val' / 'LQ', preset, seed=0, workers=1, progress=False)
    synthetic_faces(root / 'test_hq', n_test, size, seed + 2)
    degrade_folder(root / 'test_hq', root / 'test' / 'LQ', preset, seed=1, workers=1, progress=False)
    return DataPaths(root / 'train' / 'GT', root / 'val' / 'GT', root / 'val' / 'LQ', root / 'test' / 'LQ', (root,))


# %%
from blindsr.core import list_images, read_image
from blindsr.data import find_data
dp = make_smoke_data(tmp/'smoke')
test_eq([len(list_images(d)) for d in (dp.train_hq, dp.val_gt, dp.val_lq, dp.test_lq)], [12, 4, 4, 4])
test_eq(read_image(list_images(dp.test_lq)[0]).shape, (16, 16, 3))
found = find_data([tmp/'smoke'])
test_eq((found.train_hq, found.val_gt, found.val_lq, found.test_lq), (dp.train_hq, dp.val_gt, dp.val_lq, dp.test_lq))

# %% [markdown]
# ### Continuing the previous version
#
# A Kaggle session ends at 12 hours, but training need not: a kernel built with `--previous USER/SLUG` has that
# kernel's output mounted under `/kaggle/input/` (where exactly has changed over the years, so it is searched
# for), and its `run/last.ckpt` is copied into this run's folder with `best.pt` and the logs — unless the folder
# holds a later checkpoint already (a re-run in the same session). The generator must be the one the previous
# run trained; a mismatch stops at once, before any training time is spent.

# %%
#| export
PREVIOUS_FILES = ('last.ckpt', 'best.pt', 'log.csv', 'val.csv')   # what a continued run takes over


def find_previous_checkpoint(roots: Sequence[Path | str] | None = None,  # default: [input_root()]
                             max_depth: int = 4,
                            ) -> Path | None:  # the readable last.ckpt with the most steps, or None
    "A previous run's last.ckpt among the attached inputs (e.g. /kaggle/input/blindsr-train/run/last.ckpt)."
    from blindsr.checkpoint import CheckpointError, load_checkpoint
    best = None
    for root in [Path(r) for r in (roots if roots is not None else [input_root()])]:
        if not root.is_dir(): continue
        for dirpath, dirnames, filenames in os.walk(root):
            if len(Path(dirpath).relative_to(root).parts) >= max_depth: dirnames[:] = []
            dirnames.sort()
            if 'last.ckpt' not in filenames: continue
            path = Path(dirpath) / 'last.ckpt'
            try: step = load_checkpoint(path)['step']
            except (CheckpointError, KeyError) as e:
                print(f'ignoring {path}: {e}'); continue
            if best is None or step > best[0]: best = (step, path)
    return best[1] if best else None


def adopt_previous_run(ckpt: Path | str,  # a previous run's last.ckpt
                       out_dir: Path | str,  # this run's folder (TrainConfig.out_dir)
                       generator: str,  # the generator this run trains …
                       generator_kwargs: dict,  # … and its constructor overrides
                      ) -> dict:  # {'from', 'step', 'minutes', 'best_psnr'} of the checkpoint the run will resume
    "Copy a previous run's checkpoint, best weights and logs into out_dir so that the Trainer resumes from them."
    from blindsr.checkpoint import load_checkpoint
    ckpt, out = Path(ckpt), Path(out_dir)
    ck = load_checkpoint(ckpt)
    if ck.get('arch') != generator or dict(ck.get('arch_kwargs') or {}) != dict(generator_kwargs):
        raise ValueError(f"{ckpt} trained {ck.get('arch')} {ck.get('arch_kwargs')}, this kernel trains {generator} "
                         f'{generator_kwargs}: rebuild with --generator {ck.get("arch")} --generator-kwargs '
                         f"'{json.dumps(ck.get('arch_kwargs') or {})}', or without --previous to start afresh")
    out.mkdir(parents=True, exist_ok=True)
    mine = out / 'last.ckpt'
    if mine.exists() and load_checkpoint(mine)['step'] >= ck['step']:
        ckpt, ck = mine, load_checkpoint(mine)
    else:
        for name in PREVIOUS_FILES:
            if (ckpt.parent / name).is_file(): shutil.copyfile(ckpt.parent / name, out / name)
    best = ck.get('best_psnr')
    return {'from': str(ckpt), 'step': int(ck['step']), 'minutes': float(ck['elapsed']) / 60,
            'best_psnr': best if best is not None and best > -1e308 else float('nan')}


# %% [markdown]
# A run of 4 steps, "attached" to a new session: the new run's folder gets its files, and the Trainer, given four
# more steps, resumes at step 4 and ends at 8.

# %%
from blindsr.train import TrainConfig, Trainer
tiny = dict(train_hq=str(dp.train_hq), val_gt=str(dp.val_gt), val_lq=str(dp.val_lq), generator='msrresnet',
            generator_kwargs={'num_feat': 8, 'num_block': 1}, batch_size=4, log_every=2, val_every=2, ckpt_every=1000,
            degrade_on='cpu', workers=0, progress=False)
Trainer(TrainConfig(iters=4, out_dir=str(tmp/'input'/'blindsr-train'/'run'), **tiny)).fit()
prev = find_previous_checkpoint([tmp/'input'])
test_eq(prev, tmp/'input'/'blindsr-train'/'run'/'last.ckpt')
info = adopt_previous_run(prev, tmp/'session2'/'run', 'msrresnet', {'num_feat': 8, 'num_block': 1})
test_eq(info['step'], 4); test_eq(sorted(p.name for p in (tmp/'session2'/'run').iterdir()), sorted(PREVIOUS_FILES))
s2 = Trainer(TrainConfig(iters=info['step'] + 4, out_dir=str(tmp/'session2'/'run'), **tiny)).fit()
test_eq(s2['steps'], 8)
test_eq([r['step'] for r in csv.DictReader(open(tmp/'session2'/'run'/'log.csv'))], ['2', '4', '6', '8'])
test_fail(lambda: adopt_previous_run(prev, tmp/'s3', 'msrresnet', {}), contains='--generator-kwargs')
test_eq(find_previous_checkpoint([tmp/'nowhere']), None)


# %% [markdown]
# ### The time budget
#
# The clock starts in the kernel's first cell. Training gets `hours` less what set-up took so far less
# `RESERVE_MIN` (validation of 400 faces, 400 test restorations, the zip, saving `/kaggle/working`: a few minutes
# on a GPU, 20 kept). `TrainConfig.time_budget_min` counts from the start of the training loop, so decoding the
# faces also comes out of the reserve.

# %%
#| export
def session_minutes(hours: float,  # the kernel's budget
                    t0: float,  # time.time() when the kernel started
                    reserve_min: float = RESERVE_MIN,
                    now: float | None = None,
                   ) -> float:  # minutes of training this session can afford
    "Minutes of training left in a kernel of `hours` that started at `t0`."
    left = 60 * hours - ((now if now is not None else time.time()) - t0) / 60 - reserve_min
    if left < 5: raise ValueError(f'only {left:.1f} min would be left for training of a {hours} h budget; raise --hours '
                                  f'(at most {MAX_HOURS}) or start sooner')
    return left


# %%
test_eq(session_minutes(11, t0=0, now=600), 11 * 60 - 10 - RESERVE_MIN)
test_fail(lambda: session_minutes(0.3, t0=0, now=0), contains='raise --hours')


# %% [markdown]
# ### Training on one GPU or two
#
# One process: `Trainer(cfg).fit()` here. Several GPUs: the config is written to `out_dir/kaggle_config.json` and
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
    cfg_path = out / 'kaggle_config.json'
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
with open(tmp/'session2'/'run'/'log.csv') as f: print(f.read().splitlines()[-1])
buf = StringIO()
with redirect_stdout(buf):
    with LogFollower(tmp/'session2'/'run', every_s=0.05): time.sleep(0.3)
test_eq(buf.getvalue().count('step 8,'), 1)                # printed once, not again while nothing changes
print(buf.getvalue())

# %% [markdown]
# ## Talking to Kaggle -
#
# The Kaggle CLI (`pip install kaggle`) does the talking; `blindsr_kaggle` adds what it lacks: checks before a
# push, a dry run, exit codes for `status`, and a look at the output. Credentials belong to the CLI:
# `kaggle_credentials` only checks that the CLI will find some (never reading them), so a missing token is a clear
# message instead of a traceback.

# %%
#| export
CREDENTIALS_HELP = """no Kaggle credentials found. Create an API token on https://www.kaggle.com/settings (API, "Create New Token"), then either
  save the downloaded kaggle.json as ~/.kaggle/kaggle.json and chmod 600 it, or
  export KAGGLE_USERNAME=<your user name> and KAGGLE_KEY=<the key> (or KAGGLE_API_TOKEN=<the token>) in your shell.
blindsr never reads, stores or prints them: only the kaggle command does."""
CLI_HELP = 'the kaggle command is not on PATH: pip install kaggle'


def _config_dirs() -> list[Path]:
    xdg = os.environ.get('XDG_CONFIG_HOME') or str(Path.home() / '.config')
    dirs = [os.environ.get('KAGGLE_CONFIG_DIR'), str(Path.home() / '.kaggle'), str(Path(xdg) / 'kaggle')]
    return [Path(d) for d in dirs if d]


def kaggle_credentials() -> str | None:
    "Where the kaggle CLI will find credentials (a description), or None. Checks presence only; never reads them."
    if os.environ.get('KAGGLE_API_TOKEN'): return 'the KAGGLE_API_TOKEN environment variable'
    if os.environ.get('KAGGLE_USERNAME') and os.environ.get('KAGGLE_KEY'):
        return 'the KAGGLE_USERNAME and KAGGLE_KEY environment variables'
    for d in _config_dirs():
        for name in ('kaggle.json', 'access_token', 'credentials.json'):
            if (d / name).is_file(): return str(d / name)
    return None


# %%
clean = {k: '' for k in ('KAGGLE_API_TOKEN', 'KAGGLE_USERNAME', 'KAGGLE_KEY', 'KAGGLE_CONFIG_DIR')}
with mock.patch.dict(os.environ, {**clean, 'HOME': str(tmp/'home'), 'XDG_CONFIG_HOME': ''}):
    test_eq(kaggle_credentials(), None)
    (tmp/'home'/'.kaggle').mkdir(parents=True); (tmp/'home'/'.kaggle'/'kaggle.json').write_text('{}')
    test_eq(kaggle_credentials(), str(tmp/'home'/'.kaggle'/'kaggle.json'))
    with mock.patch.dict(os.environ, KAGGLE_USERNAME='alice', KAGGLE_KEY='k'): assert 'KAGGLE_KEY' in kaggle_credentials()

# %% [markdown]
# `kaggle kernels status` exits 0 whatever the status, printing `USER/SLUG has status "…"` — `complete`,
# `running`, … from older CLIs, `KernelWorkerStatus.COMPLETE` from newer ones. `parse_status` reads either, and
# `blindsr_kaggle status` turns it into an exit code: 0 complete, 3 still queued or running, 1 error or cancelled,
# 2 when there is no status to read.

# %%
#| export
STATUS_EXIT = {'complete': 0, 'queued': 3, 'running': 3, 'error': 1, 'cancelled': 1}
_STATUS_NAMES = {'complete': 'complete', 'running': 'running', 'queued': 'queued', 'newscript': 'queued', 'error': 'error',
                 'cancelrequested': 'cancelled', 'cancelacknowledged': 'cancelled', 'cancelled': 'cancelled'}


def parse_status(text: str) -> str | None:
    "complete / running / queued / error / cancelled from `kaggle kernels status` output; None if it holds no status."
    m = re.search(r'has status "([^"]+)"', text)
    if not m: return None
    raw = m.group(1).split('.')[-1].replace('_', '').lower()
    return _STATUS_NAMES.get(raw, raw)


# %%
test_eq(parse_status('alice/blindsr-train has status "KernelWorkerStatus.ERROR"\nFailure message: "..."'), 'error')
test_eq(parse_status('alice/blindsr-train has status "complete"'), 'complete')
test_eq(parse_status('alice/blindsr-train has status "KernelWorkerStatus.CANCEL_ACKNOWLEDGED"'), 'cancelled')
test_eq(parse_status('alice/blindsr-train has status "running"'), 'running')
test_eq(parse_status('404 - Not Found'), None)


# %% [markdown]
# ### Checks before a push
#
# The kernel folder must be valid and what `nbs/` builds now (a stale kernel would run yesterday's notebook), built
# for a real user (not the committed placeholder); the CLI and credentials must be there. A dry run prints the
# command, the metadata and every check, and sends nothing.

# %%
#| export
def push_checks(kernel_dir: Path, root: Path | str | None = None) -> list[tuple[str, bool, str]]:
    "[(kind, ok, message)]: kind 'kernel' checks stop a dry run too, kind 'tool' checks only a real push."
    out = []
    meta_path = kernel_dir / METADATA_FILE
    try: meta = json.loads(meta_path.read_text(encoding='utf-8'))
    except (OSError, ValueError) as e:
        return [('kernel', False, f'{meta_path}: {e}; build it with blindsr_kaggle build --user NAME --dataset SLUG')]
    probs = check_metadata(meta, kernel_dir)
    out.append(('kernel', not probs, f'{METADATA_FILE}: every required field, valid values; {CODE_FILE} a valid notebook '
                                     'whose first cell imports no torch' if not probs else '; '.join(probs)))
    try:
        stale = stale_files(kernel_dir, root)
        out.append(('kernel', not stale, f'the kernel is what nbs/{RUN_NOTEBOOK} builds now' if not stale else
                    f'{", ".join(stale)} differ from a fresh build: run blindsr_kaggle build (it reuses {BUILD_FILE})'))
    except (OSError, ValueError) as e: out.append(('kernel', False, str(e)))
    user = str(meta.get('id', '')).split('/')[0]
    out.append(('kernel', user != PLACEHOLDER_USER, f'built for Kaggle user {user!r}' if user != PLACEHOLDER_USER else
                f'built for the placeholder user {user!r}: blindsr_kaggle build --user <your Kaggle name> --dataset <your dataset>'))
    exe = shutil.which('kaggle')
    out.append(('tool', exe is not None, f'kaggle CLI: {exe}' if exe else CLI_HELP))
    cred = kaggle_credentials()
    out.append(('tool', cred is not None, f'Kaggle credentials: in {cred}' if cred else 'Kaggle credentials: none found (see below)'))
    return out


def machine_note(shape: str) -> str:
    if shape == MACHINES['P100']:
        return ('machine_shape NvidiaTeslaP100: Kaggle is retiring the P100; Kaggle CLI 2.x warns that it "is retired" and the '
                'server runs the kernel on T4 x2, where it trains with DDP on both GPUs. Build with --machine T4 to ask for that.')
    return 'machine_shape NvidiaTeslaT4: two T4s (GPU T4 x2); the kernel trains with DDP on both.'


# %% [markdown]
# ### The command
#
# `blindsr_kaggle build` reuses `kaggle_kernel/build.json` for anything not given, so after editing
# `nbs/10_kaggle_run.py` a bare `blindsr_kaggle build` brings the kernel up to date; `--check` only compares.

# %%
#| export
def _shown(path: Path) -> str:
    "`path` relative to the current folder when it is inside it (shorter commands to read and copy)."
    try: return str(Path(path).resolve().relative_to(Path.cwd().resolve())) or '.'
    except ValueError: return str(path)


def _run_kaggle(args: list[str]) -> subprocess.CompletedProcess:
    r = subprocess.run(['kaggle', *args], capture_output=True, text=True)
    if r.stdout: print(r.stdout, end='' if r.stdout.endswith('\n') else '\n')
    if r.stderr: print(r.stderr, end='' if r.stderr.endswith('\n') else '\n', file=sys.stderr)
    return r


def _tools_ready(cmd: str) -> bool:
    if shutil.which('kaggle') is None:
        print(f'blindsr_kaggle {cmd}: {CLI_HELP}', file=sys.stderr); return False
    if kaggle_credentials() is None:
        print(f'blindsr_kaggle {cmd}: {CREDENTIALS_HELP}', file=sys.stderr); return False
    return True


def _kernel_ref(a) -> str:
    if a.kernel: return a.kernel
    meta = json.loads((Path(a.dir) / METADATA_FILE).read_text(encoding='utf-8'))
    return meta['id']


def _cmd_build(a) -> int:
    kdir = Path(a.dir)
    given = {k: v for k, v in dict(user=a.user, dataset=a.dataset, val_datasets=a.val_dataset, machine=a.machine,
                                   hours=a.hours, generator=a.generator, generator_kwargs=a.generator_kwargs,
                                   previous=a.previous, slug=a.slug, git_url=a.git_url,
                                   private=False if a.public else None).items() if v is not None}
    if 'previous' in given and given['previous'].lower() in ('none', ''): given['previous'] = None
    base = asdict(load_spec(kdir)) if (kdir / BUILD_FILE).is_file() else {}
    if not base and not {'user', 'dataset'} <= set(given):
        print('blindsr_kaggle build: give --user (your Kaggle name) and --dataset (the faces dataset, OWNER/SLUG)', file=sys.stderr)
        return 2
    if 'user' in given and 'user' in base and given['user'] != base['user'] and 'dataset' not in given:
        base['dataset'] = base['dataset'].split('/')[-1]       # a new user's own dataset of the same name
    spec = KernelSpec(**{**base, **given})
    if spec.generator not in _generators():
        print(f'blindsr_kaggle build: unknown generator {spec.generator!r}; one of {", ".join(_generators())}', file=sys.stderr)
        return 2
    if a.check:
        stale = [n for n, t in build_files(spec, a.root).items()
                 if not (kdir / n).is_file() or (kdir / n).read_text(encoding='utf-8') != t]
        if stale:
            print(f'{kdir}: {", ".join(stale)} differ from a fresh build; run: {build_command(spec)}', file=sys.stderr); return 1
        print(f'{kdir}: up to date with nbs/{RUN_NOTEBOOK}'); return 0
    paths = write_kernel(spec, kdir, a.root)
    print(f'wrote {", ".join(str(p) for p in paths)}')
    print(f'kernel {spec.kernel} on {MACHINES[spec.machine]}, data {", ".join([spec.dataset, *spec.val_datasets])}'
          + (f', continuing {spec.previous}' if spec.previous else '') + f'; {spec.hours} h budget')
    print('next: blindsr_kaggle push --dry-run, then blindsr_kaggle push')
    return 0


def _generators() -> list[str]:
    from blindsr.models import GENERATORS
    return list(GENERATORS)


def _cmd_push(a) -> int:
    kdir = Path(a.dir)
    checks = push_checks(kdir, a.root)
    cmd = f'kaggle kernels push -p {kdir}'
    if a.dry_run:
        print(f'blindsr_kaggle push --dry-run: nothing is sent to Kaggle\nwould run: {cmd}')
        if (kdir / METADATA_FILE).is_file():
            print(f'{kdir / METADATA_FILE}:\n' + (kdir / METADATA_FILE).read_text(encoding='utf-8').rstrip())
    print('checks:')
    for kind, ok, msg in checks: print(f"  {'ok' if ok else 'FAIL' if kind == 'kernel' else 'MISSING':<7}  {msg}")
    if kaggle_credentials() is None: print(CREDENTIALS_HELP)
    try: print('note:', machine_note(json.loads((kdir / METADATA_FILE).read_text())['machine_shape']))
    except (OSError, ValueError, KeyError): pass
    kernel_ok = all(ok for kind, ok, _ in checks if kind == 'kernel')
    if a.dry_run: return 0 if kernel_ok else 1
    if not kernel_ok:
        print('blindsr_kaggle push: not pushed, fix the checks above', file=sys.stderr); return 1
    if not _tools_ready('push'): return 2
    print(f'running: {cmd}', flush=True)
    r = _run_kaggle(['kernels', 'push', '-p', str(kdir)])
    if r.returncode != 0 or re.search(r'push error|not valid', r.stdout + r.stderr, re.I):
        print('blindsr_kaggle push: the kaggle CLI reported a problem (above)', file=sys.stderr); return 1
    ref = json.loads((kdir / METADATA_FILE).read_text())['id']
    print(f'pushed; follow it with: blindsr_kaggle status (or kaggle kernels status {ref}), then blindsr_kaggle output')
    return 0


def _cmd_status(a) -> int:
    if not _tools_ready('status'): return 2
    ref = _kernel_ref(a)
    r = subprocess.run(['kaggle', 'kernels', 'status', ref], capture_output=True, text=True)
    text = r.stdout + r.stderr
    status = parse_status(text)
    if status is None:
        print(text.rstrip(), file=sys.stderr)
        print(f'blindsr_kaggle status: no status for {ref} in the kaggle CLI output (exit {r.returncode})', file=sys.stderr)
        return 2
    print(f'{ref}: {status}')
    extra = [l for l in text.splitlines() if l.strip() and 'has status' not in l]
    if extra: print('\n'.join(extra))
    if status == 'error': print(f'see the log: kaggle kernels output {ref} -p DIR (the .log file), or the kernel page on kaggle.com')
    return STATUS_EXIT.get(status, 2)


def _cmd_output(a) -> int:
    if not _tools_ready('output'): return 2
    ref = _kernel_ref(a)
    dest = Path(a.path or Path('runs') / 'kaggle' / ref.split('/')[1])
    dest.mkdir(parents=True, exist_ok=True)
    r = _run_kaggle(['kernels', 'output', ref, '-p', str(dest)])
    if r.returncode != 0: return 1
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob('*') if p.is_file())
    print(f'{dest}: {len(files)} file(s): {", ".join(files[:12])}{" …" if len(files) > 12 else ""}')
    rec = dest / 'kaggle_summary.json'
    if rec.is_file():
        s = json.loads(rec.read_text())
        print(f"val PSNR {s.get('val_psnr')} dB (bicubic {s.get('bicubic_psnr')}), {s.get('kernel_minutes', 0):.0f} min"
              + (' [SMOKE MODE]' if s.get('smoke') else ''))
    zp = dest / 'submission.zip'
    if not zp.is_file():
        print(f'no submission.zip in the output of {ref} (still running, or it failed: blindsr_kaggle status)', file=sys.stderr)
        return 1
    from blindsr.submission import SubmissionError, check_submission
    try: n = len(check_submission(zp))
    except SubmissionError as e:
        print(f'blindsr_kaggle output: {e}', file=sys.stderr); return 1
    print(f'{zp}: a valid submission of {n} images; upload it to CodaLab')
    return 0


def kaggle_cli(argv: list[str] | None = None) -> int:
    "blindsr_kaggle build | push | status | output: the Kaggle kernel that trains blindsr."
    ap = argparse.ArgumentParser(prog='blindsr_kaggle', description=kaggle_cli.__doc__)
    sub = ap.add_subparsers(dest='cmd', required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--dir', default=None, help=f'the kernel folder (default: <checkout>/{KERNEL_DIR})')
    common.add_argument('--root', default=None, help='the blindsr checkout (default: found from here or the package)')
    b = sub.add_parser('build', parents=[common], help='write kernel-metadata.json and the kernel notebook from nbs/',
                       description=f'Build {KERNEL_DIR}/ from nbs/{RUN_NOTEBOOK}; arguments not given come from {BUILD_FILE}.')
    b.add_argument('--user', help='your Kaggle user name (the kernel is USER/SLUG)')
    b.add_argument('--dataset', help='the Kaggle dataset with the faces: OWNER/SLUG, or SLUG for yours')
    b.add_argument('--val-dataset', action='append', default=None, help='another dataset to attach (repeatable)')
    b.add_argument('--machine', type=str.upper, choices=list(MACHINES), help='P100 (default, as designed) or T4 (T4 x2, DDP)')
    b.add_argument('--hours', type=float, help=f'wall-clock budget of the kernel (default 11, at most {MAX_HOURS})')
    b.add_argument('--generator', help='a key of blindsr.models.GENERATORS (default msrresnet)')
    b.add_argument('--generator-kwargs', type=json.loads, metavar='JSON', help='e.g. \'{"num_block": 24}\'')
    b.add_argument('--previous', help="a kernel USER/SLUG whose output run/last.ckpt to continue ('none': start afresh)")
    b.add_argument('--slug', help='the kernel name on Kaggle (default blindsr-train)')
    b.add_argument('--public', action='store_true', default=None, help='make the kernel public (default private)')
    b.add_argument('--git-url', help='install blindsr from this repository (default: settings.ini git_url)')
    b.add_argument('--check', action='store_true', help='only check that the kernel folder equals a fresh build')
    p = sub.add_parser('push', parents=[common], help='kaggle kernels push, after checks')
    p.add_argument('--dry-run', action='store_true', help='print the command, the metadata and the checks; send nothing')
    for name, desc in (('status', 'the kernel status; exit 0 complete, 3 queued/running, 1 error/cancelled, 2 unknown'),
                       ('output', 'download the kernel output and check its submission.zip')):
        s = sub.add_parser(name, parents=[common], help=desc, description=desc)
        s.add_argument('kernel', nargs='?', help='USER/SLUG (default: the id in kernel-metadata.json)')
        if name == 'output': s.add_argument('-p', '--path', default=None, help='where to download (default runs/kaggle/SLUG)')
    a = ap.parse_args(argv)
    try:
        if a.dir is None: a.dir = _shown(repo_root(a.root) / KERNEL_DIR)
        return {'build': _cmd_build, 'push': _cmd_push, 'status': _cmd_status, 'output': _cmd_output}[a.cmd](a)
    except (OSError, ValueError) as e:
        print(f'blindsr_kaggle {a.cmd}: error: {e}', file=sys.stderr)
        return 2


# %%
if __name__ == '__main__' and '__file__' in globals(): sys.exit(kaggle_cli())

# %% [markdown]
# The whole path with a stand-in `kaggle` command (a script that answers like the CLI): build for a user, a dry
# run, a status in each state.

# %%
bin_ = tmp/'bin'; bin_.mkdir()
(bin_/'kaggle').write_text(f'#!{sys.executable}\nimport os, sys\n'
                           'if sys.argv[1:3] == ["kernels", "status"]: print(f\'{sys.argv[3]} has status "{os.environ["FAKE_STATUS"]}"\')\n'
                           'else: print("Kernel version 1 successfully pushed.")\n')
(bin_/'kaggle').chmod(0o755)
kd = tmp/'kk'
with redirect_stdout(StringIO()): test_eq(kaggle_cli(['build', '--dir', str(kd), '--user', 'alice', '--dataset', 'ai6126-faces']), 0)
env = {**clean, 'PATH': f"{bin_}{os.pathsep}{os.environ['PATH']}", 'HOME': str(tmp/'nohome'), 'XDG_CONFIG_HOME': ''}
with mock.patch.dict(os.environ, env):
    buf = StringIO()
    with redirect_stdout(buf): test_eq(kaggle_cli(['push', '--dry-run', '--dir', str(kd)]), 0)
    print(buf.getvalue())
    with mock.patch.dict(os.environ, KAGGLE_USERNAME='alice', KAGGLE_KEY='not-a-key'):
        for st, rc in (('KernelWorkerStatus.COMPLETE', 0), ('KernelWorkerStatus.RUNNING', 3), ('KernelWorkerStatus.ERROR', 1)):
            with mock.patch.dict(os.environ, FAKE_STATUS=st), redirect_stdout(StringIO()):
                test_eq(kaggle_cli(['status', '--dir', str(kd)]), rc)
assert 'would run: kaggle kernels push -p' in buf.getvalue() and 'not-a-key' not in buf.getvalue()

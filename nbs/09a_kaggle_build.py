# %% [markdown]
# # Building the Kaggle and Colab notebooks
# > The builder behind `blindsr_kaggle build` and `blindsr_colab build`: Kaggle's naming rules, kernel-metadata.json, a reproducible wheel of the checkout packed into the notebook, and the notebooks themselves — byte for byte what a fresh build gives.

# %%
#| default_exp kaggle_build

# %% [markdown]
# A notebook that trains blindsr on Kaggle or Colab is *built* from a notebook in `nbs/` — never written by hand,
# so it cannot drift from what `nbdev_test` runs:
#
# - `nbs/10_kaggle_run.ipynb` becomes `kaggle_kernel/blindsr-train.ipynb`, next to the `kernel-metadata.json` that
#   `kaggle kernels push` reads and the `build.json` of the arguments it was built with;
# - `nbs/11_colab_run.ipynb` becomes `colab/blindsr-colab.ipynb`, which the README's "Open in Colab" badge opens
#   (or which you upload to Colab by hand).
#
# Four kinds of cell are rewritten on the way: the CUDA guard's import becomes the guard's source (it runs before
# torch is imported and before blindsr is installed), the installer's import becomes `install_blindsr`'s source,
# the packed-wheel cell gets the wheel, and (Kaggle) the parameters cell gets the build's arguments.
#
# **Why the wheel travels inside the notebook.** The kernel must run the exact blindsr it was built from, with no
# internet and no git (the repository may be private, or not pushed yet). A wheel of the checkout, base64 in one
# cell and checked by its sha256, does that with nothing else to create or keep in step: a private Kaggle dataset
# would need a `datasets create`/`version` per build, a version pin in the metadata, and would not exist for
# someone who uploads the Colab notebook by hand. The price is size: without the 3 MB of shipped demo weights
# (which the notebooks never use: they train their own) the wheel is about 150 KiB, 200 KiB as base64, and the
# built notebook about 260 KiB.

# %%
#| export
from __future__ import annotations

import argparse
import ast
import base64
import configparser
import hashlib
import io
import json
import re
import subprocess
import sys
import unicodedata
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import blindsr
from blindsr.cli import USER_ERRORS, HelpFormatter, check_output_dir, examples, run_cli
from blindsr.notebook_runtime import MAX_HOURS

# %%
#| hide
import shutil
import tempfile
from contextlib import redirect_stdout
from io import StringIO
from fastcore.test import test_eq, test_fail, test_ne

tmp = Path(tempfile.mkdtemp())

# %% [markdown]
# ## Kaggle's names
#
# A kernel is `USER/SLUG`, a dataset `OWNER/SLUG` (a bare `SLUG` means one of yours) or `OWNER/SLUG/N` for version
# N. Kaggle's documentation says a kernel's slug *is* its title, lower-cased, with dashes for spaces; its own
# grammar for slugs (the one the CLI enforces for models) is lower-case letters and digits in words joined by
# single hyphens. The CLI itself checks little — it sends `my_kernel` or `a--b` and only warns when the title does
# not give the slug — so the build enforces the rules, naming them, before anything is pushed.
# `slugify` is Kaggle's (python-slugify's) mapping for titles: accents are transliterated, other runs become one
# hyphen.

# %%
#| export
SLUG_RULE = 'lower-case letters and digits, in words joined by single hyphens (no "_", no "--", no hyphen at either end)'
_SLUG = re.compile(r'[a-z0-9]+(?:-[a-z0-9]+)*$')
_OWNER = re.compile(r'[a-z0-9]+(?:[_-][a-z0-9]+)*$')      # Kaggle user names may also hold "_"


def slugify(title: str) -> str:
    "Kaggle's slug of a title: accents transliterated, lower case, runs of other characters become one hyphen."
    ascii_ = unicodedata.normalize('NFKD', title).encode('ascii', 'ignore').decode()
    return re.sub(r'[^a-z0-9]+', '-', ascii_.lower()).strip('-')


def check_slug(slug: str, what: str, lo: int = 5, hi: int = 50) -> str:
    "`slug` if it follows Kaggle's slug rule and length; else ValueError naming the rule."
    if not _SLUG.match(slug or '') or not lo <= len(slug) <= hi:
        raise ValueError(f'{what} {slug!r} is not a valid Kaggle slug: {lo}-{hi} {SLUG_RULE}')
    return slug


def qualify(ref: str,  # 'OWNER/SLUG', 'OWNER/SLUG/N' (version N), or 'SLUG' / 'SLUG/N' for one of `user`'s
            user: str,
            what: str = 'dataset',  # what it names, for the message
            min_len: int = 3,  # the slug's minimum length (datasets 3, kernels 5)
           ) -> str:  # 'OWNER/SLUG' or 'OWNER/SLUG/N'
    "A Kaggle reference with its owner; ValueError naming the bad value and the rule."
    parts = ref.strip().split('/')
    if len(parts) == 1 or (len(parts) == 2 and parts[1].isdigit()): parts = [user, *parts]      # SLUG, SLUG/N: yours
    if len(parts) not in (2, 3) or (len(parts) == 3 and not parts[2].isdigit()):
        raise ValueError(f'{what} must be OWNER/SLUG, or OWNER/SLUG/N for version N, got {ref!r}; '
                         'the slug is the last part of its kaggle.com URL')
    if not _OWNER.match(parts[0]):
        raise ValueError(f'{what} {ref!r}: the owner {parts[0]!r} is not a Kaggle user name (lower-case letters, digits, "-" or "_")')
    check_slug(parts[1], f'{what} {ref!r}: the slug', lo=min_len)
    return '/'.join(parts)


# %%
test_eq(slugify('blindsr train'), 'blindsr-train'); test_eq(slugify('  Blind SR: v2!'), 'blind-sr-v2')
test_eq(slugify('Café au lait v2'), 'cafe-au-lait-v2'); test_eq(slugify('Ünïcödé 100%'), 'unicode-100')
test_eq(qualify('ai6126-faces', 'alice'), 'alice/ai6126-faces')
test_eq(qualify('bob/ffhq-val/3', 'alice'), 'bob/ffhq-val/3'); test_eq(qualify('ai6126-faces/2', 'alice'), 'alice/ai6126-faces/2')
for bad, frag in (('alice/AI 6126', 'not a valid Kaggle slug'), ('alice/ai6126_faces', 'no "_"'), ('alice/ai--faces', 'no "--"'),
                  ('alice/faces/x', 'OWNER/SLUG/N'), ('a/b/c/d', 'OWNER/SLUG'), ('Alice/faces', 'not a Kaggle user name')):
    test_fail(lambda: qualify(bad, 'alice'), contains=frag)

# %% [markdown]
# ## What a kernel is built from
#
# `KernelSpec` holds the build's arguments. The machine is `P100`, as the project was designed, or `T4`:
#
# - **P100** (`machine_shape: "NvidiaTeslaP100"`): Kaggle has retired the P100. Kaggle CLI 2.x warns that it
#   "is retired", and the server **runs P100 requests on T4×2** (two sm_75 GPUs). `--machine P100` stays the
#   default because the kernel is built to run on either: the CUDA guard swaps torch only if a P100 does turn up.
#   Every build says so, and so does the kernel's first output.
# - **T4** (`machine_shape: "NvidiaTeslaT4"`): two T4s (Kaggle has no single-T4 shape); DDP on both.
#
# `hours` is the budget of the whole kernel: Kaggle stops a GPU session at 12 hours, so it is capped at 11.5, and
# training gets what is left after set-up, less a reserve for the final validation and the submission.

# %%
#| export
MACHINES = {'P100': 'NvidiaTeslaP100', 'T4': 'NvidiaTeslaT4'}   # --machine -> machine_shape


def machine_note(machine: str) -> str:
    "What Kaggle runs for a `--machine` (P100 or T4): said by every build and by the kernel's first output."
    if machine == 'P100':
        return ('Asked for NvidiaTeslaP100 (--machine P100, as designed). Kaggle has retired the P100 and runs P100 '
                'requests on T4 x2 (two T4s, sm_75): the kernel trains on the GPUs it finds (DDP on two), and swaps '
                'torch for a P100 build only if a P100 does turn up.')
    return 'Asked for NvidiaTeslaT4 (--machine T4): two T4s (GPU T4 x2, sm_75); the kernel trains with DDP on both.'


@dataclass
class KernelSpec:
    "What `blindsr_kaggle build` makes the kernel from; stored in kaggle_kernel/build.json."
    user: str                          # your Kaggle user name: the kernel is USER/SLUG
    dataset: str                       # the dataset with the faces: OWNER/SLUG, OWNER/SLUG/N (version N), or SLUG (yours)
    val_datasets: list = field(default_factory=list)  # more datasets, e.g. val/test faces uploaded apart
    machine: str = 'P100'              # 'P100' (NvidiaTeslaP100, as designed; Kaggle runs it on T4 x2) or 'T4' (T4 x2)
    hours: float = 11.0                # wall-clock budget of the whole kernel, at most MAX_HOURS
    generator: str = 'msrresnet_deep'  # a key of GENERATORS; the deep MSRResNet is the pick for 11 h on a T4 (fast fp16, fills the cap)
    generator_kwargs: dict = field(default_factory=dict)  # its constructor overrides, e.g. {"num_block": 24}
    previous: str | None = None        # a kernel USER/SLUG whose output (run/last.ckpt) this one continues
    slug: str = 'blindsr-train'        # the kernel's name on Kaggle: 5-50 characters, SLUG_RULE
    title: str | None = None           # its title, which Kaggle turns into the slug (default: the slug with spaces)
    private: bool = True               # keep the kernel private

    def __post_init__(self):
        if not _OWNER.match(self.user or ''):
            raise ValueError(f'user must be your Kaggle user name (lower-case letters, digits, "-" or "_"), got {self.user!r}')
        check_slug(self.slug, 'the kernel slug')
        self.title = self.title if self.title is not None else self.slug.replace('-', ' ')
        if not 5 <= len(self.title) <= 50: raise ValueError(f'the title must be 5-50 characters, got {self.title!r}')
        if slugify(self.title) != self.slug:
            raise ValueError(f'the title {self.title!r} gives the slug {slugify(self.title)!r}, not {self.slug!r}: Kaggle makes '
                             f'the slug from the title (lower case, runs of other characters become one hyphen), so pick a '
                             f'title that gives {self.slug!r} (e.g. {self.slug.replace("-", " ")!r}) or --slug {slugify(self.title)}')
        self.dataset = qualify(self.dataset, self.user)
        self.val_datasets = [qualify(d, self.user) for d in self.val_datasets]
        if self.previous: self.previous = qualify(self.previous, self.user, 'previous (a kernel)', min_len=5)
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


# %%
s = KernelSpec('alice', 'ai6126-faces/3', machine='nvidiateslat4', previous='blindsr-train')
test_eq((s.dataset, s.machine, s.previous, s.kernel, s.title), ('alice/ai6126-faces/3', 'T4', 'alice/blindsr-train', 'alice/blindsr-train', 'blindsr train'))
test_eq(KernelSpec('alice', 'faces', slug='face-sr-v2', title='Face SR: v2').title, 'Face SR: v2')
test_fail(lambda: KernelSpec('alice', 'faces', hours=12), contains='12 h')
test_fail(lambda: KernelSpec('alice', 'faces', machine='A100'), contains='P100 or T4')
test_fail(lambda: KernelSpec('', 'faces'), contains='Kaggle user name')
test_fail(lambda: KernelSpec('alice', 'faces', slug='blindsr_train'), contains='no "_"')
test_fail(lambda: KernelSpec('alice', 'faces', slug='blindsr--train'), contains='no "--"')
test_fail(lambda: KernelSpec('alice', 'faces', slug='blindsr-train', title='My blindsr run'), contains="gives the slug 'my-blindsr-run'")
print(machine_note('P100'))

# %% [markdown]
# ## The metadata
#
# `kernel-metadata.json` is what `kaggle kernels push` reads. GPU and internet on (the P100 swap downloads torch;
# blindsr itself comes from the notebook), private, the data as `dataset_sources`, the previous version as
# `kernel_sources`, and `docker_image_pinning_type: "original"`: every version of the kernel runs in the Docker
# image of its first version, so a continued run gets the environment the checkpoint was trained in.
# `check_metadata` lists every problem, with the rule, so a push never fails on Kaggle's side for a typo.

# %%
#| export
KERNEL_DIR = 'kaggle_kernel'            # what `kaggle kernels push -p` uploads, beside nbs/
CODE_FILE = 'blindsr-train.ipynb'       # the kernel notebook in it
METADATA_FILE = 'kernel-metadata.json'
BUILD_FILE = 'build.json'               # the build's arguments, so that CI can rebuild and compare
RUN_NOTEBOOK = '10_kaggle_run.ipynb'    # the source, in nbs/
PLACEHOLDER_USER = 'your-kaggle-name'   # the committed kernel's user: push refuses it
DOCKER_PINNING = 'original'             # every version runs in its first version's image
REQUIRED = ('id', 'title', 'code_file', 'language', 'kernel_type', 'is_private', 'enable_gpu', 'enable_internet',
            'machine_shape', 'dataset_sources', 'kernel_sources', 'docker_image_pinning_type')


def kernel_metadata(spec: KernelSpec) -> dict:
    "kernel-metadata.json for `spec`."
    return {'id': spec.kernel, 'title': spec.title, 'code_file': CODE_FILE, 'language': 'python',
            'kernel_type': 'notebook', 'is_private': spec.private, 'enable_gpu': True, 'enable_tpu': False,
            'enable_internet': True, 'machine_shape': MACHINES[spec.machine], 'docker_image_pinning_type': DOCKER_PINNING,
            'dataset_sources': [spec.dataset, *spec.val_datasets], 'competition_sources': [],
            'kernel_sources': [spec.previous] if spec.previous else [], 'model_sources': []}


def _torch_import_line(src: str) -> str | None:
    return next((l for l in src.splitlines() if re.match(r'\s*(import\s+torch\b|from\s+torch\b)', l)), None)


def check_notebook(path: Path) -> list[str]:
    "Problems of a built notebook: not JSON, not nbformat 4, malformed cells, no guard, or torch imported before it."
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
    code = [''.join(c['source']) for c in nb['cells'] if c.get('cell_type') == 'code']
    guard = next((i for i, src in enumerate(code) if 'def ensure_torch(' in src), None)
    if guard is None: return problems + [f'{path} has no CUDA guard cell (def ensure_torch)']
    for src in code[:guard + 1]:
        line = _torch_import_line(src)
        if line: problems.append(f'{path}: a cell imports torch ({line.strip()!r}) before the CUDA guard has run')
    return problems


def check_metadata(meta: dict,  # the parsed kernel-metadata.json
                   kernel_dir: Path | None = None,  # where code_file must be (None: not checked)
                  ) -> list[str]:  # every problem found; [] when it is fine
    "Problems of a kernel-metadata.json, by Kaggle's rules: fields, names, values, and the code_file."
    p = [f'missing field {k!r}' for k in REQUIRED if k not in meta]
    def bad_ref(r, kind, min_len):
        try: return None if qualify(r, 'owner', kind, min_len) == r else f'{kind} {r!r} lacks its owner (OWNER/SLUG)'
        except ValueError as e: return str(e)
    kid = meta.get('id', '')
    if 'id' in meta:
        e = bad_ref(kid, 'id', 5) or ('id cannot pin a version' if kid.count('/') == 2 else None)
        if e: p.append(e)
        elif 'title' in meta:
            t = str(meta['title'])
            if not 5 <= len(t) <= 50: p.append(f'title {t!r} must be 5-50 characters')
            if slugify(t) != kid.split('/')[1]:
                p.append(f'title {t!r} gives the slug {slugify(t)!r}, not that of id {kid!r}: Kaggle makes the slug from the title')
    for k, want in (('language', 'python'), ('kernel_type', 'notebook')):
        if k in meta and meta[k] != want: p.append(f'{k} must be {want!r}, got {meta[k]!r}')
    for k in ('is_private', 'enable_gpu', 'enable_internet'):
        if k in meta and not isinstance(meta[k], bool): p.append(f'{k} must be true or false, got {meta[k]!r}')
    if meta.get('enable_gpu') is False: p.append('enable_gpu is false: the kernel would train on the CPU')
    if 'machine_shape' in meta and meta['machine_shape'] not in MACHINES.values():
        p.append(f"machine_shape must be one of {', '.join(MACHINES.values())}, got {meta['machine_shape']!r}")
    if meta.get('docker_image_pinning_type', 'original') not in ('original', 'latest'):
        p.append(f"docker_image_pinning_type must be 'original' or 'latest', got {meta['docker_image_pinning_type']!r}")
    for k, min_len in (('dataset_sources', 3), ('kernel_sources', 5)):
        v = meta.get(k, [])
        if not isinstance(v, list): p.append(f'{k} must be a list, got {v!r}'); continue
        p += [e for r in v for e in [bad_ref(r, k, min_len) if isinstance(r, str) else f'{k}: {r!r} is not a string'] if e]
    if 'dataset_sources' in meta and not meta['dataset_sources']: p.append('dataset_sources is empty: the kernel would find no faces')
    if kernel_dir is not None and 'code_file' in meta:
        f = Path(kernel_dir) / meta['code_file']
        if not f.is_file(): p.append(f'code_file {f} does not exist')
        elif f.suffix != '.ipynb': p.append(f'code_file {f} is not an .ipynb notebook')
        else: p += check_notebook(f)
    return p


# %%
meta = kernel_metadata(KernelSpec('alice', 'ai6126-faces'))
test_eq((meta['machine_shape'], meta['docker_image_pinning_type'], meta['dataset_sources']),
        ('NvidiaTeslaP100', 'original', ['alice/ai6126-faces']))
test_eq(check_metadata(meta), [])
test_eq(check_metadata({**meta, 'dataset_sources': ['alice/ai6126-faces/4']}), [])
test_eq(kernel_metadata(KernelSpec('alice', 'faces', machine='T4', previous='blindsr-train'))['kernel_sources'], ['alice/blindsr-train'])
bad = {**meta, 'id': 'alice/blindsr_train', 'machine_shape': 'Gpu', 'enable_internet': 'yes', 'dataset_sources': ['faces'],
       'kernel_sources': ['alice/abc'], 'docker_image_pinning_type': 'pinned'}
del bad['language']
for frag in ("missing field 'language'", 'no "_"', 'machine_shape must be', 'enable_internet must be', "'faces' lacks its owner",
             "'alice/abc'", "docker_image_pinning_type must be"):
    assert any(frag in x for x in check_metadata(bad)), (frag, check_metadata(bad))
assert any('gives the slug' in x for x in check_metadata({**meta, 'title': 'something else'}))
(tmp/'k').mkdir()
test_eq(check_metadata(meta, tmp/'k'), [f"code_file {tmp/'k'/CODE_FILE} does not exist"])
def one_cell_nb(src): return json.dumps({'nbformat': 4, 'nbformat_minor': 5, 'metadata': {}, 'cells': [
    {'cell_type': 'code', 'source': src, 'outputs': [], 'execution_count': None, 'metadata': {}}]})
(tmp/'k'/CODE_FILE).write_text(one_cell_nb('import torch\ndef ensure_torch(): pass\n'))
assert 'before the CUDA guard' in check_metadata(meta, tmp/'k')[0]
(tmp/'k'/CODE_FILE).write_text(one_cell_nb('x = 1\n'))
assert 'no CUDA guard' in check_metadata(meta, tmp/'k')[0]

# %% [markdown]
# ## A wheel of the checkout
#
# The wheel is written directly (a wheel is a zip with a `dist-info` folder), not by `pip wheel`: it takes
# milliseconds, needs no build backend, and is reproducible — files in name order, fixed timestamps and
# permissions — so one tree always gives the same files. It holds `blindsr/` without `weights/` and without caches,
# the metadata from `settings.ini`, the console scripts, and `blindsr/build_info.json`.
#
# **Provenance.** The version gets a local label naming the commit, `0.1.0+g5753ca8` (`.dirty` when the package
# files differ from it), so `pip show blindsr` in the kernel says what runs; `Home-page` points at the commit's tree
# and `build_info.json` holds the full commit. A commit cannot contain its own hash, so the committed notebooks
# record the commit they were built *at*; "the committed notebook equals a fresh build" therefore means: rebuilt
# with the provenance it records, it is the same — every package file included.

# %%
#| export
WHEEL_EXCLUDE = ('weights',)               # blindsr/ subfolders left out: the 3 MB demo weights (the notebooks train their own)
WHEEL_DATE = (1980, 1, 1, 0, 0, 0)         # every zip entry's timestamp, so one tree gives one wheel
BUILD_INFO = 'build_info.json'             # inside the packed blindsr/: commit, dirty, the files' hash


def read_settings(root: Path | str) -> dict:
    "settings.ini's [DEFAULT] section of the checkout."
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(Path(root) / 'settings.ini', encoding='utf-8')
    if 'lib_name' not in cfg['DEFAULT']: raise FileNotFoundError(f'{Path(root) / "settings.ini"} is missing or has no lib_name')
    return dict(cfg['DEFAULT'])


@dataclass(frozen=True)
class Provenance:
    "Which commit a build was made at."
    commit: str          # the checkout's HEAD ('unknown' without git)
    dirty: bool = False  # the package files (blindsr/, settings.ini) differ from that commit

    @property
    def label(self) -> str: return f'g{self.commit[:7]}' + ('.dirty' if self.dirty else '') if self.commit != 'unknown' else 'unknown'


def git_provenance(root: Path | str) -> Provenance:
    "The checkout's HEAD, and whether the package files differ from it."
    def git(*a):
        try: r = subprocess.run(['git', '-C', str(root), *a], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError): return None
        return r.stdout.strip() if r.returncode == 0 else None
    commit = git('rev-parse', 'HEAD')
    if not commit: return Provenance('unknown')
    return Provenance(commit, bool(git('status', '--porcelain', '--', 'blindsr', 'settings.ini')))


def package_files(root: Path | str) -> dict[str, bytes]:
    "{'blindsr/…': bytes} of the package in the checkout, in name order, without WHEEL_EXCLUDE and caches."
    pkg = Path(root) / 'blindsr'
    out = {}
    for p in sorted(pkg.rglob('*')):
        rel = p.relative_to(pkg)
        if not p.is_file() or rel.parts[0] in WHEEL_EXCLUDE or '__pycache__' in rel.parts or p.suffix == '.pyc' \
           or rel.as_posix() == BUILD_INFO: continue
        out[f'blindsr/{rel.as_posix()}'] = p.read_bytes()
    if 'blindsr/__init__.py' not in out: raise FileNotFoundError(f'{pkg} holds no blindsr package')
    return out


def _record_hash(data: bytes) -> str:
    return 'sha256=' + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()


def build_wheel(root: Path | str, prov: Provenance) -> tuple[str, bytes]:
    "(file name, bytes) of a wheel of the checkout's blindsr, its version labelled with `prov`."
    st, files = read_settings(root), package_files(root)
    name, version = st['lib_name'], f"{st['version']}+{prov.label}"
    digest = hashlib.sha256(b''.join(k.encode() + b'\0' + hashlib.sha256(v).digest() for k, v in files.items())).hexdigest()
    files[f'{name}/{BUILD_INFO}'] = (json.dumps({'version': version, 'commit': prov.commit, 'dirty': prov.dirty,
                                                 'files_sha256': digest}, indent=1, sort_keys=True) + '\n').encode()
    di = f'{name}-{version}.dist-info'
    home = st['git_url'] + (f'/tree/{prov.commit}' if prov.commit != 'unknown' else '')
    meta = ['Metadata-Version: 2.1', f'Name: {name}', f'Version: {version}', f"Summary: {st['description']}",
            f'Home-page: {home}', f"Author: {st['author']}", f"Author-email: {st['author_email']}",
            f"License: {st['license']}", f"Requires-Python: >={st['min_python']}",
            *[f'Requires-Dist: {r}' for r in st.get('requirements', '').split()]]
    scripts = [s.split('=', 1) for s in st.get('console_scripts', '').split()]
    files[f'{di}/METADATA'] = ('\n'.join(meta) + '\n').encode()
    files[f'{di}/WHEEL'] = b'Wheel-Version: 1.0\nGenerator: blindsr.kaggle_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n'
    files[f'{di}/entry_points.txt'] = ('[console_scripts]\n' + ''.join(f'{k} = {v}\n' for k, v in scripts)).encode()
    files[f'{di}/top_level.txt'] = f'{name}\n'.encode()
    record = [f'{k},{_record_hash(v)},{len(v)}' for k, v in files.items()] + [f'{di}/RECORD,,']
    files[f'{di}/RECORD'] = ('\n'.join(record) + '\n').encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as zf:
        for k, v in files.items():
            zi = zipfile.ZipInfo(k, WHEEL_DATE)
            zi.external_attr, zi.compress_type = 0o644 << 16, zipfile.ZIP_DEFLATED
            zf.writestr(zi, v, compresslevel=9)
    return f'{name}-{version}-py3-none-any.whl', buf.getvalue()


def wheel_files(data: bytes) -> dict[str, bytes]:
    "{name: bytes} of a wheel's files."
    with zipfile.ZipFile(io.BytesIO(data)) as zf: return {n: zf.read(n) for n in zf.namelist()}


# %% [markdown]
# A wheel of this checkout: the package's files exactly, no weights, the version labelled, a `RECORD` whose hashes
# check; the same tree gives the same bytes, and another commit another label:

# %%
root = Path.cwd().parent if (Path.cwd() / RUN_NOTEBOOK).exists() else Path.cwd()
prov = Provenance('5753ca8c' + '0' * 32)
name, whl = build_wheel(root, prov)
test_eq(name, 'blindsr-0.1.0+g5753ca8-py3-none-any.whl')
got = wheel_files(whl)
test_eq({k: v for k, v in got.items() if k.startswith('blindsr/') and not k.endswith(BUILD_INFO)}, package_files(root))
assert not any('/weights/' in k or '__pycache__' in k for k in got)
test_eq(json.loads(got['blindsr/build_info.json'])['commit'], prov.commit)
di = 'blindsr-0.1.0+g5753ca8.dist-info'
assert 'Version: 0.1.0+g5753ca8' in got[f'{di}/METADATA'].decode() and 'Requires-Dist: torch>=2.1' in got[f'{di}/METADATA'].decode()
assert 'blindsr_train = blindsr.train:train_cli' in got[f'{di}/entry_points.txt'].decode()
for line in got[f'{di}/RECORD'].decode().splitlines()[:-1]:
    path, h, size = line.split(','); test_eq((h, int(size)), (_record_hash(got[path]), len(got[path])))
test_eq(build_wheel(root, prov)[1], whl)
test_eq(build_wheel(root, Provenance(prov.commit, dirty=True))[0], 'blindsr-0.1.0+g5753ca8.dirty-py3-none-any.whl')
print(f'{name}: {len(whl) / 1024:.0f} KiB ({len(base64.b64encode(whl)) / 1024:.0f} KiB as base64); '
      f'{sum(map(len, package_files(root).values())) / 1024:.0f} KiB of package files')

# %% [markdown]
# ## Building a notebook
#
# The source notebook's special cells are found by what they hold:
#
# - the line `from blindsr.cuda_guard import ensure_torch, machine_description` becomes the source of
#   `blindsr/cuda_guard.py` (standard library only);
# - the cell starting `# Packed blindsr wheel` becomes `WHEEL = {'name': …, 'sha256': …, 'base64': …}` (its source
#   hidden in Jupyter, Kaggle and Colab: it is 2,000 lines of base64);
# - the line `from blindsr.notebook_runtime import install_blindsr` becomes that function's source;
# - the cell starting `# Parameters` becomes the build's arguments (Kaggle only; Colab's has form fields to edit).
#
# Outputs, execution counts and cell metadata are dropped, cell ids are numbered, JSON is written with sorted
# keys: the same arguments and the same `nbs/` and `blindsr/` give the same bytes.

# %%
#| export
GUARD_LINE = 'from blindsr.cuda_guard import ensure_torch, machine_description'
INSTALL_LINE = 'from blindsr.notebook_runtime import install_blindsr'
WHEEL_MARK = '# Packed blindsr wheel'
PARAMS_MARK = '# Parameters'


def repo_root(start: Path | str | None = None) -> Path:
    "The blindsr checkout: `start`, or the current folder, its parent or the package's parent, whichever holds nbs/."
    cands = [Path(start)] if start else [Path.cwd(), Path.cwd().parent, Path(blindsr.__file__).resolve().parent.parent]
    for c in cands:
        if (c / 'nbs' / RUN_NOTEBOOK).is_file(): return c.resolve()
    raise FileNotFoundError(f'no blindsr checkout with nbs/{RUN_NOTEBOOK} at {", ".join(map(str, cands))}: the notebooks are '
                            'built from nbs/, so run this in a clone of the repository (or pass --root)')


def guard_source(root: Path) -> str:
    "The checkout's blindsr/cuda_guard.py without nbdev's markers: what the guard cell runs."
    path = Path(root) / 'blindsr' / 'cuda_guard.py'
    lines = [l for l in path.read_text(encoding='utf-8').splitlines() if not l.startswith(('# %%', '# AUTOGENERATED'))]
    text = re.sub(r'\n{3,}', '\n\n', '\n'.join(lines)).strip('\n')
    return f'# ---- blindsr/cuda_guard.py, pasted by the build (nothing here imports torch) ----\n{text}\n# ---- end of blindsr/cuda_guard.py ----'


def function_source(path: Path, name: str) -> str:
    "The source of the top-level function `name` in the Python file `path`."
    text = Path(path).read_text(encoding='utf-8')
    node = next((n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if node is None: raise ValueError(f'{path} defines no function {name}')
    return ast.get_source_segment(text, node)


def wheel_cell_source(name: str, data: bytes) -> str:
    "The packed-wheel cell: WHEEL = {'name', 'sha256', 'base64'}, base64 in lines of 76."
    b64 = base64.b64encode(data).decode()
    lines = [b64[i:i + 76] for i in range(0, len(b64), 76)]
    return '\n'.join([f'#@title {WHEEL_MARK[2:]}: {name} (base64; rebuild the notebook rather than edit this cell)',
                      f'{WHEEL_MARK}: {len(data) // 1024} KiB, checked by its sha256 before it is installed.',
                      f'WHEEL = {{"name": {name!r}, "sha256": {hashlib.sha256(data).hexdigest()!r}, "base64": """',
                      *lines, '"""}'])


def _cell(kind: str, text: str, i: int, metadata: dict | None = None) -> dict:
    c = {'cell_type': kind, 'id': f'cell-{i:02d}', 'metadata': metadata or {}, 'source': text.splitlines(keepends=True)}
    if kind == 'code': c.update(execution_count=None, outputs=[])
    return c


def build_notebook(source: str,  # the notebook in nbs/, e.g. RUN_NOTEBOOK
                   root: Path,  # the checkout
                   prov: Provenance,  # recorded in the wheel
                   header: str,  # the first (markdown) cell
                   params: str | None = None,  # the parameters cell's new source (None: kept as it is)
                   metadata: dict | None = None,  # extra notebook metadata (e.g. Colab's)
                  ) -> dict:  # the built notebook (nbformat 4)
    "A source notebook with the guard and installer pasted in, the wheel packed, and the parameters written."
    src = root / 'nbs' / source
    nb = json.loads(src.read_text(encoding='utf-8'))
    whl_name, whl = build_wheel(root, prov)
    cells, seen = [_cell('markdown', header, 0)], []
    for c in nb['cells']:
        text, meta = ''.join(c['source']) if isinstance(c['source'], list) else c['source'], {}
        if c['cell_type'] == 'code' and GUARD_LINE in text.splitlines():
            text = text.replace(GUARD_LINE, guard_source(root)); seen.append('guard')
        elif c['cell_type'] == 'code' and INSTALL_LINE in text.splitlines():
            text = text.replace(INSTALL_LINE, function_source(root / 'blindsr' / 'notebook_runtime.py', 'install_blindsr'))
            seen.append('install')
        elif c['cell_type'] == 'code' and text.startswith(WHEEL_MARK):
            text, meta = wheel_cell_source(whl_name, whl), {'cellView': 'form', 'jupyter': {'source_hidden': True}}
            seen.append('wheel')
        elif c['cell_type'] == 'code' and text.startswith(PARAMS_MARK):
            text = params if params is not None else text; seen.append('params')
        cells.append(_cell(c['cell_type'], text, len(cells), meta))
    for what, how in (('guard', f'a cell with the line `{GUARD_LINE}`'), ('install', f'a cell with the line `{INSTALL_LINE}`'),
                      ('wheel', f'a cell starting `{WHEEL_MARK}`'), ('params', f'a cell starting `{PARAMS_MARK}`')):
        if seen.count(what) != 1: raise ValueError(f'{src} must have exactly one {how}; found {seen.count(what)}')
    if not seen.index('params') < seen.index('guard') < seen.index('wheel') < seen.index('install'):
        raise ValueError(f'{src}: the cells must come in the order parameters, CUDA guard, packed wheel, installer; found {seen}')
    md = {'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}, 'language_info': {'name': 'python'}}
    return {'cells': cells, 'metadata': {**md, **(metadata or {})}, 'nbformat': 4, 'nbformat_minor': 5}


def notebook_json(nb: dict) -> str:
    "The file text of a built notebook (sorted keys: one notebook, one text)."
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + '\n'


# %% [markdown]
# ## Reading a built notebook back
#
# `packed_wheel` finds the wheel in a built notebook and checks it against its sha256; `recorded_provenance`
# reads the commit it records. `same_build` compares two built notebooks: every cell byte for byte, except that
# two wheel cells are equal when their wheels hold the same files — a wheel's zip bytes depend on the zlib that
# compressed them, its files do not.

# %%
#| export
def packed_wheel(nb: dict) -> tuple[str, bytes]:
    "(name, bytes) of the wheel packed in a built notebook; ValueError if there is none or its sha256 is wrong."
    for c in nb.get('cells', []):
        text = ''.join(c.get('source', ''))
        if c.get('cell_type') == 'code' and WHEEL_MARK in text and 'WHEEL = {' in text:
            w = ast.literal_eval(text[text.index('WHEEL = {') + len('WHEEL = '):].strip())
            data = base64.b64decode(w['base64'])
            if hashlib.sha256(data).hexdigest() != w['sha256']: raise ValueError(f'the packed {w["name"]} fails its sha256 check')
            return w['name'], data
    raise ValueError('the notebook carries no packed blindsr wheel: build it with blindsr_kaggle build / blindsr_colab build')


def recorded_provenance(nb: dict) -> Provenance:
    "The provenance recorded in a built notebook's wheel."
    info = json.loads(wheel_files(packed_wheel(nb)[1])[f'blindsr/{BUILD_INFO}'])
    return Provenance(info['commit'], info['dirty'])


def _comparable(text: str) -> str:
    nb = json.loads(text)
    for c in nb['cells']:
        if c['cell_type'] == 'code' and ''.join(c['source']).startswith(f'#@title {WHEEL_MARK[2:]}'):
            name, data = packed_wheel(nb)
            files = wheel_files(data)
            c['source'] = [name] + [f'{k} {hashlib.sha256(files[k]).hexdigest()}' for k in sorted(files)]
    return notebook_json(nb)


def same_build(a: str, b: str) -> bool:
    "Are two built notebooks (file texts) the same build: equal cells, and wheels holding equal files?"
    try: return a == b or _comparable(a) == _comparable(b)
    except (ValueError, KeyError, SyntaxError): return False


# %% [markdown]
# ## The Kaggle kernel
#
# The parameters cell is written from the spec; `MACHINE_ASKED` and its note say what was asked for, and the
# kernel's `MACHINE` (set by the guard cell from nvidia-smi) what runs. `build_files` gives the kernel folder's three
# files; `stale_files` rebuilds them with the spec of `build.json` and the provenance the notebook records, and
# names those that differ.

# %%
#| export
def params_source(spec: KernelSpec) -> str:
    "The kernel's parameters cell."
    return '\n'.join([
        f'{PARAMS_MARK} (written by blindsr_kaggle build from its arguments; rebuild rather than edit)',
        f'MACHINE_ASKED = {spec.machine!r}  # the accelerator kernel-metadata.json asks for; MACHINE (set below) is what runs',
        f'MACHINE_NOTE = {machine_note(spec.machine)!r}',
        f'HOURS = {spec.hours!r}  # wall-clock budget of the whole kernel; Kaggle stops GPU sessions at 12 h',
        f'GENERATOR = {spec.generator!r}  # a key of blindsr.models.GENERATORS',
        f'GENERATOR_KWARGS = {spec.generator_kwargs!r}  # its constructor overrides',
        f'PREVIOUS = {spec.previous!r}  # the kernel (kernel_sources) whose output run/last.ckpt this run continues'])


def build_command(spec: KernelSpec) -> str:
    "The blindsr_kaggle build command line that makes `spec`."
    d = KernelSpec(spec.user, spec.dataset)
    args = ['blindsr_kaggle build', f'--user {spec.user}', f'--dataset {spec.dataset}']
    args += [f'--val-dataset {v}' for v in spec.val_datasets]
    for f in ('machine', 'hours', 'generator', 'previous', 'slug'):
        if getattr(spec, f) != getattr(d, f): args.append(f"--{f.replace('_', '-')} {getattr(spec, f)}")
    if spec.title != spec.slug.replace('-', ' '): args.append(f'--title {json.dumps(spec.title)}')
    if spec.generator_kwargs: args.append(f"--generator-kwargs '{json.dumps(spec.generator_kwargs)}'")
    if not spec.private: args.append('--public')
    return ' '.join(args)


def kernel_header(spec: KernelSpec, root: Path, prov: Provenance) -> str:
    url = read_settings(root)['git_url']
    return (f'**blindsr: train a blind face super-resolution model on Kaggle.** Built by `{build_command(spec)}` from '
            f'[`nbs/{RUN_NOTEBOOK}`]({url}/blob/main/nbs/{RUN_NOTEBOOK}) at commit `{prov.commit}`'
            f'{" (with uncommitted changes)" if prov.dirty else ""}: edit that notebook and rebuild, not this one. '
            f'{machine_note(spec.machine)} Outputs: `submission.zip`, `curves.png`, `val_grid.png`, `val_scores.csv`, '
            '`kaggle_summary.json`, `run/`.')


def build_files(spec: KernelSpec,
                root: Path | str | None = None,  # the checkout (default: see repo_root)
                prov: Provenance | None = None,  # default: the checkout's git state
               ) -> dict[str, str]:  # {file name: text} of the kernel folder
    "The kernel folder's files for `spec`: kernel-metadata.json, the notebook, build.json."
    root = repo_root(root)
    prov = prov or git_provenance(root)
    nb = build_notebook(RUN_NOTEBOOK, root, prov, kernel_header(spec, root, prov), params_source(spec))
    return {METADATA_FILE: notebook_json(kernel_metadata(spec)), CODE_FILE: notebook_json(nb),
            BUILD_FILE: notebook_json(asdict(spec))}


def write_files(files: dict[str, str], out: Path | str) -> list[Path]:
    "Write {name: text} into the folder `out` (created)."
    out = Path(out); out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items(): (out / name).write_text(text, encoding='utf-8')
    return [out / n for n in files]


def generator_problem(spec: KernelSpec) -> str | None:
    "Why the spec's generator cannot train on Kaggle (unknown, unbuildable, over the cap), or None; imports torch."
    from blindsr.models import check_generator
    try: check_generator(spec.generator, spec.generator_kwargs)
    except ValueError as e: return str(e)
    return None


KERNEL_FILES = (METADATA_FILE, CODE_FILE, BUILD_FILE, 'README.md')   # what a kernel folder built by blindsr holds


def check_kernel_dir(kernel_dir: Path | str,  # where the build will write
                     root: Path,  # the checkout it is built from
                     overwrite: bool = False,  # --overwrite: write into it whatever else it holds
                    ) -> None:
    "Refuse a kernel folder that is a file, holds the checkout's sources, or holds files of something else (another kernel)."
    ours = (Path(kernel_dir) / BUILD_FILE).is_file()         # built by blindsr before: its files are ours to replace
    check_output_dir(kernel_dir, [root / 'nbs', root / 'blindsr'], own=lambda p: ours and p.name in KERNEL_FILES,
                     overwrite=overwrite, flag='--dir')


def load_spec(kernel_dir: Path | str) -> KernelSpec:
    "The KernelSpec a kernel folder was built with (its build.json)."
    f = Path(kernel_dir) / BUILD_FILE
    if not f.is_file(): raise FileNotFoundError(f'{f} not found: build the kernel first (blindsr_kaggle build --user NAME --dataset SLUG)')
    d = json.loads(f.read_text(encoding='utf-8'))
    unknown = set(d) - {f_.name for f_ in fields(KernelSpec)}
    if unknown: raise ValueError(f'{f}: unknown fields {sorted(unknown)}; rebuild it with this blindsr')
    return KernelSpec(**d)


def stale_files(folder: Path | str,  # a built kernel folder (or the Colab folder)
                fresh: dict[str, str],  # what a fresh build gives
               ) -> list[str]:  # the names that differ ([] when the folder is up to date)
    "The files of `folder` that are not what a fresh build gives (a notebook's wheel compared by its files)."
    out = []
    for n, t in fresh.items():
        f = Path(folder) / n
        have = f.read_text(encoding='utf-8') if f.is_file() else None
        if have is None or not (have == t or (n.endswith('.ipynb') and same_build(have, t))): out.append(n)
    return out


def kernel_stale_files(kernel_dir: Path | str, root: Path | str | None = None) -> list[str]:
    "The files of a kernel folder that differ from a rebuild with its build.json and its recorded provenance."
    nb_path = Path(kernel_dir) / CODE_FILE
    try: prov = recorded_provenance(json.loads(nb_path.read_text(encoding='utf-8')))
    except (OSError, ValueError, KeyError, SyntaxError): return [CODE_FILE]
    return stale_files(kernel_dir, build_files(load_spec(kernel_dir), root, prov))


# %% [markdown]
# A build from this checkout: the guard, the wheel and the installer are pasted in, in that order, and no cell
# imports torch before the guard; two builds are byte-identical; `kernel_stale_files` sees an edited cell, and an
# edited package file behind the wheel, but not a wheel compressed differently:

# %%
spec = KernelSpec('alice', 'ai6126-faces', machine='T4', hours=9.5, generator_kwargs={'num_block': 24})
paths = write_files(build_files(spec, root, prov), tmp/'kernel')
test_eq(sorted(p.name for p in paths), sorted([METADATA_FILE, CODE_FILE, BUILD_FILE]))
nb = json.loads((tmp/'kernel'/CODE_FILE).read_text())
code = [''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code']
assert code[0].startswith(PARAMS_MARK) and "HOURS = 9.5" in code[0] and "GENERATOR_KWARGS = {'num_block': 24}" in code[0], code[0]
assert 'def ensure_torch(' in code[1] and GUARD_LINE not in code[1] and _torch_import_line(code[1]) is None
assert code[2].startswith('#@title') and 'WHEEL = {' in code[2] and 'def install_blindsr(' in code[3]
test_eq(packed_wheel(nb)[0], 'blindsr-0.1.0+g5753ca8-py3-none-any.whl'); test_eq(recorded_provenance(nb), prov)
test_eq(check_metadata(json.loads((tmp/'kernel'/METADATA_FILE).read_text()), tmp/'kernel'), [])
test_eq(load_spec(tmp/'kernel'), spec)
test_eq(kernel_stale_files(tmp/'kernel', root), [])
again = build_files(spec, root, prov)
for n, t in again.items(): test_eq((tmp/'kernel'/n).read_text(), t)
print(build_command(spec))
test_eq(generator_problem(spec), None)
assert 'over the cap' in generator_problem(KernelSpec('alice', 'faces', generator='msrresnet', generator_kwargs={'num_feat': 128}))
check_kernel_dir(tmp/'kernel', root)                                   # a build's own folder: rebuilt in place
(tmp/'other').mkdir(); (tmp/'other'/METADATA_FILE).write_text('{"id": "bob/other-kernel"}')
test_fail(lambda: check_kernel_dir(tmp/'other', root), contains='did not write (kernel-metadata.json)')
check_kernel_dir(tmp/'other', root, overwrite=True)
test_fail(lambda: check_kernel_dir(root/'nbs'/'k', root), contains='lies inside the input')


# %%
def rewrap(text, level):                                   # the same wheel, compressed at another level
    nb = json.loads(text); name, data = packed_wheel(nb)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as zf:
        for k, v in wheel_files(data).items():
            zi = zipfile.ZipInfo(k, WHEEL_DATE); zi.compress_type = zipfile.ZIP_DEFLATED; zf.writestr(zi, v, compresslevel=level)
    for c in nb['cells']:
        if ''.join(c['source']).startswith('#@title'): c['source'] = wheel_cell_source(name, buf.getvalue()).splitlines(True)
    return notebook_json(nb)
other = rewrap(again[CODE_FILE], 1)
test_ne(other, again[CODE_FILE]); assert same_build(other, again[CODE_FILE])
assert not same_build(again[CODE_FILE].replace('HOURS = 9.5', 'HOURS = 3.0'), again[CODE_FILE])
copy = tmp/'checkout'                                      # a checkout with one package file changed
(copy/'nbs').mkdir(parents=True); shutil.copy(root/'nbs'/RUN_NOTEBOOK, copy/'nbs'); shutil.copy(root/'settings.ini', copy)
shutil.copytree(root/'blindsr', copy/'blindsr', ignore=shutil.ignore_patterns('__pycache__', 'weights'))
test_eq(kernel_stale_files(tmp/'kernel', copy), [])
(copy/'blindsr'/'core.py').write_text((copy/'blindsr'/'core.py').read_text() + '\n# changed\n')
test_eq(kernel_stale_files(tmp/'kernel', copy), [CODE_FILE])

# %% [markdown]
# The parameters cell of `nbs/10_kaggle_run.ipynb` defines the same names as the one the build writes, so the
# notebook `nbdev_test` runs and the kernel agree:

# %%
run_nb = json.loads((root/'nbs'/RUN_NOTEBOOK).read_text())
ours = next(''.join(c['source']) for c in run_nb['cells'] if ''.join(c['source']).startswith(PARAMS_MARK))
names = lambda src: sorted(t.id for n in ast.parse(src).body for t in n.targets)
test_eq(names(ours), names(params_source(spec)))

# %% [markdown]
# ## The Colab notebook
#
# `nbs/11_colab_run.ipynb` becomes `colab/blindsr-colab.ipynb` the same way, with its parameters left as they are:
# they are Colab form fields (`#@param`), edited in Colab. The notebook metadata asks Colab for a GPU runtime. The
# README's "Open in Colab" badge opens the committed file from the repository named by `settings.ini`
# (`git_url`, `branch`); `colab_badge` writes it, and a test checks the README carries it.

# %%
#| export
COLAB_DIR = 'colab'                      # beside nbs/
COLAB_FILE = 'blindsr-colab.ipynb'       # the Colab notebook in it
COLAB_NOTEBOOK = '11_colab_run.ipynb'    # its source, in nbs/


def colab_header(root: Path, prov: Provenance) -> str:
    url = read_settings(root)['git_url']
    return (f'**blindsr on Colab: train a blind face super-resolution model, with checkpoints on Google Drive.** Built by '
            f'`blindsr_colab build` from [`nbs/{COLAB_NOTEBOOK}`]({url}/blob/main/nbs/{COLAB_NOTEBOOK}) at commit '
            f'`{prov.commit}`{" (with uncommitted changes)" if prov.dirty else ""}; it carries that blindsr, so it also works '
            'uploaded by hand. **To run:** *Runtime → Change runtime type → T4 GPU*; put your data zip (`train/GT`, '
            '`val/GT`, `val/LQ`, `test/LQ`) in *My Drive/blindsr/*, set the parameters below, then *Runtime → Run all*. '
            'After a disconnect, *Run all* again: training resumes from the checkpoint on Drive.')


def colab_files(root: Path | str | None = None, prov: Provenance | None = None) -> dict[str, str]:
    "{COLAB_FILE: text}: the built Colab notebook."
    root = repo_root(root)
    prov = prov or git_provenance(root)
    meta = {'accelerator': 'GPU', 'colab': {'name': COLAB_FILE, 'provenance': []}}
    return {COLAB_FILE: notebook_json(build_notebook(COLAB_NOTEBOOK, root, prov, colab_header(root, prov), metadata=meta))}


def colab_stale_files(colab_dir: Path | str, root: Path | str | None = None) -> list[str]:
    "[COLAB_FILE] if the Colab notebook differs from a rebuild with its recorded provenance, else []."
    try: prov = recorded_provenance(json.loads((Path(colab_dir) / COLAB_FILE).read_text(encoding='utf-8')))
    except (OSError, ValueError, KeyError, SyntaxError): return [COLAB_FILE]
    return stale_files(colab_dir, colab_files(root, prov))


def colab_badge(root: Path | str | None = None) -> str:
    "The README's 'Open in Colab' badge for the committed Colab notebook, from settings.ini's git_url and branch."
    from urllib.parse import quote
    st = read_settings(repo_root(root))
    repo = re.sub(r'^https://github\.com/|\.git$', '', st['git_url'].rstrip('/'))
    url = f"https://colab.research.google.com/github/{repo}/blob/{quote(st.get('branch', 'main'), safe='')}/{COLAB_DIR}/{COLAB_FILE}"
    return f'[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})'


def colab_parser() -> argparse.ArgumentParser:
    "The argument parser of blindsr_colab."
    ap = argparse.ArgumentParser(prog='blindsr_colab', formatter_class=HelpFormatter,
                                 description=f'The Colab notebook {COLAB_DIR}/{COLAB_FILE}, built from nbs/{COLAB_NOTEBOOK}\n'
                                             'with a wheel of blindsr/ inside (it runs without internet access to blindsr).',
                                 epilog=examples(('rebuild colab/ in this checkout after editing nbs/ or blindsr/', 'blindsr_colab build'),
                                                 ('is colab/ what nbs/ and blindsr/ build now?', 'blindsr_colab build --check')))
    sub = ap.add_subparsers(dest='cmd', required=True, metavar='SUBCOMMAND', title='subcommands')
    b = sub.add_parser('build', help=f'write {COLAB_DIR}/{COLAB_FILE} from nbs/{COLAB_NOTEBOOK}', formatter_class=HelpFormatter,
                       description=f'Write {COLAB_FILE} from nbs/{COLAB_NOTEBOOK} and blindsr/ (the wheel it carries).\n'
                                   'Upload it to Colab, or open it from GitHub with the README badge once pushed.',
                       epilog=examples(('rebuild colab/ in this checkout', 'blindsr_colab build'),
                                       ('a copy to upload by hand', 'blindsr_colab build --dir ~/Downloads/blindsr-colab'),
                                       ('only compare colab/ with a fresh build (CI)', 'blindsr_colab build --check')))
    g = b.add_argument_group('where')
    g.add_argument('--root', default=None, metavar='DIR', help='the blindsr checkout (default: found from here or the package)')
    g.add_argument('--dir', default=None, metavar='DIR', help=f'where to write (default: <checkout>/{COLAB_DIR})')
    g = b.add_argument_group('what to do')
    g.add_argument('--check', action='store_true', help='only check that the folder equals a fresh build; write nothing (default: build)')
    g.add_argument('--overwrite', action='store_true',
                   help=f'write into a --dir that holds files other than {COLAB_FILE} (default: refuse)')
    return ap


def colab_cli(argv: list[str] | None = None) -> int:
    "blindsr_colab build [--check]: the Colab notebook, colab/blindsr-colab.ipynb, from nbs/11_colab_run.ipynb."
    a = colab_parser().parse_args(argv)

    def body() -> int:
        root = repo_root(a.root)
        out = Path(a.dir) if a.dir else root / COLAB_DIR
        if a.check:
            stale = colab_stale_files(out, root)
            if stale: print(f'{out}: {", ".join(stale)} differ from a fresh build; run: blindsr_colab build', file=sys.stderr); return 1
            print(f'{out}: up to date with nbs/{COLAB_NOTEBOOK}'); return 0
        check_output_dir(out, [root / 'nbs', root / 'blindsr'], own=lambda p: p.name in (COLAB_FILE, 'README.md'),
                         overwrite=a.overwrite, flag='--dir')
        files = colab_files(root)
        path, = write_files(files, out)
        name, data = packed_wheel(json.loads(files[COLAB_FILE]))
        print(f'wrote {path} ({path.stat().st_size / 1024:.0f} KiB, carrying {name}, {len(data) / 1024:.0f} KiB)')
        print('open it from GitHub with the README badge once pushed, or upload it at https://colab.research.google.com')
        return 0
    return run_cli(f'blindsr_colab {a.cmd}', body, USER_ERRORS, resume_hint='rerun the same command')


# %%
cdir = tmp/'colab'
with redirect_stdout(StringIO()) as out: test_eq(colab_cli(['build', '--root', str(root), '--dir', str(cdir)]), 0)
print(out.getvalue())
cnb = json.loads((cdir/COLAB_FILE).read_text())
test_eq(cnb['metadata']['accelerator'], 'GPU'); test_eq(check_notebook(cdir/COLAB_FILE), [])
with redirect_stdout(StringIO()): test_eq(colab_cli(['build', '--root', str(root), '--dir', str(cdir), '--check']), 0)
print(colab_badge(root))
assert colab_badge(root).endswith('(https://colab.research.google.com/github/blindsr/blindsr/blob/main/colab/blindsr-colab.ipynb)')

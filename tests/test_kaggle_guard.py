"""The kernel's CUDA guard as Kaggle runs it: the parameters cell and the guard cell of the committed kernel, in a fresh
interpreter, before blindsr or torch exist. A stand-in `nvidia-smi` reports the GPU and a stand-in `torch` package its
build, so every branch runs with no GPU and no network:

- with a stand-in `pip` that records what it is asked (and then makes `torch` report the build it installed);
- with the real pip, on a virtual environment holding tiny fake wheels that carry the real names, versions and
  dependency shapes (Kaggle's image: torch 2.14.1+cu130, torchaudio, torchcodec, numpy 1.26.4; the cu126 index as a
  local folder): the pinned `+cu126` command really swaps torch and torchvision, pulls the cu12 libraries, leaves
  numpy alone, and the companions built for the old torch are removed."""
import base64
import hashlib
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from blindsr.cuda_guard import LEGACY_ARCHES, LEGACY_INDEX, LEGACY_TORCH
from blindsr.kaggle_build import CODE_FILE, KERNEL_DIR

CU130 = ['sm_75', 'sm_80', 'sm_86', 'sm_90', 'sm_100', 'sm_120']
FAKE_TORCH = '''import json, os
__version__ = {version!r}
class cuda:
    @staticmethod
    def get_arch_list():
        if os.environ.get("FAKE_ARCH_FILE"): return json.load(open(os.environ["FAKE_ARCH_FILE"]))
        return {legacy!r} if "+cu126" in __version__ else {cu130!r}
class _T:
    def __add__(self, other): return self
    def sum(self): return self
    def __float__(self): return 4.0
def ones(*shape, device=None):
    if "+cu126" not in __version__ and not os.environ.get("FAKE_ARCH_FILE"):
        raise RuntimeError("CUDA error: no kernel image is available for execution on the device")
    return _T()
'''


@pytest.fixture(scope='module')
def guard_cells(root):
    "The committed kernel's parameters cell and guard cell (the guard prints MACHINE_NOTE from the parameters)."
    nb = json.loads((root / KERNEL_DIR / CODE_FILE).read_text())
    code = [''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code']
    assert 'def ensure_torch(' in code[1]
    return code[0] + '\n' + code[1] + '\nimport sys\nprint("torch imported by the cell:", "torch" in sys.modules)\n'


def fake_smi(bin_):
    bin_.mkdir(exist_ok=True)
    (bin_ / 'nvidia-smi').write_text('#!/bin/sh\ncase "$1" in\n  --query-gpu=compute_cap) printf "$FAKE_CAPS";;\n'
                                     '  --query-gpu=name) printf "$FAKE_NAMES";;\nesac\n')
    (bin_ / 'nvidia-smi').chmod(0o755)


def dist_info(site, name, version, requires=()):
    d = site / f'{name}-{version}.dist-info'
    d.mkdir(parents=True)
    (d / 'METADATA').write_text(f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n' + ''.join(f'Requires-Dist: {r}\n' for r in requires))


@pytest.fixture
def fakes(tmp_path):
    "bin/nvidia-smi, site/torch (version and arch list from a file) and site/pip stand-ins, plus torchaudio/torchcodec metadata."
    bin_, site = tmp_path / 'bin', tmp_path / 'site'
    fake_smi(bin_)
    (site / 'torch').mkdir(parents=True); (site / 'pip').mkdir()
    (site / 'torch' / '__init__.py').write_text(
        'import json, os\n_v, _a = json.load(open(os.environ["FAKE_TORCH_FILE"]))\n__version__ = _v\n'
        'class cuda:\n    get_arch_list = staticmethod(lambda: json.load(open(os.environ["FAKE_TORCH_FILE"]))[1])\n'
        'class _T:\n    def __add__(self, o): return self\n    def sum(self): return self\n    def __float__(self): return 4.0\n'
        'def ones(*a, **k): return _T()\n')
    (site / 'pip' / '__init__.py').write_text('')
    (site / 'pip' / '__main__.py').write_text(
        'import json, os, sys\n'
        'open(os.environ["FAKE_PIP_LOG"], "a").write(json.dumps(sys.argv[1:]) + "\\n")\n'
        f'if sys.argv[1] == "install": json.dump(["2.14.1+cu126", {list(LEGACY_ARCHES)!r}], open(os.environ["FAKE_TORCH_FILE"], "w"))\n')
    dist_info(site, 'torchaudio', '2.14.1+cu130', ['torch==2.14.1'])
    dist_info(site, 'torchcodec', '0.10.0')

    def run(cell, caps, torch_build, gpu=True, names=''):
        (tmp_path / 'torch.json').write_text(json.dumps(torch_build))
        log = tmp_path / 'pip.log'
        if log.exists(): log.unlink()
        env = {**os.environ, 'PATH': str(bin_ if gpu else tmp_path / 'empty'), 'PYTHONPATH': str(site),
               'FAKE_CAPS': caps, 'FAKE_NAMES': names, 'FAKE_TORCH_FILE': str(tmp_path / 'torch.json'), 'FAKE_PIP_LOG': str(log)}
        r = subprocess.run([sys.executable, '-c', cell], capture_output=True, text=True, env=env, timeout=120)
        pips = [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []
        return r, pips
    return run


def test_sm60_with_2_14_1_cu130_installed_is_a_forced_swap_to_cu126(guard_cells, fakes):
    "The image's torch already says 2.14.1 (+cu130): only a pin with the local label makes pip replace it."
    r, pips = fakes(guard_cells, '6.0\\n', ['2.14.1+cu130', CU130], names='Tesla P100-PCIE-16GB\\n')
    assert r.returncode == 0, r.stderr
    assert pips[0] == ['install', '-q', 'torch==2.14.1+cu126', 'torchvision==0.29.1+cu126', '--index-url', LEGACY_INDEX]
    assert pips[0][2:4] == LEGACY_TORCH.split() and not {'--force-reinstall', '--no-deps', '-U'} & set(pips[0])
    assert pips[1] == ['uninstall', '-y', 'torchaudio', 'torchcodec'] and len(pips) == 2
    out = r.stdout
    assert out.index('runs P100 requests on T4 x2') < out.index('cuda_guard:')             # the first output
    assert 'running on: Tesla P100-PCIE-16GB (sm_60)' in out
    assert 'swapping torch 2.14.1+cu130 for 2.14.1+cu126, the last build with sm_60 kernels' in out
    assert 'removing torchaudio 2.14.1+cu130 (built against the torch it came with' in out and 'removing torchcodec 0.10.0' in out
    assert 'torch 2.14.1+cu126 installed, carrying sm_50, sm_60' in out and 'ran a CUDA kernel in a fresh interpreter' in out
    assert 'torch imported by the cell: False' in out


@pytest.mark.parametrize('caps', ['7.5\\n7.5\\n', '8.0\\n', '9.0\\n'])   # T4 x2 (what a P100 request gets now), A100, H100
def test_sm75_sm80_sm90_under_cu130_need_nothing(guard_cells, fakes, caps):
    r, pips = fakes(guard_cells, caps, ['2.14.1+cu130', CU130])
    assert r.returncode == 0, r.stderr
    assert pips == [] and 'nothing to install' in r.stdout and 'torch imported by the cell: False' in r.stdout


def test_sm60_under_the_legacy_build_needs_nothing(guard_cells, fakes):
    r, pips = fakes(guard_cells, '6.0\\n', ['2.14.1+cu126', list(LEGACY_ARCHES)])
    assert r.returncode == 0 and pips == [] and 'nothing to install' in r.stdout, r.stderr


def test_no_gpu_does_nothing(guard_cells, fakes):
    r, pips = fakes(guard_cells, '', ['2.14.1+cu130', CU130], gpu=False)
    assert r.returncode == 0, r.stderr
    assert 'running on: no GPU (CPU only)' in r.stdout and 'cuda_guard: no GPU, nothing to install' in r.stdout and pips == []


def test_a_card_no_build_covers_stops_the_kernel(guard_cells, fakes):
    r, pips = fakes(guard_cells, '12.0\\n', ['2.1.0', ['sm_75', 'sm_80']])
    assert r.returncode != 0 and pips == [] and '--machine T4' in r.stderr


# ---- the real pip on fake wheels ----

def wheel(dest, name, version, requires=(), module_src=None):
    "A tiny wheel with the real distribution name, version and Requires-Dist."
    mod, dist = name.replace('-', '_'), f"{name.replace('-', '_')}-{version}"
    files = {f'{mod}/__init__.py': module_src or f'__version__ = {version!r}\n',
             f'{dist}.dist-info/METADATA': f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n'
                                           + ''.join(f'Requires-Dist: {r}\n' for r in requires),
             f'{dist}.dist-info/WHEEL': 'Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n'}
    rec = [f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(c.encode()).digest()).rstrip(b'=').decode()},{len(c.encode())}"
           for p, c in files.items()]
    files[f'{dist}.dist-info/RECORD'] = '\n'.join(rec + [f'{dist}.dist-info/RECORD,,']) + '\n'
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest / f'{dist}-py3-none-any.whl', 'w') as zf:
        for p, c in files.items(): zf.writestr(p, c)


def simple_index(folder):
    "PEP 503 pages for a folder of wheels: what --index-url reads."
    by = {}
    for w in sorted(folder.glob('*.whl')): by.setdefault(w.name.split('-')[0].replace('_', '-').lower(), []).append(w.name)
    for proj, names in by.items():
        (folder / proj).mkdir()
        (folder / proj / 'index.html').write_text(''.join(f'<a href="../{n}">{n}</a>\n' for n in names))
    (folder / 'index.html').write_text(''.join(f'<a href="{p}/">{p}</a>\n' for p in by))


def test_the_real_pip_swaps_cu130_for_cu126_and_leaves_nothing_half_swapped(guard_cells, tmp_path):
    image, index = tmp_path / 'image', tmp_path / 'cu126'
    torch_src = lambda v: FAKE_TORCH.format(version=v, legacy=list(LEGACY_ARCHES), cu130=CU130)
    wheel(image, 'numpy', '1.26.4'); wheel(image, 'nvidia-cudnn-cu13', '9.24.0.43')
    wheel(image, 'torch', '2.14.1+cu130', ['nvidia-cudnn-cu13==9.24.0.43', 'numpy'], torch_src('2.14.1+cu130'))
    wheel(image, 'torchvision', '0.29.1+cu130', ['torch==2.14.1', 'numpy'])
    wheel(image, 'torchaudio', '2.14.1+cu130', ['torch==2.14.1']); wheel(image, 'torchcodec', '0.10.0')
    wheel(index, 'numpy', '2.3.0'); wheel(index, 'nvidia-cudnn-cu12', '9.10.2.21')   # the torch index serves a newer numpy
    wheel(index, 'torch', '2.14.1+cu126', ['nvidia-cudnn-cu12==9.10.2.21', 'numpy'], torch_src('2.14.1+cu126'))
    wheel(index, 'torchvision', '0.29.1+cu126', ['torch==2.14.1', 'numpy'])
    simple_index(index)

    venv = tmp_path / 'venv'                      # Kaggle's image in miniature: pip from here, nothing else
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    py = venv / 'bin' / 'python'
    site = Path(subprocess.run([str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                               capture_output=True, text=True, check=True).stdout.strip())
    (tmp_path / 'pip_only').mkdir()
    (tmp_path / 'pip_only' / 'pip').symlink_to(Path(sysconfig.get_paths()['purelib']) / 'pip')
    (site / 'pip_only.pth').write_text(f"{tmp_path / 'pip_only'}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(('PIP_', 'PYTHON', 'VIRTUAL_ENV'))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK='1', PIP_NO_INPUT='1')
    subprocess.run([str(py), '-m', 'pip', 'install', '-q', '--no-index', '--find-links', str(image), 'numpy==1.26.4', 'torch',
                    'torchvision', 'torchaudio', 'torchcodec'], env=env, check=True)
    bin_ = tmp_path / 'bin'; fake_smi(bin_)
    env.update(PATH=f"{bin_}{os.pathsep}{os.environ['PATH']}", FAKE_CAPS='6.0\\n', FAKE_NAMES='Tesla P100-PCIE-16GB\\n')
    cell = guard_cells.replace(LEGACY_INDEX, (index.as_uri()))        # the cu126 index, here a local folder
    r = subprocess.run([str(py), '-c', cell], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert 'torch 2.14.1+cu126 installed' in r.stdout and 'removing torchaudio 2.14.1+cu130' in r.stdout
    freeze = subprocess.run([str(py), '-m', 'pip', 'list', '--format=freeze'], capture_output=True, text=True, env=env).stdout.split()
    assert {'torch==2.14.1+cu126', 'torchvision==0.29.1+cu126', 'nvidia-cudnn-cu12==9.10.2.21', 'numpy==1.26.4'} <= set(freeze), freeze
    assert not [f for f in freeze if f.startswith(('torchaudio', 'torchcodec'))], freeze
    check = subprocess.run([str(py), '-m', 'pip', 'check'], capture_output=True, text=True, env=env)
    assert check.returncode == 0, check.stdout
    again = subprocess.run([str(py), '-c', cell], capture_output=True, text=True, env=env, timeout=300)   # a re-run: nothing to do
    assert again.returncode == 0 and 'torch can run these GPUs, nothing to install' in again.stdout, again.stderr

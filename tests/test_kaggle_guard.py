"""The kernel's first cell as Kaggle runs it: in a fresh interpreter, before blindsr or torch exist. A stand-in
`nvidia-smi` reports the GPU, a stand-in `torch` package reports its arch list, and a stand-in `pip` records what
it was asked to install (and then makes `torch` report the legacy build's arch list), so every branch runs with no
GPU and no network."""
import json
import os
import subprocess
import sys

import pytest

from blindsr.cuda_guard import LEGACY_ARCHES, LEGACY_INDEX, LEGACY_TORCH
from blindsr.kaggle import CODE_FILE, KERNEL_DIR

CU128 = ['sm_75', 'sm_80', 'sm_86', 'sm_90', 'sm_100', 'sm_120']


@pytest.fixture(scope='module')
def first_cell(root):
    nb = json.loads((root / KERNEL_DIR / CODE_FILE).read_text())
    return next(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code')


@pytest.fixture
def fakes(tmp_path):
    "bin/nvidia-smi, site/torch and site/pip stand-ins; returns a function running the cell with them."
    bin_, site = tmp_path / 'bin', tmp_path / 'site'
    (site / 'torch').mkdir(parents=True); (site / 'pip').mkdir(); bin_.mkdir()
    (bin_ / 'nvidia-smi').write_text('#!/bin/sh\n[ "$1" = "--query-gpu=compute_cap" ] && printf "$FAKE_CAPS"\n')
    (bin_ / 'nvidia-smi').chmod(0o755)
    (site / 'torch' / '__init__.py').write_text(
        'import json, os\n__version__ = "2.14.1+fake"\n'
        'class cuda:\n    get_arch_list = staticmethod(lambda: json.load(open(os.environ["FAKE_ARCH_FILE"])))\n')
    (site / 'pip' / '__init__.py').write_text('')
    (site / 'pip' / '__main__.py').write_text(
        'import json, os, sys\n'
        'open(os.environ["FAKE_PIP_LOG"], "a").write(json.dumps(sys.argv[1:]) + "\\n")\n'
        f'json.dump({list(LEGACY_ARCHES)!r}, open(os.environ["FAKE_ARCH_FILE"], "w"))\n')

    def run(cell, caps, arch, gpu=True):
        (tmp_path / 'arch.json').write_text(json.dumps(arch))
        log = tmp_path / 'pip.log'
        if log.exists(): log.unlink()
        env = {**os.environ, 'PATH': str(bin_ if gpu else tmp_path / 'empty'), 'PYTHONPATH': str(site),
               'FAKE_CAPS': caps, 'FAKE_ARCH_FILE': str(tmp_path / 'arch.json'), 'FAKE_PIP_LOG': str(log)}
        code = cell + '\nimport sys\nprint("torch imported by the cell:", "torch" in sys.modules)\n'
        r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=120)
        pips = [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []
        return r, pips
    return run


def test_sm60_p100_under_cu128_installs_the_legacy_build_first(first_cell, fakes):
    r, pips = fakes(first_cell, '6.0\\n', CU128)
    assert r.returncode == 0, r.stderr
    assert pips == [['install', '-q', *LEGACY_TORCH.split(), '--index-url', LEGACY_INDEX]]
    assert pips[0][2:5] == ['torch==2.14.1', 'torchvision==0.29.1', '--index-url']
    assert 'installing the last torch with sm_60 kernels' in r.stdout and 'installed, carrying sm_50, sm_60' in r.stdout
    assert 'torch imported by the cell: False' in r.stdout


@pytest.mark.parametrize('caps', ['7.5\\n7.5\\n', '8.0\\n', '9.0\\n'])   # T4 x2, A100, H100
def test_sm75_sm80_sm90_under_cu128_need_nothing(first_cell, fakes, caps):
    r, pips = fakes(first_cell, caps, CU128)
    assert r.returncode == 0, r.stderr
    assert pips == [] and 'nothing to install' in r.stdout and 'torch imported by the cell: False' in r.stdout


def test_sm60_under_the_legacy_build_needs_nothing(first_cell, fakes):
    r, pips = fakes(first_cell, '6.0\\n', list(LEGACY_ARCHES))
    assert r.returncode == 0 and pips == [] and 'nothing to install' in r.stdout, r.stderr


def test_no_gpu_does_nothing(first_cell, fakes):
    r, pips = fakes(first_cell, '', CU128, gpu=False)
    assert r.returncode == 0, r.stderr
    assert 'cuda_guard: no GPU, nothing to install' in r.stdout and pips == []


def test_a_card_no_build_covers_stops_the_kernel(first_cell, fakes):
    r, pips = fakes(first_cell, '12.0\\n', ['sm_75', 'sm_80'])
    assert r.returncode != 0 and pips == [] and '--machine T4' in r.stderr

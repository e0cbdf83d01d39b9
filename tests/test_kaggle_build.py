"""The committed Kaggle kernel: valid metadata, a valid notebook, and exactly what `blindsr_kaggle build` makes from
nbs/ now (rebuilt from kaggle_kernel/build.json and compared byte for byte)."""
import json
import os
import re
import subprocess
import sys

import pytest

from blindsr.kaggle import (BUILD_FILE, CODE_FILE, KERNEL_DIR, METADATA_FILE, MACHINES, KernelSpec, build_files,
                            check_metadata, kaggle_cli, load_spec, write_kernel)

ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}
REF = re.compile(r'[A-Za-z0-9][A-Za-z0-9_-]*/[a-z0-9][a-z0-9_-]+$')


@pytest.fixture(scope='module')
def kdir(root):
    return root / KERNEL_DIR


def test_metadata_has_every_required_field_with_valid_values(kdir):
    meta = json.loads((kdir / METADATA_FILE).read_text())
    assert REF.match(meta['id']), meta['id']
    assert re.sub(r'[^a-z0-9]+', '-', meta['title'].lower()).strip('-') == meta['id'].split('/')[1]
    assert meta['code_file'] == CODE_FILE and (kdir / meta['code_file']).is_file()
    assert meta['language'] == 'python' and meta['kernel_type'] == 'notebook'
    assert meta['is_private'] is True and meta['enable_gpu'] is True and meta['enable_internet'] is True
    assert meta['machine_shape'] in ('NvidiaTeslaP100', 'NvidiaTeslaT4')
    assert meta['dataset_sources'] and all(REF.match(d) for d in meta['dataset_sources'])
    assert isinstance(meta['kernel_sources'], list) and all(REF.match(k) for k in meta['kernel_sources'])
    assert check_metadata(meta, kdir) == []


def test_code_file_is_a_valid_notebook_whose_first_cell_imports_no_torch(kdir):
    nbformat = pytest.importorskip('nbformat')
    nb = nbformat.read(kdir / CODE_FILE, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == 'code']
    first = code[0].source
    assert 'def ensure_torch(' in first and 'ensure_torch()' in first
    assert not re.search(r'^\s*(import|from)\s+torch\b', first, re.M)
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert sum(c.source.startswith('# Parameters') for c in code) == 1


def test_committed_kernel_equals_a_fresh_build(kdir, root):
    "If this fails: run `blindsr_kaggle build` (it reuses kaggle_kernel/build.json) and commit kaggle_kernel/."
    spec = load_spec(kdir)
    for name, text in build_files(spec, root).items():
        assert (kdir / name).read_text(encoding='utf-8') == text, \
            f'{KERNEL_DIR}/{name} differs from a fresh build of nbs/: run blindsr_kaggle build and commit it'


def test_build_is_deterministic_and_takes_every_argument(tmp_path, root):
    spec = KernelSpec('alice', 'ai6126-faces', val_datasets=['bob/ffhq-val'], machine='T4', hours=10.25,
                      generator='rcan_lite', generator_kwargs={'num_feat': 48}, previous='alice/blindsr-train')
    a, b = write_kernel(spec, tmp_path / 'a', root), write_kernel(spec, tmp_path / 'b', root)
    for pa, pb in zip(a, b): assert pa.read_bytes() == pb.read_bytes()
    meta = json.loads((tmp_path / 'a' / METADATA_FILE).read_text())
    assert meta['machine_shape'] == MACHINES['T4'] == 'NvidiaTeslaT4'
    assert meta['dataset_sources'] == ['alice/ai6126-faces', 'bob/ffhq-val']
    assert meta['kernel_sources'] == ['alice/blindsr-train']
    nb = (tmp_path / 'a' / CODE_FILE).read_text()
    for frag in ('HOURS = 10.25', "GENERATOR = 'rcan_lite'", "GENERATOR_KWARGS = {'num_feat': 48}", "PREVIOUS = 'alice/blindsr-train'"):
        assert frag in nb, frag
    assert load_spec(tmp_path / 'a') == spec


def test_build_command_reuses_build_json_and_checks(tmp_path, root, capsys):
    k = tmp_path / 'k'
    assert kaggle_cli(['build', '--dir', str(k), '--user', 'alice', '--dataset', 'ai6126-faces', '--machine', 't4']) == 0
    assert json.loads((k / METADATA_FILE).read_text())['machine_shape'] == 'NvidiaTeslaT4'
    assert kaggle_cli(['build', '--dir', str(k), '--hours', '9']) == 0             # the rest from build.json
    spec = load_spec(k)
    assert (spec.user, spec.dataset, spec.machine, spec.hours) == ('alice', 'alice/ai6126-faces', 'T4', 9.0)
    assert kaggle_cli(['build', '--dir', str(k), '--check']) == 0
    (k / CODE_FILE).write_text((k / CODE_FILE).read_text().replace('HOURS = 9.0', 'HOURS = 1.0'))
    assert kaggle_cli(['build', '--dir', str(k), '--check']) == 1
    assert 'differ from a fresh build' in capsys.readouterr().err


@pytest.mark.parametrize('args, msg', [
    (['--user', 'alice'], 'give --user'),
    (['--user', 'alice', '--dataset', 'bob/faces', '--hours', '12'], '12 h'),
    (['--user', 'alice', '--dataset', 'Bad Name'], 'OWNER/SLUG'),
    (['--user', 'alice', '--dataset', 'faces', '--generator', 'resnet9000'], 'unknown generator'),
])
def test_build_errors_say_what_to_fix(tmp_path, args, msg):
    r = subprocess.run(['blindsr_kaggle', 'build', '--dir', str(tmp_path / 'k'), *args], capture_output=True, text=True, env=ENV)
    assert r.returncode == 2 and msg in r.stderr, r.stderr
    assert not (tmp_path / 'k' / METADATA_FILE).exists()

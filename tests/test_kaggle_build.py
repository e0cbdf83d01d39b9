"""The committed Kaggle kernel: valid metadata, a valid notebook carrying a wheel of this checkout, and exactly what
`blindsr_kaggle build` makes from nbs/ and blindsr/ now (rebuilt from kaggle_kernel/build.json with the provenance it
records, and compared: every cell byte for byte, the packed wheel by its files). And the build's refusals, each naming
the rule."""
import json
import os
import re
import subprocess
import sys

import pytest

from blindsr.kaggle_build import (BUILD_FILE, CODE_FILE, KERNEL_DIR, METADATA_FILE, MACHINES, KernelSpec, build_files,
                                  check_metadata, git_provenance, kernel_stale_files, load_spec, package_files, packed_wheel,
                                  recorded_provenance, wheel_files, write_files)
from blindsr.kaggle_client import kaggle_cli

ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}
SLUG = re.compile(r'[a-z0-9]+(?:-[a-z0-9]+)*$')


@pytest.fixture(scope='module')
def kdir(root):
    return root / KERNEL_DIR


def test_metadata_has_every_required_field_with_valid_values(kdir):
    meta = json.loads((kdir / METADATA_FILE).read_text())
    user, slug = meta['id'].split('/')
    assert SLUG.match(slug) and 5 <= len(slug) <= 50, meta['id']
    assert re.sub(r'[^a-z0-9]+', '-', meta['title'].lower()).strip('-') == slug
    assert meta['code_file'] == CODE_FILE and (kdir / meta['code_file']).is_file()
    assert meta['language'] == 'python' and meta['kernel_type'] == 'notebook'
    assert meta['is_private'] is True and meta['enable_gpu'] is True and meta['enable_internet'] is True
    assert meta['machine_shape'] in ('NvidiaTeslaP100', 'NvidiaTeslaT4')
    assert meta['docker_image_pinning_type'] == 'original'
    assert meta['dataset_sources'] and all(SLUG.match(d.split('/')[1]) for d in meta['dataset_sources'])
    assert isinstance(meta['kernel_sources'], list)
    assert check_metadata(meta, kdir) == []


def test_code_file_is_a_valid_notebook_that_imports_no_torch_before_the_guard(kdir):
    nbformat = pytest.importorskip('nbformat')
    nb = nbformat.read(kdir / CODE_FILE, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == 'code']
    assert code[0].source.startswith('# Parameters') and 'MACHINE_ASKED' in code[0].source
    guard = code[1].source
    assert 'def ensure_torch(' in guard and 'ensure_torch()' in guard and 'MACHINE = machine_description()' in guard
    assert guard.index('print(MACHINE_NOTE)') < guard.index('def ensure_torch(')     # the first output says what runs
    for src in (code[0].source, guard):
        assert not re.search(r'^\s*(import|from)\s+torch\b', src, re.M)
    assert code[2].metadata == {'cellView': 'form', 'jupyter': {'source_hidden': True}}
    assert 'def install_blindsr(' in code[3].source
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert sum(c.source.startswith('# Parameters') for c in code) == 1


def test_committed_kernel_equals_a_fresh_build(kdir, root):
    "If this fails: run `blindsr_kaggle build` (it reuses kaggle_kernel/build.json) and commit kaggle_kernel/."
    assert kernel_stale_files(kdir, root) == [], \
        f'{KERNEL_DIR}/ differs from a fresh build of nbs/ and blindsr/: run blindsr_kaggle build and commit it'
    spec, prov = load_spec(kdir), recorded_provenance(json.loads((kdir / CODE_FILE).read_text()))
    for name in (METADATA_FILE, BUILD_FILE):
        assert (kdir / name).read_text() == build_files(spec, root, prov)[name]


def test_the_packed_wheel_is_this_checkout(kdir, root):
    name, data = packed_wheel(json.loads((kdir / CODE_FILE).read_text()))
    files = wheel_files(data)
    assert {k: v for k, v in files.items() if k.startswith('blindsr/') and not k.endswith('build_info.json')} == package_files(root)
    assert not any('weights/' in k for k in files)
    info = json.loads(files['blindsr/build_info.json'])
    assert name == f"blindsr-{info['version']}-py3-none-any.whl" and re.fullmatch(r'[0-9a-f]{40}|unknown', info['commit'])


def test_build_is_deterministic_and_takes_every_argument(tmp_path, root):
    spec = KernelSpec('alice', 'ai6126-faces/2', val_datasets=['bob/ffhq-val'], machine='T4', hours=10.25,
                      generator='rcan_lite', generator_kwargs={'num_feat': 48}, previous='alice/blindsr-train',
                      slug='face-sr-run', title='Face SR: run')
    prov = git_provenance(root)
    a, b = write_files(build_files(spec, root, prov), tmp_path / 'a'), write_files(build_files(spec, root, prov), tmp_path / 'b')
    for pa, pb in zip(a, b): assert pa.read_bytes() == pb.read_bytes()
    meta = json.loads((tmp_path / 'a' / METADATA_FILE).read_text())
    assert meta['machine_shape'] == MACHINES['T4'] == 'NvidiaTeslaT4'
    assert meta['dataset_sources'] == ['alice/ai6126-faces/2', 'bob/ffhq-val']
    assert meta['kernel_sources'] == ['alice/blindsr-train'] and (meta['id'], meta['title']) == ('alice/face-sr-run', 'Face SR: run')
    nb = (tmp_path / 'a' / CODE_FILE).read_text()
    for frag in ('HOURS = 10.25', "GENERATOR = 'rcan_lite'", "GENERATOR_KWARGS = {'num_feat': 48}", "PREVIOUS = 'alice/blindsr-train'",
                 "MACHINE_ASKED = 'T4'"):
        assert frag in nb, frag
    assert load_spec(tmp_path / 'a') == spec and check_metadata(meta, tmp_path / 'a') == []


def test_build_command_reuses_build_json_and_checks(tmp_path, root, capsys):
    k = tmp_path / 'k'
    assert kaggle_cli(['build', '--dir', str(k), '--user', 'alice', '--dataset', 'ai6126-faces', '--machine', 't4']) == 0
    out = capsys.readouterr().out
    assert json.loads((k / METADATA_FILE).read_text())['machine_shape'] == 'NvidiaTeslaT4'
    assert 'note: Asked for NvidiaTeslaT4' in out and 'carries blindsr-0.1.0+' in out
    assert kaggle_cli(['build', '--dir', str(k), '--hours', '9', '--machine', 'P100']) == 0     # the rest from build.json
    assert 'runs P100 requests on T4 x2' in capsys.readouterr().out                          # said on every build
    spec = load_spec(k)
    assert (spec.user, spec.dataset, spec.machine, spec.hours) == ('alice', 'alice/ai6126-faces', 'P100', 9.0)
    assert kaggle_cli(['build', '--dir', str(k), '--slug', 'blindsr-long-run']) == 0        # the title follows the slug
    assert load_spec(k).title == 'blindsr long run'
    assert kaggle_cli(['build', '--dir', str(k), '--check']) == 0
    (k / CODE_FILE).write_text((k / CODE_FILE).read_text().replace('HOURS = 9.0', 'HOURS = 1.0'))
    assert kaggle_cli(['build', '--dir', str(k), '--check']) == 1
    assert 'differ from a fresh build' in capsys.readouterr().err


@pytest.mark.parametrize('args, msg', [
    (['--user', 'alice'], 'give --user'),
    (['--user', 'alice', '--dataset', 'bob/faces', '--hours', '12'], '12 h'),
    (['--user', 'alice', '--dataset', 'bob/faces', '--hours', '0.0001'], 'at least 0.50 h'),
    (['--user', 'alice', '--dataset', 'bob/faces', '--hours', '0.4'], 'at least 0.50 h (for a 15-minute real trial of the whole path: --trial)'),
    (['--user', 'alice', '--dataset', 'Bad Name'], 'not a valid Kaggle slug'),
    (['--user', 'alice', '--dataset', 'bob/faces/latest'], 'OWNER/SLUG/N'),
    (['--user', 'alice', '--dataset', 'faces', '--generator', 'resnet9000'], 'unknown generator'),
    (['--user', 'alice', '--dataset', 'faces', '--slug', 'blindsr_train'], 'no "_"'),
    (['--user', 'alice', '--dataset', 'faces', '--slug', 'blindsr--train'], 'no "--"'),
    (['--user', 'alice', '--dataset', 'faces', '--slug', 'run1'], '5-50'),
    (['--user', 'alice', '--dataset', 'faces', '--title', 'My blindsr run'], "gives the slug 'my-blindsr-run', not 'blindsr-train'"),
])
def test_build_errors_say_what_to_fix(tmp_path, args, msg):
    r = subprocess.run(['blindsr_kaggle', 'build', '--dir', str(tmp_path / 'k'), *args], capture_output=True, text=True, env=ENV)
    assert r.returncode == 2 and msg in r.stderr, r.stderr
    assert not (tmp_path / 'k' / METADATA_FILE).exists()


def test_the_kaggle_command_starts_without_torch():
    "blindsr_kaggle build / push --dry-run / status import no torch (a second's start, not several)."
    r = subprocess.run([sys.executable, '-c', 'import sys, blindsr.kaggle_client; print("torch" in sys.modules)'],
                       capture_output=True, text=True, check=True)
    assert r.stdout.strip() == 'False'


def test_trial_sessions_and_continue_through_the_command(tmp_path, capsys):
    "--trial: a 15-minute kernel; --sessions: the plan's length; --continue: the next version, from the partner slug and back."
    k = tmp_path / 'k'
    assert kaggle_cli(['build', '--dir', str(k), '--user', 'alice', '--dataset', 'ai6126-faces', '--trial']) == 0
    spec = load_spec(k)
    assert (spec.trial, spec.hours) == (True, 0.25) and 'TRIAL = True' in (k / CODE_FILE).read_text()
    assert 'a TRIAL run' in capsys.readouterr().out
    assert kaggle_cli(['build', '--dir', str(k), '--no-trial', '--sessions', '3']) == 0       # back to 11 h, in 3 sessions
    spec = load_spec(k)
    assert (spec.trial, spec.hours, spec.sessions, spec.previous) == (False, 11.0, 3, None)
    assert kaggle_cli(['build', '--dir', str(k), '--continue']) == 0
    out = capsys.readouterr().out
    assert 'continuing alice/blindsr-train from a second kernel, alice/blindsr-train-2' in out
    meta = json.loads((k / METADATA_FILE).read_text())
    assert (meta['id'], meta['title'], meta['kernel_sources']) == ('alice/blindsr-train-2', 'blindsr train 2', ['alice/blindsr-train'])
    assert "SESSIONS = 3" in (k / CODE_FILE).read_text()
    assert kaggle_cli(['build', '--dir', str(k), '--continue']) == 0                          # version 3: back to the first slug
    meta = json.loads((k / METADATA_FILE).read_text())
    assert (meta['id'], meta['kernel_sources']) == ('alice/blindsr-train', ['alice/blindsr-train-2'])
    assert kaggle_cli(['build', '--dir', str(k), '--previous', 'alice/blindsr-train']) == 0   # naming itself: the same switch
    assert json.loads((k / METADATA_FILE).read_text())['id'] == 'alice/blindsr-train-2'


def test_a_users_build_goes_to_a_git_ignored_folder_and_git_status_stays_clean(tmp_path, root):
    "In a clone: build for a user, then push --dry-run, with no --dir: runs/kaggle_kernel, never the committed kaggle_kernel/."
    clone = tmp_path / 'clone'
    subprocess.run(['git', 'clone', '-q', str(root), str(clone)], check=True)
    for argv in (['build', '--user', 'zoe-example', '--dataset', 'ai6126-faces', '--trial'], ['push', '--dry-run']):
        r = subprocess.run(['blindsr_kaggle', *argv], capture_output=True, text=True, env=ENV, cwd=clone)
        assert r.returncode == 0, r.stderr
    assert 'would run: kaggle kernels push -p runs/kaggle_kernel' in r.stdout
    assert json.loads((clone / 'runs' / 'kaggle_kernel' / METADATA_FILE).read_text())['id'] == 'zoe-example/blindsr-train'
    assert subprocess.run(['git', 'status', '--porcelain'], capture_output=True, text=True, cwd=clone, check=True).stdout == ''

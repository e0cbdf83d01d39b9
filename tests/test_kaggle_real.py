"""blindsr_kaggle against the real `kaggle` 2.2.5 package, offline: the `kaggle` on PATH is the real CLI
(kaggle.cli.main, its own argument parser and its own validation in kernels_push) with only the HTTP client stubbed
(tests/kaggle_offline.py). So the built metadata passes the CLI's own checks, the command lines blindsr_kaggle runs
parse, and what the CLI prints is what blindsr_kaggle reads. Also: the credential check agrees with how the real
package authenticates. Skipped when kaggle is not installed (it is in the dev extra, so CI runs these)."""
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

if importlib.util.find_spec('kaggle') is None or importlib.util.find_spec('six') is None:
    pytest.skip('the kaggle CLI is not installed: pip install -e ".[dev]" (kaggle==2.2.5 and six)', allow_module_level=True)

from blindsr.kaggle_build import KERNEL_DIR, METADATA_FILE, slugify
from blindsr.kaggle_client import kaggle_cli, kaggle_credential_sources

OFFLINE = Path(__file__).resolve().parent / 'kaggle_offline.py'


@pytest.fixture
def real_kaggle(tmp_path, monkeypatch):
    "`kaggle` on PATH = the real CLI, offline; dummy credentials for blindsr's presence check; a log of the requests."
    bin_ = tmp_path / 'bin'; bin_.mkdir()
    (bin_ / 'kaggle').write_text(f'#!/bin/sh\nexec {sys.executable} {OFFLINE} "$@"\n'); (bin_ / 'kaggle').chmod(0o755)
    for k in [k for k in os.environ if k.startswith('KAGGLE_')]: monkeypatch.delenv(k)
    monkeypatch.setenv('PATH', f"{bin_}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    monkeypatch.setenv('KAGGLE_USERNAME', 'zoe-example'); monkeypatch.setenv('KAGGLE_KEY', 'dummy')
    log = tmp_path / 'requests.log'
    monkeypatch.setenv('FAKE_KAGGLE_LOG', str(log))
    return lambda: [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []


def build(tmp_path, *args):
    kdir = tmp_path / 'kernel'
    assert kaggle_cli(['build', '--dir', str(kdir), '--user', 'zoe-example', *args]) == 0
    return kdir


@pytest.fixture(scope='module')
def kernel(tmp_path_factory):
    "One kernel built for a made-up user, for the tests that only read it."
    return build(tmp_path_factory.mktemp('kernel'), '--dataset', 'faces')


def test_the_real_cli_runs_and_accepts_the_built_kernel(real_kaggle, tmp_path, capsys):
    kdir = build(tmp_path, '--dataset', 'zoe-example/ai6126-faces/3', '--val-dataset', 'bob/ffhq-val', '--previous', 'blindsr-train-v1')
    assert kaggle_cli(['push', '--dry-run', '--dir', str(kdir)]) == 0
    out = capsys.readouterr().out
    assert 'ok       kaggle CLI 2.2.5 runs' in out and real_kaggle() == []          # --version ran; nothing sent
    assert kaggle_cli(['push', '--dir', str(kdir)]) == 0
    out = capsys.readouterr().out
    assert 'Kernel version 3 successfully pushed' in out
    assert 'does not resolve' not in out                     # kernels_push's own title/slug check: no warning
    (call,) = [c for c in real_kaggle() if c['method'] == 'SaveKernel']   # after asking whether the datasets are ready
    req, meta = call['request'], json.loads((kdir / METADATA_FILE).read_text())
    assert {c['method'] for c in real_kaggle()} == {'SaveKernel', 'GetDatasetStatus', 'GetDataset'}
    assert (req['slug'], req['newTitle'], req['language'], req['kernelType']) == (meta['id'], meta['title'], 'python', 'notebook')
    assert req['datasetDataSources'] == ['zoe-example/ai6126-faces/3', 'bob/ffhq-val']
    assert req['kernelDataSources'] == ['zoe-example/blindsr-train-v1']
    assert (req['machineShape'], req['dockerImagePinningType']) == ('NvidiaTeslaP100', 'original')
    assert req['isPrivate'] is True and req['enableGpu'] is True and req['enableInternet'] is True
    sent = json.loads(req['text'])                           # the notebook, as parsed and sent by the CLI
    code = [''.join(c['source']) for c in sent['cells'] if c['cell_type'] == 'code']
    assert 'def ensure_torch(' in code[1] and 'WHEEL = {' in code[2]


def test_the_committed_kernel_passes_the_real_push_checks(real_kaggle, root, tmp_path):
    r = subprocess.run([sys.executable, str(OFFLINE), 'kernels', 'push', '-p', str(root / KERNEL_DIR)], capture_output=True,
                       text=True, env=os.environ)
    assert r.returncode == 0 and 'successfully pushed' in r.stdout and 'does not resolve' not in r.stdout, r.stdout + r.stderr


def test_what_the_build_refuses_the_real_cli_only_warns_about(real_kaggle, tmp_path):
    "The CLI sends slugs with '_' or a title that does not give the slug, with a warning; blindsr's build refuses them."
    kdir = build(tmp_path, '--dataset', 'faces')
    meta = json.loads((kdir / METADATA_FILE).read_text())
    for bad in ({'id': 'zoe-example/blindsr_train'}, {'title': 'My blindsr run'}):
        (kdir / METADATA_FILE).write_text(json.dumps({**meta, **bad}))
        r = subprocess.run([sys.executable, str(OFFLINE), 'kernels', 'push', '-p', str(kdir)], capture_output=True, text=True,
                           env=os.environ)
        assert 'Your kernel title does not resolve to the specified id' in r.stdout, r.stdout + r.stderr
        assert kaggle_cli(['push', '--dry-run', '--dir', str(kdir)]) == 1


@pytest.mark.parametrize('title', ['blindsr train', 'Blind SR: v2!', 'Café au lait v2', 'Ünïcödé 100%', 'a  b -- c_d'])
def test_slugify_is_the_clis(title):
    from slugify import slugify as kaggle_slugify       # python-slugify: what kernels_push compares titles with
    assert slugify(title) == kaggle_slugify(title)


@pytest.mark.parametrize('status, rc, word', [('COMPLETE', 0, 'complete'), ('NEW_SCRIPT', 3, 'queued'), ('ERROR', 1, 'error')])
def test_status_reads_what_the_real_cli_prints(real_kaggle, kernel, monkeypatch, capsys, status, rc, word):
    kdir = kernel
    monkeypatch.setenv('FAKE_STATUS', status)
    if status == 'ERROR': monkeypatch.setenv('FAKE_FAILURE', 'Your notebook tried to allocate more memory than is available.')
    assert kaggle_cli(['status', '--dir', str(kdir)]) == rc
    out = capsys.readouterr().out
    assert f'zoe-example/blindsr-train: {word}' in out
    if status == 'ERROR': assert 'Failure message: "Your notebook tried to allocate more memory' in out
    (call,) = real_kaggle()
    assert call['method'] == 'GetKernelSessionStatus' and call['request'] == {'userName': 'zoe-example', 'kernelSlug': 'blindsr-train'}


def test_output_downloads_through_the_real_cli_and_checks_the_submission(real_kaggle, kernel, tmp_path, monkeypatch, capsys):
    kdir = kernel
    src = tmp_path / 'kaggle_side'; src.mkdir()
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(src / 'submission.zip', 'w') as zf:
        for i in range(2):
            buf = BytesIO(); Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)).save(buf, 'PNG')
            zf.writestr(f'results/{i:05d}.png', buf.getvalue())
    (src / 'kaggle_summary.json').write_text(json.dumps({'val_psnr': 26.1, 'bicubic_psnr': 24.0, 'kernel_minutes': 655.0,
                                                         'machine': '2 x Tesla T4 (sm_75)', 'blindsr': {'version': '0.1.0+gabc1234'}}))
    monkeypatch.setenv('FAKE_OUTPUT_DIR', str(src))
    dest = tmp_path / 'got'
    for _ in range(2):                                        # a second fetch (after a continued version) replaces the files
        assert kaggle_cli(['output', '--dir', str(kdir), '-p', str(dest)]) == 0
        out = capsys.readouterr().out
        assert 'a valid submission of 2 images' in out and 'on 2 x Tesla T4 (sm_75), blindsr 0.1.0+gabc1234' in out
        assert (dest / 'submission.zip').read_bytes() == (src / 'submission.zip').read_bytes()
    assert [c['method'] for c in real_kaggle()] == ['ListKernelSessionOutput'] * 2


# ---- credentials: blindsr's presence check against the real package's authentication ----

KJ = '{"username": "json-user", "key": "dummy"}'
SCENARIOS = {
    'nothing': dict(),
    '~/.kaggle/kaggle.json': dict(files=['home/.kaggle/kaggle.json']),
    '~/.config/kaggle/kaggle.json': dict(files=['home/.config/kaggle/kaggle.json']),
    '~/.config/kaggle/kaggle.json beside an empty ~/.kaggle': dict(files=['home/.config/kaggle/kaggle.json'], dirs=['home/.kaggle']),
    '$XDG_CONFIG_HOME/kaggle/kaggle.json': dict(files=['xdg/kaggle/kaggle.json'], env={'XDG_CONFIG_HOME': '$ROOT/xdg'}),
    'empty $KAGGLE_CONFIG_DIR beside ~/.kaggle/kaggle.json': dict(files=['home/.kaggle/kaggle.json'], dirs=['cfg'],
                                                                  env={'KAGGLE_CONFIG_DIR': '$ROOT/cfg'}),
    'KAGGLE_USERNAME and KAGGLE_KEY': dict(env={'KAGGLE_USERNAME': 'env-user', 'KAGGLE_KEY': 'dummy'}),
    'KAGGLE_USERNAME alone': dict(env={'KAGGLE_USERNAME': 'env-user'}),
    'KAGGLE_API_TOKEN': dict(env={'KAGGLE_API_TOKEN': 'KGAT_dummy'}),
    '~/.kaggle/access_token': dict(files=['home/.kaggle/access_token']),
    '~/.kaggle/access_token.txt': dict(files=['home/.kaggle/access_token.txt']),
    'access_token in $KAGGLE_CONFIG_DIR': dict(files=['cfg/access_token'], env={'KAGGLE_CONFIG_DIR': '$ROOT/cfg'}),
    '~/.config/kaggle/access_token': dict(files=['home/.config/kaggle/access_token']),
    'inside a Kaggle notebook': dict(files=['run/tok'], env={'KAGGLE_KERNEL_RUN_TYPE': 'Batch', 'KAGGLE_DATA_PROXY_URL': 'x',
                                                            'KAGGLE_API_V1_TOKEN': '$ROOT/run/tok'}),
}


def scenario_env(root: Path, files=(), dirs=(), env=None) -> dict:
    (root / 'home').mkdir(parents=True)
    for d in dirs: (root / d).mkdir(parents=True, exist_ok=True)
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text(KJ if f.endswith('kaggle.json') else 'KGAT_dummy'); (root / f).chmod(0o600)
    e = {'PATH': os.environ['PATH'], 'HOME': str(root / 'home')}
    e.update({k: v.replace('$ROOT', str(root)) for k, v in (env or {}).items()})
    return e


def test_credentials_are_found_exactly_where_kaggle_authenticates(tmp_path):
    envs = {name: scenario_env(tmp_path / f's{i}', **kw) for i, (name, kw) in enumerate(SCENARIOS.items())}
    def real(env): return json.loads(subprocess.run([sys.executable, str(OFFLINE), '--auth'], capture_output=True, text=True,
                                                    env=env, timeout=120).stdout.strip().splitlines()[-1])
    with ThreadPoolExecutor(4) as ex: theirs = dict(zip(envs, ex.map(real, envs.values())))
    disagree = {n: (kaggle_credential_sources(e), theirs[n]) for n, e in envs.items() if bool(kaggle_credential_sources(e)) != theirs[n]['auth']}
    assert disagree == {}, disagree
    assert sum(r['auth'] for r in theirs.values()) == 8          # the scenarios where Kaggle does authenticate


# ---- the faces dataset: made from a small data/ tree in a clone, created and versioned through the real CLI ----

def small_clone(root, tmp_path):
    "A git clone stand-in with the project's .gitignore and a small course data/ tree."
    clone = tmp_path / 'clone'
    clone.mkdir()
    subprocess.run(['git', 'init', '-q', str(clone)], check=True)
    (clone / '.gitignore').write_text((root / '.gitignore').read_text())
    subprocess.run(['git', '-C', str(clone), 'add', '-A'], check=True)
    subprocess.run(['git', '-C', str(clone), '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'init'], check=True)
    for sub, n, size in (('train/GT', 3, 64), ('val/GT', 2, 64), ('val/LQ', 2, 16), ('test/LQ', 2, 16)):
        (clone / 'data' / sub).mkdir(parents=True)
        for i in range(n): Image.new('RGB', (size, size)).save(clone / 'data' / sub / f'{i:05d}.png')
    return clone


def test_dataset_is_made_created_and_waited_for_through_the_real_cli(real_kaggle, root, tmp_path, monkeypatch, capsys):
    clone = small_clone(root, tmp_path)
    monkeypatch.chdir(clone)
    monkeypatch.setenv('FAKE_UPLOADS', str(tmp_path / 'uploaded'))
    monkeypatch.setenv('FAKE_DATASET_COUNTER', str(tmp_path / 'counter'))
    # not there yet (our check, then the CLI's own), then Kaggle processes the zip for two polls
    monkeypatch.setenv('FAKE_DATASET_STATUSES', 'MISSING,MISSING,NOT_YET_PERSISTED,BLOBS_RECEIVED,READY')
    argv = ['dataset', '--user', 'zoe-example', '--dir', str(tmp_path / 'kernel'), '--poll-s', '0.01']
    assert kaggle_cli(argv) == 0
    out = capsys.readouterr().out
    folder = clone / 'runs' / 'kaggle_dataset' / 'ai6126-faces'
    meta = json.loads((folder / 'dataset-metadata.json').read_text())
    assert meta['id'] == 'zoe-example/ai6126-faces' and meta['title'] == 'ai6126 faces' and 'INSERT' not in json.dumps(meta)
    with zipfile.ZipFile(folder / 'ai6126-faces.zip') as zf: assert len(zf.namelist()) == 9
    assert 'blobs_received' in out and 'zoe-example/ai6126-faces is ready (version 1)' in out
    assert 'next: blindsr_kaggle build --user zoe-example --dataset zoe-example/ai6126-faces' in out
    methods = [c['method'] for c in real_kaggle()]
    assert 'CreateDataset' in methods and 'CreateDatasetVersion' not in methods
    create = next(c['request'] for c in real_kaggle() if c['method'] == 'CreateDataset')
    assert (create['ownerSlug'], create['slug'], create['title'], create['isPrivate']) == ('zoe-example', 'ai6126-faces', 'ai6126 faces', True)
    assert (tmp_path / 'uploaded' / 'ai6126-faces.zip').read_bytes() == (folder / 'ai6126-faces.zip').read_bytes()
    assert subprocess.run(['git', 'status', '--porcelain'], capture_output=True, text=True, check=True).stdout == ''

    # again, after new faces: a new version, and the wait is for version 2 (version 1 being ready proves nothing)
    Image.new('RGB', (64, 64)).save(clone / 'data' / 'train' / 'GT' / '00003.png')
    (tmp_path / 'counter').unlink()
    monkeypatch.setenv('FAKE_DATASET_STATUSES', 'READY,READY,BLOBS_RECEIVED,READY')
    monkeypatch.setenv('FAKE_DATASET_VERSIONS', '1,1,2,2')
    assert kaggle_cli(argv) == 0
    out = capsys.readouterr().out
    assert 'a new version (the current one is 1) of zoe-example/ai6126-faces' in out and 'is ready (version 2)' in out
    assert [c['method'] for c in real_kaggle()].count('CreateDatasetVersion') == 1
    assert subprocess.run(['git', 'status', '--porcelain'], capture_output=True, text=True, check=True).stdout == ''


def test_push_refuses_before_pushing_while_the_dataset_is_not_ready(real_kaggle, tmp_path, monkeypatch, capsys):
    kdir = build(tmp_path, '--dataset', 'ai6126-faces')
    for statuses, said in (('BLOBS_RECEIVED', "is not ready (Kaggle reports 'blobs_received')"), ('MISSING', 'does not exist')):
        monkeypatch.setenv('FAKE_DATASET_STATUSES', statuses)
        assert kaggle_cli(['push', '--dir', str(kdir)]) == 1
        err = capsys.readouterr().err
        assert f'not pushed: the dataset zoe-example/ai6126-faces {said}' in err, err
    assert 'SaveKernel' not in [c['method'] for c in real_kaggle()]

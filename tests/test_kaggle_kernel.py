"""The built kernel, run as Kaggle runs it: built for a made-up user, then executed top to bottom in a fresh virtual
environment that has torch but not blindsr, with networking unavailable, in smoke mode on the CPU. It installs blindsr
from the wheel it carries (`pip show` then reports the checkout's version and commit); a second session, with the
first one's output attached the way Kaggle attaches it now (/kaggle/input/notebooks/<user>/<slug>/), continues its
checkpoint. Also: the torchrun path for Kaggle's T4 x2."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest

from blindsr.kaggle_build import CODE_FILE, KernelSpec, build_files, git_provenance, packed_wheel, write_files

RUN = '''
from execnb.shell import CaptureShell
CaptureShell().execute({src!r}, {dest!r}, exc_stop=True)
'''
BLOCK_NET = '''import socket
def _blocked(*a, **k): raise OSError('network blocked by the test')
socket.getaddrinfo = socket.create_connection = socket.socket.connect = socket.socket.connect_ex = _blocked
'''


def network_off() -> tuple[list[str], dict]:
    "A command prefix and environment that take the network away: `unshare -rn` (no interfaces), else a sitecustomize."
    if shutil.which('unshare') and subprocess.run(['unshare', '-rn', 'true'], capture_output=True).returncode == 0:
        return ['unshare', '-rn'], {}
    return [], {'BLINDSR_TEST_BLOCK_NET': '1'}


@pytest.fixture(scope='module')
def fresh_venv(tmp_path_factory):
    """A venv whose site-packages reaches this environment's packages through a .pth line pointing at a folder of links
    to each of them, blindsr's excepted (a path added by a .pth line has its own .pth files ignored, so the editable
    blindsr finder is not installed either): torch, numpy, pip, execnb import; blindsr does not."""
    root = tmp_path_factory.mktemp('venv')
    venv = root / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    farm = root / 'site'
    farm.mkdir()
    ours = Path(sysconfig.get_paths()['purelib'])
    for p in ours.iterdir():
        if p.name.lower().startswith(('blindsr', '__editable__')) or p.suffix == '.pth': continue
        (farm / p.name).symlink_to(p)
    py = venv / 'bin' / 'python'
    site = Path(subprocess.run([str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / 'dev_packages.pth').write_text(f'{farm}\n')
    guard = root / 'netguard'
    guard.mkdir()
    (guard / 'sitecustomize.py').write_text('import os\nif os.environ.get("BLINDSR_TEST_BLOCK_NET"):\n' +
                                            ''.join(f'    {l}\n' for l in BLOCK_NET.splitlines()))
    return py, guard


def venv_env(tmp_path, guard, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(('PIP_', 'PYTHON', 'BLINDSR_', 'KAGGLE_', 'VIRTUAL_ENV'))}
    env.pop('IN_TEST', None)
    env.update(PIP_NO_INDEX='1', PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK='1', OMP_NUM_THREADS='1',
               MPLBACKEND='Agg', PYTHONPATH=str(guard), HOME=str(tmp_path / 'home'), **extra)
    return env


def run_kernel(py, guard, nb, tmp_path, working, inputs):
    prefix, net_env = network_off()
    env = venv_env(tmp_path, guard, BLINDSR_SMOKE='1', BLINDSR_WORKING=str(working), BLINDSR_KAGGLE_INPUT=str(inputs), **net_env)
    dest = working.parent / f'{working.name}.ipynb'
    t0 = time.time()
    r = subprocess.run([*prefix, str(py), '-c', RUN.format(src=str(nb), dest=str(dest))], capture_output=True, text=True,
                       env=env, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-6000:])
    outputs = [''.join(o.get('text', '')) for c in json.loads(dest.read_text())['cells'] for o in c.get('outputs', [])]
    return '\n'.join(outputs), time.time() - t0


def test_built_kernel_installs_itself_offline_in_a_fresh_venv_and_continues_a_previous_run(root, tmp_path, fresh_venv):
    py, guard = fresh_venv
    env = venv_env(tmp_path, guard)
    r = subprocess.run([str(py), '-c', 'import torch, numpy, cv2, execnb; import blindsr'], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert r.returncode != 0 and "No module named 'blindsr'" in r.stderr, (r.stdout, r.stderr)   # torch yes, blindsr no

    prov = git_provenance(root)
    kdir = tmp_path / 'kernel'
    write_files(build_files(KernelSpec('zoe-example', 'zoe-example/faces-2026/3'), root, prov), kdir)
    first = tmp_path / 'input' / 'notebooks' / 'zoe-example' / 'blindsr-train'   # where version 2 will find it
    log, seconds = run_kernel(py, guard, kdir / CODE_FILE, tmp_path, first, tmp_path / 'no-input')
    print(f'first session of the built kernel in a fresh venv: {seconds:.1f} s')
    assert 'Kaggle has retired the P100 and runs P100 requests on T4 x2' in log.splitlines()[0]
    assert 'running on: no GPU (CPU only)' in log and 'cuda_guard: no GPU, nothing to install' in log
    version = packed_wheel(json.loads((kdir / CODE_FILE).read_text()))[0].split('-')[1]      # 0.1.0+h<sha256 of the files>
    built = f'built from commit {prov.commit}' if not prov.dirty else 'built from files that are in no commit'
    assert f'blindsr {version}, {built}' in log and 'packed in this notebook' in log, log[:2000]
    assert 'SMOKE MODE' in log and 'training from scratch' in log
    for f in ('submission.zip', 'curves.png', 'val_grid.png', 'val_scores.csv', 'kaggle_summary.json', 'run/last.ckpt', 'run/best.pt'):
        assert (first / f).is_file(), f
    with zipfile.ZipFile(first / 'submission.zip') as zf:
        assert sorted(zf.namelist()) == [f'results/{i:05d}.png' for i in range(4)]
    rec = json.loads((first / 'kaggle_summary.json').read_text())
    assert rec['smoke'] is True and rec['train']['steps'] == 6 and rec['continued_from'] is None
    assert rec['blindsr']['version'] == version and rec['machine_asked'] == 'P100' and rec['machine'] == 'no GPU (CPU only)'

    show = subprocess.run([str(py), '-m', 'pip', 'show', 'blindsr'], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert f'Version: {version}' in show.stdout and (prov.commit in show.stdout) != prov.dirty, show.stdout
    assert str(py.parent.parent) in show.stdout                          # installed in the fresh venv, not here

    # version 2, in the same session: blindsr is found installed; the first version's output is attached as an input
    second = tmp_path / 'v2'
    log2, _ = run_kernel(py, guard, kdir / CODE_FILE, tmp_path, second, tmp_path / 'input')
    assert 'installed earlier in this session' in log2 and f'continuing {first / "run" / "last.ckpt"}' in log2
    rec2 = json.loads((second / 'kaggle_summary.json').read_text())
    assert rec2['continued_from']['step'] == 6 and rec2['train']['steps'] == 12
    steps = [l.split(',')[0] for l in (second / 'run' / 'log.csv').read_text().splitlines()[1:]]
    assert steps == ['2', '4', '6', '8', '10', '12']                # one continuous log across both sessions


def test_the_network_is_really_off(tmp_path, fresh_venv):
    py, guard = fresh_venv
    prefix, net_env = network_off()
    code = 'import socket\ntry: socket.create_connection(("127.0.0.1", 9), timeout=2); print("connected")\nexcept OSError as e: print("refused:", e)'
    r = subprocess.run([*prefix, str(py), '-c', code], capture_output=True, text=True, env=venv_env(tmp_path, guard, **net_env))
    assert 'refused' in r.stdout and 'connected' not in r.stdout.replace('refused', ''), r.stdout + r.stderr
    r = subprocess.run([*prefix, str(py), '-c', 'import socket; socket.getaddrinfo("pypi.org", 443)'], capture_output=True,
                       text=True, env=venv_env(tmp_path, guard, **net_env))
    assert r.returncode != 0


def test_two_gpus_train_under_torchrun(tmp_path, monkeypatch, capsys):
    "The kernel's path for Kaggle's T4 x2, here with two gloo processes on the CPU: torchrun, DDP, one summary."
    from blindsr.notebook_runtime import make_smoke_data, train_run
    from blindsr.train import TrainConfig
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    dp = make_smoke_data(tmp_path / 'data', n_train=8, n_val=2, n_test=1)
    cfg = TrainConfig(train_hq=str(dp.train_hq), val_gt=str(dp.val_gt), val_lq=str(dp.val_lq), iters=4, batch_size=4,
                      generator_kwargs={'num_feat': 8, 'num_block': 1}, out_dir=str(tmp_path / 'run'), log_every=2,
                      val_every=1000, ckpt_every=1000, degrade_on='gpu', device='cpu', progress=False)
    summary = train_run(cfg, nproc=2)
    assert summary['world'] == 2 and summary['ranks_agree'] is True and summary['steps'] == 4
    assert 'torch.distributed.run --standalone --nproc_per_node=2 -m blindsr.train --config' in capsys.readouterr().out


def run_full_kernel(py, guard, nb, tmp_path, name, inputs, **extra):
    "The built kernel as a full run (not smoke mode) with the data mounted and no GPU: (exit code, stdout + stderr, working)."
    prefix, net_env = network_off()
    working = tmp_path / name
    env = venv_env(tmp_path, guard, BLINDSR_WORKING=str(working), BLINDSR_KAGGLE_INPUT=str(inputs), **net_env, **extra)
    dest = tmp_path / f'{name}.ipynb'
    r = subprocess.run([*prefix, str(py), '-c', RUN.format(src=str(nb), dest=str(dest))],
                       capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    cells = json.loads(dest.read_text())['cells'] if dest.exists() else []     # written when every cell ran
    return r.returncode, '\n'.join([''.join(o.get('text', '')) for c in cells for o in c.get('outputs', [])] + [r.stdout, r.stderr]), working


@pytest.fixture(scope='module')
def mounted_faces(tmp_path_factory):
    "Generated faces in the course layout, where Kaggle mounts a dataset: /kaggle/input/datasets/<owner>/<slug>/<zip folder>/."
    from blindsr.notebook_runtime import make_smoke_data
    inputs = tmp_path_factory.mktemp('input')
    make_smoke_data(inputs / 'datasets' / 'zoe-example' / 'ai6126-faces' / 'data')
    return inputs


def test_a_full_run_without_a_gpu_stops_before_training_and_says_what_to_check(root, tmp_path, fresh_venv, mounted_faces):
    py, guard = fresh_venv
    kdir = tmp_path / 'kernel'
    write_files(build_files(KernelSpec('zoe-example', 'ai6126-faces'), root, git_provenance(root)), kdir)
    rc, log, working = run_full_kernel(py, guard, kdir / CODE_FILE, tmp_path, 'nogpu', mounted_faces)
    assert rc != 0 and 'no GPU in this session' in log, log[-3000:]
    for what in ('Settings > Accelerator', 'phone-verified', 'quota', '--allow-cpu'): assert what in log, what
    assert 'Stopped before training' in log and not (working / 'run').exists() and 'session 1 of' not in log


def test_a_build_that_allows_the_cpu_trains_on_it(root, tmp_path, fresh_venv, mounted_faces):
    "--allow-cpu: the same kernel, a full run (a tiny network, 3 s of training as BLINDSR_TRAIN_MIN says), to the submission."
    py, guard = fresh_venv
    kdir = tmp_path / 'kernel'
    spec = KernelSpec('zoe-example', 'ai6126-faces', allow_cpu=True, generator='msrresnet',
                      generator_kwargs={'num_feat': 8, 'num_block': 1}, sessions=2)
    write_files(build_files(spec, root, git_provenance(root)), kdir)
    rc, log, working = run_full_kernel(py, guard, kdir / CODE_FILE, tmp_path, 'cpu', mounted_faces, BLINDSR_TRAIN_MIN='0.05')
    assert rc == 0, log[-4000:]
    assert 'training on the CPU, as the build asked' in log and 'full run' in log and 'SMOKE MODE' not in log
    rec = json.loads((working / 'kaggle_summary.json').read_text())
    assert rec['smoke'] is False and rec['train']['steps'] > 0 and rec['plan']['session'] == 1 and rec['plan']['sessions'] == 2
    assert rec['plan']['schedule_min'] == 2 * 0.05 and (working / 'plan.json').is_file()
    with zipfile.ZipFile(working / 'submission.zip') as zf: assert len(zf.namelist()) == 4

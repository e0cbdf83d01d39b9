"""The trainer as users run it: `blindsr_train` in a subprocess, SIGTERM, and DDP with two gloo processes."""
import json
import os
import signal
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

TINY = ['--generator-kwargs', '{"num_feat": 8, "num_block": 1}', '--no-progress', '--device', 'cpu']


@pytest.fixture
def faces(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / 'faces'
    d.mkdir()
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(d / f'{i:05d}.png')
    return d


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path, faces):
    out = tmp_path / 'run'
    cmd = ['blindsr_train', '--train-hq', str(faces), '--out-dir', str(out), '--iters', '100000', '--batch-size', '2',
           '--log-every', '2', '--ckpt-every', '100000', '--val-every', '100000', '--degrade-on', 'gpu', *TINY]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / 'log.csv'
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        assert p.poll() is None, p.communicate()
        time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 0, stderr
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['stopped_by'] == 'SIGTERM' and summary['steps'] >= 4
    import torch
    ck = torch.load(out / 'last.ckpt', weights_only=True)
    assert ck['step'] == summary['steps'] and ck['cfg']['iters'] == 100000


def test_ddp_two_gloo_processes_agree(tmp_path, faces):
    out = tmp_path / 'ddp'
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', '-m', 'blindsr.train',
           '--train-hq', str(faces), '--out-dir', str(out), '--iters', '6', '--batch-size', '4', '--log-every', '2',
           '--val-every', '1000', '--ckpt-every', '3', '--degrade-on', 'gpu', *TINY]
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['world'] == 2 and summary['ranks_agree'] is True and summary['steps'] == 6


def test_bad_config_is_a_clear_error(tmp_path):
    r = subprocess.run(['blindsr_train', '--iters', '5', '--loss', 'l3'], capture_output=True, text=True)
    assert r.returncode == 2 and "loss must be one of" in r.stderr


# --------------------------------------------------------------------------------------------------------------------
# a run folder that never lies (issue 22.3-4): the config as the user wrote it, refused resumes, a finished run, the lock
# --------------------------------------------------------------------------------------------------------------------
def train(*args, timeout=300):
    return subprocess.run(['blindsr_train', *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, 'OMP_NUM_THREADS': '1'})


def snapshot(folder) -> dict:
    "Every file of a run folder (recursively) by name, with its bytes, but the lock (it holds the pid of its last taker)."
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob('*'))
            if p.is_file() and p.name != '.blindsr-train.lock'}


def refused(r, *words):
    "The bad-input rules: exit 2, one line on stderr naming `words`, no traceback."
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and 'Traceback' not in r.stderr + r.stdout, (r.returncode, r.stderr)
    for w in words: assert w in lines[0], (w, lines[0])


def run_flags(faces, out) -> list:
    return ['--train-hq', faces, '--val-holdout', 2, '--out-dir', out, '--iters', 4, '--time-budget-min', 60,
            '--batch-size', 2, '--log-every', 1, '--val-every', 2, '--ckpt-every', 2, '--degrade-on', 'cpu',
            '--workers', 0, '--preset', 'bicubic', *TINY]


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory):
    "A finished 4-step run (validated at steps 2 and 4), trained once for the tests below."
    root = tmp_path_factory.mktemp('finished')
    rng = np.random.default_rng(0)
    (root / 'faces').mkdir()
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / 'faces' / f'{i:05d}.png')
    r = train(*run_flags(root / 'faces', root / 'run'))
    assert r.returncode == 0, r.stderr[-3000:]
    return root


@pytest.fixture
def run(tmp_path, finished_run):
    "A copy of the finished run and of its faces (the same faces elsewhere: the same data), and the flags that made it."
    for name in ('faces', 'run'): shutil.copytree(finished_run / name, tmp_path / name)
    return tmp_path / 'run', run_flags(tmp_path / 'faces', tmp_path / 'run')


def val_steps(out) -> list[str]:
    return [line.split(',')[0] for line in (out / 'val.csv').read_text().splitlines()[1:]]


def test_config_json_is_what_the_user_wrote_and_a_changed_budget_is_the_budget(run):
    out, _ = run
    cfg = json.loads((out / 'config.json').read_text())
    assert (cfg['time_budget_min'], cfg['schedule_min'], cfg['session_min'], cfg['iters']) == (60, None, None, 4)
    resolved = json.loads((out / 'resolved.json').read_text())
    assert (resolved['iters'], resolved['schedule_min'], resolved['session_min']) == (4, None, 60)   # iters sets the end
    r = train('--config', out / 'config.json', '--time-budget-min', 120, '--iters', 'none', '--print-config')
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    assert printed['resolved'] == {'iters': None, 'schedule_min': 120, 'session_min': 120}
    assert (printed['config']['time_budget_min'], printed['config']['schedule_min']) == (120, None)


def test_a_finished_run_rerun_trains_and_writes_nothing(run):
    out, flags = run
    assert val_steps(out) == ['2', '4']                    # validated at 4 once, not again at the end
    before = snapshot(out)
    r = train(*flags)
    assert r.returncode == 0, r.stderr
    assert 'is finished: it trained 4 of iters=4 steps' in r.stdout and '--iters 8' in r.stdout
    assert snapshot(out) == before                         # no row, no config, no history line
    r = train(*flags, '--iters', 6)                        # extending the budget is how a run goes on
    assert r.returncode == 0, r.stderr[-3000:]
    assert val_steps(out) == ['2', '4', '6']
    history = [json.loads(line) for line in (out / 'history.jsonl').read_text().splitlines()]
    assert [(h['event'], h['step'], h['changed'].get('iters')) for h in history] == [('start', 0, None), ('resume', 4, [4, 6])]


def test_a_resume_that_changes_the_run_is_refused_naming_the_fields(run):
    out, flags = run
    before = snapshot(out)
    more = ['--iters', 6]                                  # (a longer run: the budget may change)
    refused(train(*flags, *more, '--lr', '1e-3', '--batch-size', 4, '--preset', 'ai6126_2024', '--seed', 3),
            'preset "bicubic" then, "ai6126_2024" now', 'batch_size 2 then, 4 now', 'lr 0.0004 then, 0.001 now',
            'seed 0 then, 3 now', '--allow-change preset,batch_size,lr,seed', 'new --out-dir')
    refused(train(*flags, *more, '--allow-change', 'learning_rate'), '--allow-change learning_rate')
    (out.parent / 'faces' / '00011.png').unlink()          # other training faces under the same path
    refused(train(*flags, *more), 'train_hq "10 faces', '"9 faces')
    assert snapshot(out) == before
    r = train(*flags, *more, '--lr', '1e-3', '--allow-change', 'lr', '--allow-change', 'train_hq')
    assert r.returncode == 0, r.stderr[-3000:]
    last = json.loads((out / 'history.jsonl').read_text().splitlines()[-1])
    assert last['changed']['lr'] == [0.0004, 0.001] and last['allowed'] == ['lr', 'train_hq']


def test_a_folder_in_use_is_refused_and_a_killed_runs_lock_taken_over(run):
    out, flags = run
    hold = subprocess.Popen([sys.executable, '-c', f'from blindsr.train import RunLock; import time; '
                             f'lock = RunLock({str(out)!r}).acquire(); print("held", flush=True); time.sleep(600)'],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert hold.stdout.readline().strip() == 'held'
        before = snapshot(out)
        refused(train(*flags), f'is in use: process {hold.pid} is training in it')
        assert snapshot(out) == before
    finally:
        hold.kill(); hold.wait()
    r = train(*flags)                                      # the killed holder's lock is stale: taken over
    assert r.returncode == 0 and 'is finished' in r.stdout, r.stderr[-3000:]

"""The trainer as users run it: `blindsr_train` in a subprocess, SIGTERM, and DDP with two gloo processes."""
import json
import os
import signal
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

"""Faults a training run survives, as a user meets them: `blindsr_train` killed in the middle of writing a checkpoint, a
disk that fills up while it saves, a `last.ckpt` cut short. Each keeps the previous checkpoint whole, says what happened
in one line, and a rerun of the same command resumes. (The same faults in-process, with the losses of the resumed run
compared step by step, are in nbs/05_train.ipynb; Ctrl-C and bad input are in tests/test_bad_input.py.)

A fault is made by a small wrapper around the real command (`python -c WRAPPER ARGS`) that replaces `torch.save` for
training checkpoints only: it writes part of the file and then hangs (to be killed), or raises ENOSPC."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

TINY = ['--generator-kwargs', '{"num_feat": 8, "num_block": 1}', '--no-progress', '--device', 'cpu', '--batch-size', '2',
        '--degrade-on', 'gpu', '--log-every', '1', '--val-every', '1000', '--ckpt-every', '2']
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}

# the real blindsr_train, with torch.save of the N-th training checkpoint replaced by a fault (FAULT=hang|enospc, AT=N)
WRAPPER = '''
import errno, os, sys, time, torch
from blindsr.checkpoint import CHECKPOINT_FORMAT
from blindsr.train import train_cli
real, seen = torch.save, [0]
def faulty(obj, f):
    if isinstance(obj, dict) and obj.get('format') == CHECKPOINT_FORMAT:
        seen[0] += 1
        if seen[0] == int(os.environ['AT']):
            f.write(b'PK\\x03\\x04 the first bytes of a checkpoint'); f.flush()
            if os.environ['FAULT'] == 'enospc': raise OSError(errno.ENOSPC, 'No space left on device')
            print('FAULT: writing', flush=True); time.sleep(600)
    return real(obj, f)
torch.save = faulty
sys.exit(train_cli(sys.argv[1:]))
'''


def blindsr_train(*args, **kw) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / 'blindsr_train'
    return subprocess.run([str(exe) if exe.exists() else 'blindsr_train', *map(str, args)], capture_output=True,
                          text=True, env=ENV, timeout=300, **kw)


def step_of(path: Path) -> int:
    return int(torch.load(path, weights_only=True)['step'])


@pytest.fixture
def faces(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    d = tmp_path / 'faces'; d.mkdir()
    for i in range(6): Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(d / f'{i:05d}.png')
    return d


def test_killed_while_writing_a_checkpoint_the_previous_one_survives_and_the_run_resumes(tmp_path, faces):
    out = tmp_path / 'run'
    args = ['--train-hq', faces, '--out-dir', out, '--iters', '8', *TINY]
    p = subprocess.Popen([sys.executable, '-c', WRAPPER, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env={**ENV, 'FAULT': 'hang', 'AT': '2'}, start_new_session=True)
    deadline = time.time() + 240
    for line in p.stdout:                                  # the second checkpoint (step 4) is being written
        if line.startswith('FAULT: writing') or time.time() > deadline: break
    assert p.poll() is None, p.stderr.read()
    os.killpg(p.pid, signal.SIGKILL); p.wait(timeout=60)
    half = [f.name for f in out.iterdir() if f.name.endswith('.tmp')]
    assert half, 'the kill did not interrupt a write'
    assert step_of(out / 'last.ckpt') == 2                  # the checkpoint before the killed write, whole

    r = blindsr_train(*args)                                # rerun the same command
    assert r.returncode == 0, r.stderr[-3000:]
    assert f'resumed from {out / "last.ckpt"} at step 2' in r.stdout
    assert json.loads((out / 'summary.json').read_text())['steps'] == 8
    assert step_of(out / 'last.ckpt') == 8 and step_of(out / 'previous.ckpt') == 6
    assert not [f.name for f in out.iterdir() if f.name.endswith('.tmp')], 'the half-written file was left behind'


def test_a_full_disk_while_saving_keeps_the_checkpoints_and_says_what_to_free(tmp_path, faces):
    out = tmp_path / 'run'
    args = ['--train-hq', faces, '--out-dir', out, '--iters', '8', *TINY]
    r = subprocess.run([sys.executable, '-c', WRAPPER, *map(str, args)], capture_output=True, text=True, timeout=300,
                       env={**ENV, 'FAULT': 'enospc', 'AT': '3'})
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr[-3000:]
    msg = lines[0]
    assert msg.startswith('blindsr_train: error: no space left on the disk of') and 'last.ckpt' in msg, msg
    assert 'Free space on that disk' in msg and 'Training stopped at step 6' in msg, msg
    assert f'{out / "last.ckpt"} (step 4): rerun the same command to resume' in msg, msg
    assert (step_of(out / 'last.ckpt'), step_of(out / 'previous.ckpt')) == (4, 2)
    assert not [f.name for f in out.iterdir() if f.name.endswith('.tmp')]
    r = blindsr_train(*args)                                # space freed: the same command resumes
    assert r.returncode == 0 and 'at step 4' in r.stdout, r.stderr[-3000:]


def test_a_cut_short_last_ckpt_falls_back_to_the_previous_one(tmp_path, faces):
    out = tmp_path / 'run'
    args = ['--train-hq', faces, '--out-dir', out, '--iters', '4', *TINY]
    assert blindsr_train(*args).returncode == 0
    assert (step_of(out / 'last.ckpt'), step_of(out / 'previous.ckpt')) == (4, 2)
    data = (out / 'last.ckpt').read_bytes(); (out / 'last.ckpt').write_bytes(data[:len(data) // 2])
    r = blindsr_train(*args[:-len(TINY)], *TINY, '--iters', '6')
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'last.ckpt is not a readable checkpoint: it is cut short' in r.stdout
    assert f'Resuming from {out / "previous.ckpt"} (step 2) instead' in r.stdout
    assert (step_of(out / 'last.ckpt'), step_of(out / 'previous.ckpt')) == (6, 4)   # the broken file was not kept
    (out / 'last.ckpt').write_bytes(b''); (out / 'previous.ckpt').write_bytes(b'')
    r = blindsr_train(*args)                                # nothing readable left: one line, naming both files
    assert r.returncode == 2 and 'no readable checkpoint is left in' in r.stderr and 'it is empty' in r.stderr, r.stderr
    assert '--resume-from PATH' in r.stderr and '--overwrite' in r.stderr

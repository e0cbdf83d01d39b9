"""The built kernel (kaggle_kernel/blindsr-train.ipynb) run top to bottom in a fresh process, as Kaggle runs it, in
smoke mode on the CPU (generated faces, a tiny network, a few steps); then a second session that continues the first
one's checkpoint, as a kernel built with --previous does."""
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile

import pytest

from blindsr.kaggle import CODE_FILE, KERNEL_DIR

RUN = '''
from execnb.shell import CaptureShell
CaptureShell().execute({src!r}, {dest!r}, exc_stop=True)
'''


def run_kernel(root, tmp_path, name, inputs):
    working = tmp_path / name
    dest = tmp_path / f'{name}.ipynb'
    env = {**os.environ, 'BLINDSR_SMOKE': '1', 'BLINDSR_WORKING': str(working), 'BLINDSR_KAGGLE_INPUT': str(inputs),
           'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
    env.pop('IN_TEST', None)
    t0 = time.time()
    r = subprocess.run([sys.executable, '-c', RUN.format(src=str(root / KERNEL_DIR / CODE_FILE), dest=str(dest))],
                       capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-6000:])
    outputs = [''.join(o.get('text', '')) for c in json.loads(dest.read_text())['cells'] for o in c.get('outputs', [])]
    return working, '\n'.join(outputs), time.time() - t0


def test_kernel_runs_top_to_bottom_in_smoke_mode_and_continues_a_previous_run(root, tmp_path):
    first, log, seconds = run_kernel(root, tmp_path, 'v1', tmp_path / 'no-inputs')
    print(f'smoke run of the kernel: {seconds:.1f} s')
    assert 'cuda_guard:' in log
    if shutil.which('nvidia-smi') is None: assert 'cuda_guard: no GPU, nothing to install' in log
    assert 'blindsr is installed already' in log and 'SMOKE MODE' in log and 'training from scratch' in log
    for f in ('submission.zip', 'curves.png', 'val_grid.png', 'val_scores.csv', 'kaggle_summary.json', 'run/last.ckpt', 'run/best.pt'):
        assert (first / f).is_file(), f
    with zipfile.ZipFile(first / 'submission.zip') as zf:
        assert sorted(zf.namelist()) == [f'results/{i:05d}.png' for i in range(4)]
    rec = json.loads((first / 'kaggle_summary.json').read_text())
    assert rec['smoke'] is True and rec['train']['steps'] == 6 and rec['continued_from'] is None

    # version 2: the first version's output attached as an input; training continues at step 6
    second, log2, _ = run_kernel(root, tmp_path, 'v2', tmp_path)
    rec2 = json.loads((second / 'kaggle_summary.json').read_text())
    assert rec2['continued_from']['step'] == 6 and rec2['continued_from']['from'] == str(first / 'run' / 'last.ckpt')
    assert rec2['train']['steps'] == 12 and 'continuing' in log2
    steps = [l.split(',')[0] for l in (second / 'run' / 'log.csv').read_text().splitlines()[1:]]
    assert steps == ['2', '4', '6', '8', '10', '12']                # one continuous log across both sessions


def test_two_gpus_train_under_torchrun(tmp_path, monkeypatch, capsys):
    "The kernel's path for Kaggle's T4 x2, here with two gloo processes on the CPU: torchrun, DDP, one summary."
    from blindsr.kaggle import make_smoke_data, train_run
    from blindsr.train import TrainConfig
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    dp = make_smoke_data(tmp_path / 'data', n_train=8, n_val=2, n_test=1)
    cfg = TrainConfig(train_hq=str(dp.train_hq), val_gt=str(dp.val_gt), val_lq=str(dp.val_lq), iters=4, batch_size=4,
                      generator_kwargs={'num_feat': 8, 'num_block': 1}, out_dir=str(tmp_path / 'run'), log_every=2,
                      val_every=1000, ckpt_every=1000, degrade_on='gpu', device='cpu', progress=False)
    summary = train_run(cfg, nproc=2)
    assert summary['world'] == 2 and summary['ranks_agree'] is True and summary['steps'] == 4
    assert 'torch.distributed.run --standalone --nproc_per_node=2 -m blindsr.train --config' in capsys.readouterr().out

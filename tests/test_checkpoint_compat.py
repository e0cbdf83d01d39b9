"""Checkpoints written before the trainer was rebuilt (blindsr 887f60d, tests/data/checkpoint_v1/make.py) still resume,
and the resumed run repeats the old code's losses exactly (as log.csv writes them) and its weights to float32 rounding:
the GPU data path, the CPU DataLoader path and the GAN phase. (The weights are compared within 1e-7: the files were
made on another machine, and its CPU convolution kernels round differently by up to ~4e-9 here.)"""
import csv
import shutil
import sys
from pathlib import Path

import pytest
import torch

DATA = Path(__file__).resolve().parent / 'data' / 'checkpoint_v1'
sys.path.insert(0, str(DATA))
from make import RUNS, config, faces  # noqa: E402  (the exact configs and faces the old checkpoints were made with)


@pytest.mark.parametrize('name', list(RUNS))
def test_an_old_checkpoint_resumes_bit_exactly(tmp_path, name):
    from blindsr.train import Trainer
    torch.set_num_threads(1)
    out = tmp_path / 'run'
    out.mkdir()
    shutil.copyfile(DATA / f'step4_{name}.ckpt', out / 'last.ckpt')
    shutil.copyfile(DATA / f'step4_{name}.ckpt', tmp_path / 'untouched.ckpt')
    faces(tmp_path / 'faces')                    # the same pixels as when the checkpoints were made (seeded)
    tr = Trainer(config(out, tmp_path / 'faces', **RUNS[name]))
    summary = tr.fit()
    want = torch.load(DATA / f'expected_{name}.pt', weights_only=True)
    assert summary['steps'] == 8
    losses = [float(r['loss']) for r in csv.DictReader(open(out / 'log.csv'))]
    assert losses == want['losses'][4:]          # steps 5-8
    for k, v in tr.train_step.generator.state_dict().items(): torch.testing.assert_close(v, want['params'][k], rtol=0, atol=1e-7, msg=k)
    for k, v in tr.train_step.averaged.state_dict().items(): torch.testing.assert_close(v, want['params_ema'][k], rtol=0, atol=1e-7, msg=k)
    assert (DATA / f'step4_{name}.ckpt').read_bytes() == (tmp_path / 'untouched.ckpt').read_bytes()

"""What a kernel finds under /kaggle/input, with a fake one laid out the way Kaggle mounts things now
(`datasets/<owner>/<slug>/<zip top folder>/…`, a previous version's output at `notebooks/<user>/<slug>/run/last.ckpt`)
and the way it did before (`<slug>/…`), found by the kernel's own calls (find_data, find_previous_checkpoint with
BLINDSR_KAGGLE_INPUT standing in for /kaggle/input); and one with nothing usable, where the error lists what is there."""
from pathlib import Path

import numpy as np
import pytest
import torch

from blindsr.core import write_png
from blindsr.data import find_data
from blindsr.notebook_runtime import find_previous_checkpoint, input_root


def faces(folder: Path, n: int, size: int):
    rng = np.random.default_rng(len(str(folder)))
    for i in range(n): write_png(folder / f'{i:05d}.png', rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def course_data(top: Path):
    faces(top / 'train' / 'GT', 5, 32); faces(top / 'val' / 'GT', 3, 32); faces(top / 'val' / 'LQ', 3, 8); faces(top / 'test' / 'LQ', 3, 8)


def checkpoint(path: Path, step: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({'format': 'blindsr-checkpoint', 'step': step, 'elapsed': 60.0 * step, 'best_psnr': 25.0, 'arch': 'msrresnet',
                'arch_kwargs': {}, 'params': {'w': torch.zeros(1)}}, path)


LAYOUTS = {
    'new': ('datasets/zoe-example/ai6126-faces/ai6126-data', 'notebooks/zoe-example/blindsr-train/run/last.ckpt'),
    'old': ('ai6126-faces', 'blindsr-train/run/last.ckpt'),
}


@pytest.mark.parametrize('layout', list(LAYOUTS))
def test_data_and_the_previous_checkpoint_are_found(layout, tmp_path, monkeypatch, capsys):
    inputs = tmp_path / 'kaggle' / 'input'
    data_at, ckpt_at = LAYOUTS[layout]
    course_data(inputs / data_at)
    checkpoint(inputs / ckpt_at, 1200)
    monkeypatch.setenv('BLINDSR_KAGGLE_INPUT', str(inputs))
    data = find_data([input_root(), tmp_path / 'data']).require('train_hq', 'val_gt', 'val_lq', 'test_lq')
    top = inputs / data_at
    assert (data.train_hq, data.val_gt, data.val_lq, data.test_lq) == \
           (top / 'train' / 'GT', top / 'val' / 'GT', top / 'val' / 'LQ', top / 'test' / 'LQ')
    assert data.notes == ()
    assert find_previous_checkpoint(expected='zoe-example/blindsr-train') == inputs / ckpt_at
    print(data.report())


def test_both_layouts_at_once_each_choice_is_explained(tmp_path, monkeypatch, capsys):
    "The same dataset attached twice (say, an old and a new version): the pick and the reason are printed."
    inputs = tmp_path / 'input'
    for data_at, ckpt_at in LAYOUTS.values(): course_data(inputs / data_at)
    checkpoint(inputs / LAYOUTS['new'][1], 1200); checkpoint(inputs / 'other-kernel/run/last.ckpt', 5000)
    data = find_data([inputs])
    assert data.train_hq == inputs / 'ai6126-faces' / 'train' / 'GT'                       # the shallower of two equals
    assert any(n.startswith('train_hq: picked') and 'a tie on 5 images: the shallower' in n for n in data.notes), data.notes
    assert data.val_lq.parent == data.val_gt.parent                                         # a pair from one dataset
    assert find_previous_checkpoint([inputs], expected='zoe-example/blindsr-train') == inputs / LAYOUTS['new'][1]
    assert 'it is under blindsr-train' in capsys.readouterr().out
    assert find_previous_checkpoint([inputs]) == inputs / 'other-kernel/run/last.ckpt'      # no kernel named: most steps


def test_nothing_usable_lists_what_is_there_and_what_was_expected(tmp_path, capsys):
    inputs = tmp_path / 'input'
    faces(inputs / 'datasets' / 'zoe-example' / 'faces' / 'photos', 4, 32)                 # images, but named for no role
    faces(inputs / 'datasets' / 'zoe-example' / 'faces' / 'train' / 'GT', 1, 32)           # one image: too few
    (inputs / 'notebooks' / 'zoe-example' / 'blindsr-train').mkdir(parents=True)          # an output without run/last.ckpt
    with pytest.raises(FileNotFoundError) as e: find_data([inputs]).require('train_hq', 'test_lq')
    msg = str(e.value)
    print(msg)
    for frag in ('could not find train_hq, test_lq', 'train_hq: HQ training faces: train/GT, train/HQ, train/HR',
                 'test_lq: test LQ: test/LQ', f'seen under {inputs} (two levels):', 'datasets/ (1 folder, 0 files)',
                 'datasets/zoe-example/ (1 folder, 0 files)', 'notebooks/zoe-example/ (1 folder, 0 files)',
                 'passed over', '1 image(s), fewer than 2', f"named for no role: {inputs}/datasets/zoe-example/faces/photos (4 images)"):
        assert frag in msg, frag
    with pytest.raises(FileNotFoundError) as e: find_previous_checkpoint([inputs], expected='zoe-example/blindsr-train')
    msg = str(e.value)
    print(msg)
    assert f'{inputs}/notebooks/zoe-example/blindsr-train/run/last.ckpt' in msg and 'notebooks/zoe-example/ (1 folder' in msg

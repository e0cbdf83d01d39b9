"""`blindsr_submit` as users run it: the zip it writes, the zips it refuses, in subprocesses and in-process."""
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}


def run(*args, timeout=120):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=ENV, timeout=timeout)


def write_lq(folder, n, h=16, w=16, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f'{i:05d}.png')
    return folder


def test_submit_writes_a_zip_blindsr_evaluate_accepts(tmp_path, tiny_weights):
    lq = write_lq(tmp_path / 'test_lq', 4)
    z = tmp_path / 'submission.zip'
    r = run('blindsr_submit', lq, z, '--ckpt', tiny_weights, '--size', '64', '--device', 'cpu')
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(z) as zf:
        assert zf.namelist() == [f'results/{i:05d}.png' for i in range(4)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ['submission.zip', 'test_lq']    # nothing left behind
    from blindsr.inference import restore_cli
    from blindsr.submission import submit_cli
    assert submit_cli(['--check', str(z), '--size', '64', '--n-expected', '4']) == 0
    # the same restorations as "ground truth": blindsr_evaluate reads the zip and finds them identical
    assert restore_cli([str(lq), str(tmp_path / 'gt'), '--ckpt', str(tiny_weights), '--no-progress']) == 0
    r = run('blindsr_evaluate', z, tmp_path / 'gt', '--no-ssim', '--csv', tmp_path / 'm.csv')
    assert r.returncode == 0, r.stderr
    assert 'identical to ground truth' in r.stdout and '(4 images)' in r.stdout


def png(w, h):
    import io
    buf = io.BytesIO(); Image.new('RGB', (w, h)).save(buf, format='PNG'); return buf.getvalue()


def zip_of(path, members):
    with zipfile.ZipFile(path, 'w') as zf:
        for n, d in members.items(): zf.writestr(n, d)
    return path


def test_a_wrong_zip_is_rejected_by_the_command(tmp_path):
    z = zip_of(tmp_path / 'flat.zip', {f'{i:05d}.png': png(64, 64) for i in range(3)})
    r = run('blindsr_submit', '--check', z, '--size', '64')
    assert r.returncode == 2 and 'outside any folder' in r.stderr and 'Traceback' not in r.stderr, r.stderr


@pytest.mark.parametrize('members, problem', [
    ({**{f'a/{i:05d}.png': png(64, 64) for i in range(2)}, 'b/00002.png': png(64, 64)}, 'folders at the top'),
    ({'r/00000.png': png(64, 64), 'r/00002.png': png(64, 64)}, 'missing image(s): 00001.png'),
    ({'r/00000.png': png(64, 64), 'r/1.png': png(64, 64)}, 'badly named'),
    ({'r/00000.png': png(64, 64), 'r/00001.png': png(60, 64)}, '(60x64, want 64x64)'),
    ({'r/00000.png': png(64, 64), 'r/00000.jpg': b'x'}, 'badly named file(s) (r/00000.jpg)'),
])
def test_wrong_zip_layouts_are_rejected(tmp_path, members, problem, capsys):
    from blindsr.submission import submit_cli
    assert submit_cli(['--check', str(zip_of(tmp_path / 'bad.zip', members)), '--size', '64']) == 2
    assert problem in capsys.readouterr().err


def test_submit_refuses_lq_not_named_like_the_test_set(tmp_path, tiny_weights, capsys):
    from blindsr.submission import submit_cli
    lq = write_lq(tmp_path / 'lq', 2)
    (lq / '00001.png').rename(lq / 'face.png')
    assert submit_cli([str(lq), str(tmp_path / 's.zip'), '--ckpt', str(tiny_weights), '--size', '64']) == 2
    assert 'face.png' in capsys.readouterr().err and not (tmp_path / 's.zip').exists()

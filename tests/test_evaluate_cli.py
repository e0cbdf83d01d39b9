"""`blindsr_evaluate` as a user runs it: a subprocess on folders and zips, exit codes and messages."""
import csv
import math
import subprocess
import zipfile

import numpy as np
from PIL import Image


def make_set(folder, n=4, size=32, seed=0, err=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = rng.integers(10, 240, (size, size, 3), dtype=np.uint8)
        Image.fromarray(img + np.uint8(err)).save(folder / f'{i:05d}.png')


def evaluate(*args):
    return subprocess.run(['blindsr_evaluate', *map(str, args)], capture_output=True, text=True)


def test_folder_and_zip_agree_with_the_formula(tmp_path):
    make_set(tmp_path / 'gt'); make_set(tmp_path / 'pred', err=2)
    r = evaluate(tmp_path / 'pred', tmp_path / 'gt', '--csv', tmp_path / 'm.csv')
    assert r.returncode == 0, r.stderr
    want = 20 * math.log10(255 / 2)
    assert f'PSNR {want:.4f} dB' in r.stdout
    rows = list(csv.DictReader(open(tmp_path / 'm.csv')))
    assert [x['stem'] for x in rows] == ['00000', '00001', '00002', '00003']
    assert all(abs(float(x['psnr']) - want) < 1e-9 for x in rows)
    with zipfile.ZipFile(tmp_path / 'sub.zip', 'w') as zf:
        for f in sorted((tmp_path / 'pred').iterdir()): zf.write(f, f'answer/{f.name}')
    rz = evaluate(tmp_path / 'sub.zip', tmp_path / 'gt', '--no-ssim')
    assert rz.returncode == 0, rz.stderr
    assert f'PSNR {want:.4f} dB' in rz.stdout
    assert (tmp_path / 'sub_metrics.csv').exists()


def test_mismatched_sets_fail_with_the_list(tmp_path):
    make_set(tmp_path / 'gt'); make_set(tmp_path / 'pred', n=3)
    r = evaluate(tmp_path / 'pred', tmp_path / 'gt')
    assert r.returncode == 2
    assert 'missing prediction(s): 00003' in r.stderr


def test_corrupt_prediction_names_the_file(tmp_path):
    make_set(tmp_path / 'gt', n=2); make_set(tmp_path / 'pred', n=2)
    (tmp_path / 'pred' / '00001.png').write_bytes(b'\x89PNG\r\n\x1a\n broken')
    r = evaluate(tmp_path / 'pred', tmp_path / 'gt')
    assert r.returncode == 2
    assert '00001.png' in r.stderr

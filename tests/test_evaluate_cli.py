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


def readonly(path, request):
    "Make a folder read-only for this process, root included (chattr +i); undone at teardown; skip if impossible."
    import os, pytest
    def undo():
        if os.geteuid() == 0: subprocess.run(['chattr', '-i', str(path)], capture_output=True)
        os.chmod(path, 0o755)
    request.addfinalizer(undo)
    os.chmod(path, 0o555)
    if os.geteuid() == 0 and subprocess.run(['chattr', '+i', str(path)], capture_output=True).returncode != 0:
        pytest.skip('running as root and chattr +i failed: cannot make a read-only folder')
    return path


def test_a_zip_on_a_read_only_mount_is_scored_and_the_csv_goes_to_the_current_folder(tmp_path, request):
    "/kaggle/input/…zip: the CSV cannot go beside the zip; the PSNR is printed and the CSV lands in the current folder."
    make_set(tmp_path / 'gt'); make_set(tmp_path / 'pred', err=2)
    (tmp_path / 'input').mkdir(); (tmp_path / 'work').mkdir()
    with zipfile.ZipFile(tmp_path / 'input' / 'sub.zip', 'w') as zf:
        for f in sorted((tmp_path / 'pred').iterdir()): zf.write(f, f'results/{f.name}')
    readonly(tmp_path / 'input', request)
    r = subprocess.run(['blindsr_evaluate', str(tmp_path / 'input' / 'sub.zip'), str(tmp_path / 'gt'), '--no-ssim'],
                       capture_output=True, text=True, cwd=tmp_path / 'work')
    assert r.returncode == 0, r.stderr
    assert f'PSNR {20 * math.log10(255 / 2):.4f} dB' in r.stdout and 'read-only' in r.stdout
    assert (tmp_path / 'work' / 'sub_metrics.csv').read_text().startswith('stem,psnr,ssim')


def test_outputs_and_unread_types_are_refused_before_scoring(tmp_path, capsys):
    "A CSV over a GT image, in a folder, or over a user's file; a .tif among the predictions: one line each, nothing written."
    from blindsr.metrics import evaluate_cli
    make_set(tmp_path / 'gt', n=2); make_set(tmp_path / 'pred', n=2)
    (tmp_path / 'notes.csv').write_text('mine'); (tmp_path / 'scores').mkdir()
    before = {p.name: p.read_bytes() for p in (tmp_path / 'gt').iterdir()}
    for csv_arg, name in [(tmp_path / 'gt' / '00000.png', 'lies inside the input'), (tmp_path / 'scores', 'is a folder'),
                          (tmp_path / 'notes.csv', 'not written by this command')]:
        assert evaluate_cli([str(tmp_path / 'pred'), str(tmp_path / 'gt'), '--csv', str(csv_arg)]) == 2
        err = capsys.readouterr().err
        assert name in err and len(err.strip().splitlines()) == 1, err
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / 'pred' / '00002.tif')
    assert evaluate_cli([str(tmp_path / 'pred'), str(tmp_path / 'gt')]) == 2
    assert '00002.tif' in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (tmp_path / 'gt').iterdir()} == before
    assert (tmp_path / 'notes.csv').read_text() == 'mine' and not (tmp_path / 'pred_metrics.csv').exists()


def test_the_readmes_scoring_example_works_as_written(tmp_path, root):
    "README 'Score a submission': the commands as printed there, on a 2-face val set at the course's sizes."
    import shlex
    import shutil
    from blindsr.checkpoint import default_weights
    lines = [l.split('#')[0].strip() for l in (root / 'README.md').read_text().splitlines()
             if l.startswith(('blindsr_submit data/val/LQ', 'blindsr_evaluate val_submission.zip'))]
    assert len(lines) == 2, lines
    make_set(tmp_path / 'data' / 'val' / 'LQ', n=2, size=128); make_set(tmp_path / 'data' / 'val' / 'GT', n=2, size=512)
    ckpt = tmp_path / shlex.split(lines[0])[shlex.split(lines[0]).index('--ckpt') + 1]
    ckpt.parent.mkdir(parents=True); shutil.copyfile(default_weights(), ckpt)
    for line in lines:
        r = subprocess.run(shlex.split(line), capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 0, (line, r.stderr)
    assert 'PSNR' in r.stdout

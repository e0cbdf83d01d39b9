"""The restoring commands as users run them: blindsr_restore and blindsr_val in subprocesses, with a tiny random
generator written by blindsr.checkpoint.export_weights (the `tiny_weights` fixture). Each subprocess pays ~4 s of
`import torch` on a busy 2-core machine, so variations of one command run in-process through its `*_cli` function."""

import numpy as np
import pytest
from PIL import Image

from cli_helpers import ENV, run, write_lq


def test_restore_folder_keeps_stems_and_scales_by_4(tmp_path, tiny_weights):
    lq = write_lq(tmp_path / 'lq', 3)
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(lq / 'photo.jpg')        # gray JPEG, other size
    r = run('blindsr_restore', lq, tmp_path / 'out', '--ckpt', tiny_weights, '--device', 'cpu', '--tta', 'flip')
    assert r.returncode == 0, r.stderr
    got = {p.name: Image.open(p).size for p in (tmp_path / 'out').iterdir() if p.name != '.blindsr-restore.json'}
    assert got == {'00000.png': (64, 64), '00001.png': (64, 64), '00002.png': (64, 64), 'photo.png': (48, 40)}
    assert all(Image.open(p).mode == 'RGB' for p in (tmp_path / 'out').glob('*.png'))
    assert (tmp_path / 'out' / '.blindsr-restore.json').is_file()        # what it wrote: a rerun may replace them


def test_restore_one_file_to_a_named_png(tmp_path, tiny_weights):
    lq = write_lq(tmp_path / 'lq', 1, 20, 24)
    r = run('blindsr_restore', lq / '00000.png', tmp_path / 'x' / 'face_sr.png', '--ckpt', tiny_weights, '--tile', '8')
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / 'x' / 'face_sr.png').size == (96, 80)


def test_corrupt_input_names_the_file(tmp_path, tiny_weights):
    lq = write_lq(tmp_path / 'lq', 2)
    (lq / '00001.png').write_bytes(b'not an image at all')
    r = run('blindsr_restore', lq, tmp_path / 'out', '--ckpt', tiny_weights, '--device', 'cpu')
    assert r.returncode == 2 and '00001.png' in r.stderr and 'Traceback' not in r.stderr, r.stderr


@pytest.mark.parametrize('kind', ['missing', 'truncated', 'not an image'])
def test_other_bad_inputs_name_the_file(tmp_path, tiny_weights, kind, capsys):
    from blindsr.inference import restore_cli
    lq = write_lq(tmp_path / 'lq', 2, 64, 64)
    bad = lq / '00001.png'
    if kind == 'missing': target, name = lq / '00009.png', '00009.png'
    elif kind == 'truncated': bad.write_bytes(bad.read_bytes()[:150]); target, name = lq, '00001.png'   # header intact
    else: (lq / 'notes.txt').write_text('x'); target, name = lq / 'notes.txt', 'notes.txt'
    assert restore_cli([str(target), str(tmp_path / 'out'), '--ckpt', str(tiny_weights), '--no-progress']) == 2
    assert name in capsys.readouterr().err


def test_missing_weights_are_a_clear_error(tmp_path):
    lq = write_lq(tmp_path / 'lq', 1)
    r = run('blindsr_restore', lq, tmp_path / 'out', '--ckpt', tmp_path / 'nope.pt')
    assert r.returncode == 2 and 'nope.pt' in r.stderr and 'Traceback' not in r.stderr


def test_val_restores_and_scores_in_one_go(tmp_path, tiny_weights):
    lq = write_lq(tmp_path / 'val' / 'LQ', 3)
    write_lq(tmp_path / 'val' / 'GT', 3, 64, 64, seed=1)
    r = run('blindsr_val', lq, tmp_path / 'val' / 'GT', tmp_path / 'res' / 'val', '--ckpt', tiny_weights, '--tta', 'x8')
    assert r.returncode == 0, r.stderr
    assert 'PSNR' in r.stdout and 'SSIM' in r.stdout and 'bicubic' in r.stdout
    assert (tmp_path / 'res' / 'val_metrics.csv').read_text().count('\n') == 4
    assert len(list((tmp_path / 'res' / 'val').glob('*.png'))) == 3


def test_restore_never_writes_over_an_input_a_users_folder_or_a_jpeg_name(tmp_path, tiny_weights, capsys):
    "OUT = the GT folder, OUT inside the input, one image to result.jpg: refused on one line, nothing written; a rerun is fine."
    from blindsr.inference import restore_cli
    lq = write_lq(tmp_path / 'lq', 2)
    gt = write_lq(tmp_path / 'gt', 2, 64, 64, seed=1)
    before = {p.name: p.read_bytes() for p in gt.iterdir()}
    common = ['--ckpt', str(tiny_weights), '--device', 'cpu', '--no-progress']
    for args, want in [([str(lq), str(gt)], 'did not write'), ([str(lq), str(lq / 'sr')], 'lies inside the input'),
                       ([str(lq / '00000.png'), str(tmp_path / 'result.jpg')], 'name the output file .png')]:
        assert restore_cli([*args, *common]) == 2
        err = capsys.readouterr().err
        assert want in err and len(err.strip().splitlines()) == 1 and 'Traceback' not in err, err
    assert {p.name: p.read_bytes() for p in gt.iterdir()} == before
    assert not (lq / 'sr').exists() and not (tmp_path / 'result.jpg').exists()
    for _ in range(2): assert restore_cli([str(lq), str(tmp_path / 'out'), *common]) == 0   # its own folder: rerun ok
    (tmp_path / 'out' / 'notes.txt').write_text('mine')
    assert restore_cli([str(lq), str(tmp_path / 'out'), *common]) == 2                       # now holds a user's file
    assert restore_cli([str(lq), str(tmp_path / 'out'), *common, '--overwrite']) == 0
    assert (tmp_path / 'out' / 'notes.txt').read_text() == 'mine'


def test_val_checks_the_gt_before_restoring_and_blames_it(tmp_path, tiny_weights, capsys):
    "A GT image of the wrong size stops blindsr_val before anything is restored, naming the GT file; so does OUT = GT."
    from blindsr.inference import val_cli
    lq = write_lq(tmp_path / 'LQ', 3)
    gt = write_lq(tmp_path / 'GT', 3, 64, 64, seed=1)
    Image.fromarray(np.zeros((60, 64, 3), np.uint8)).save(gt / '00001.png')
    common = ['--ckpt', str(tiny_weights), '--device', 'cpu', '--no-progress', '--no-ssim']
    assert val_cli([str(lq), str(gt), str(tmp_path / 'out'), *common]) == 2
    err = capsys.readouterr().err
    assert f'VAL_GT {gt / "00001.png"} is 64x60, but a GT must be 4x its LQ' in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / 'out').exists()
    assert val_cli([str(lq), str(gt), str(gt), *common]) == 2
    assert 'is the input' in capsys.readouterr().err

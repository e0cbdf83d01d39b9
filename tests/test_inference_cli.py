"""The inference commands as users run them: blindsr_restore, blindsr_submit, blindsr_val and blindsr_demo in
subprocesses, with a tiny random generator written by blindsr.checkpoint.export_weights. Each subprocess pays ~4 s of
`import torch` on a busy 2-core machine, so variations of one command run in-process through its `*_cli` function."""
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


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    "A tiny MSRResNet (8 features, 1 block), random weights, stored in fp16 as the shipped file is."
    import torch
    from blindsr.models import build_generator
    from blindsr.checkpoint import export_weights
    torch.manual_seed(0)
    net = build_generator('msrresnet', num_feat=8, num_block=1)
    return export_weights(tmp_path_factory.mktemp('w') / 'tiny.pt', net, 'msrresnet', {'num_feat': 8, 'num_block': 1},
                          {'val_psnr': 12.34, 'step': 10}, half=True)


def write_lq(folder, n, h=16, w=16, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f'{i:05d}.png')
    return folder


def test_restore_folder_keeps_stems_and_scales_by_4(tmp_path, weights):
    lq = write_lq(tmp_path / 'lq', 3)
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(lq / 'photo.jpg')        # gray JPEG, other size
    r = run('blindsr_restore', lq, tmp_path / 'out', '--ckpt', weights, '--device', 'cpu', '--tta', 'flip')
    assert r.returncode == 0, r.stderr
    got = {p.name: Image.open(p).size for p in (tmp_path / 'out').iterdir()}
    assert got == {'00000.png': (64, 64), '00001.png': (64, 64), '00002.png': (64, 64), 'photo.png': (48, 40)}
    assert all(Image.open(p).mode == 'RGB' for p in (tmp_path / 'out').iterdir())


def test_restore_one_file_to_a_named_png(tmp_path, weights):
    lq = write_lq(tmp_path / 'lq', 1, 20, 24)
    r = run('blindsr_restore', lq / '00000.png', tmp_path / 'x' / 'face_sr.png', '--ckpt', weights, '--tile', '8')
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / 'x' / 'face_sr.png').size == (96, 80)


def test_corrupt_input_names_the_file(tmp_path, weights):
    lq = write_lq(tmp_path / 'lq', 2)
    (lq / '00001.png').write_bytes(b'not an image at all')
    r = run('blindsr_restore', lq, tmp_path / 'out', '--ckpt', weights, '--device', 'cpu')
    assert r.returncode == 2 and '00001.png' in r.stderr and 'Traceback' not in r.stderr, r.stderr


@pytest.mark.parametrize('kind', ['missing', 'truncated', 'not an image'])
def test_other_bad_inputs_name_the_file(tmp_path, weights, kind, capsys):
    from blindsr.inference import restore_cli
    lq = write_lq(tmp_path / 'lq', 2, 64, 64)
    bad = lq / '00001.png'
    if kind == 'missing': target, name = lq / '00009.png', '00009.png'
    elif kind == 'truncated': bad.write_bytes(bad.read_bytes()[:150]); target, name = lq, '00001.png'   # header intact
    else: (lq / 'notes.txt').write_text('x'); target, name = lq / 'notes.txt', 'notes.txt'
    assert restore_cli([str(target), str(tmp_path / 'out'), '--ckpt', str(weights), '--no-progress']) == 2
    assert name in capsys.readouterr().err


def test_missing_weights_are_a_clear_error(tmp_path):
    lq = write_lq(tmp_path / 'lq', 1)
    r = run('blindsr_restore', lq, tmp_path / 'out', '--ckpt', tmp_path / 'nope.pt')
    assert r.returncode == 2 and 'nope.pt' in r.stderr and 'Traceback' not in r.stderr


def test_submit_writes_a_zip_blindsr_evaluate_accepts(tmp_path, weights):
    lq = write_lq(tmp_path / 'test_lq', 4)
    z = tmp_path / 'submission.zip'
    r = run('blindsr_submit', lq, z, '--ckpt', weights, '--size', '64', '--device', 'cpu')
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(z) as zf:
        assert zf.namelist() == [f'results/{i:05d}.png' for i in range(4)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ['submission.zip', 'test_lq']    # nothing left behind
    from blindsr.inference import restore_cli, submit_cli
    assert submit_cli(['--check', str(z), '--size', '64', '--n-expected', '4']) == 0
    # the same restorations as "ground truth": blindsr_evaluate reads the zip and finds them identical
    assert restore_cli([str(lq), str(tmp_path / 'gt'), '--ckpt', str(weights), '--no-progress']) == 0
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
    from blindsr.inference import submit_cli
    assert submit_cli(['--check', str(zip_of(tmp_path / 'bad.zip', members)), '--size', '64']) == 2
    assert problem in capsys.readouterr().err


def test_submit_refuses_lq_not_named_like_the_test_set(tmp_path, weights, capsys):
    from blindsr.inference import submit_cli
    lq = write_lq(tmp_path / 'lq', 2)
    (lq / '00001.png').rename(lq / 'face.png')
    assert submit_cli([str(lq), str(tmp_path / 's.zip'), '--ckpt', str(weights), '--size', '64']) == 2
    assert 'face.png' in capsys.readouterr().err and not (tmp_path / 's.zip').exists()


def test_val_restores_and_scores_in_one_go(tmp_path, weights):
    lq = write_lq(tmp_path / 'val' / 'LQ', 3)
    write_lq(tmp_path / 'val' / 'GT', 3, 64, 64, seed=1)
    r = run('blindsr_val', lq, tmp_path / 'val' / 'GT', tmp_path / 'res' / 'val', '--ckpt', weights, '--tta', 'x8')
    assert r.returncode == 0, r.stderr
    assert 'PSNR' in r.stdout and 'SSIM' in r.stdout and 'bicubic' in r.stdout
    assert (tmp_path / 'res' / 'val_metrics.csv').read_text().count('\n') == 4
    assert len(list((tmp_path / 'res' / 'val').glob('*.png'))) == 3


def test_demo_writes_the_picture_and_prints_psnrs(tmp_path, weights):
    r = run('blindsr_demo', '--out', tmp_path, '--weights', weights, '--device', 'cpu')
    assert r.returncode == 0, r.stderr
    assert (tmp_path / 'demo.png').stat().st_size > 10_000
    lines = r.stdout.splitlines()
    assert any(l.strip().startswith('bicubic') and l.strip().endswith('dB') for l in lines), r.stdout
    assert any(l.strip().startswith('model') and 'dB' in l for l in lines), r.stdout
    assert '10 steps; val PSNR 12.34 dB' in r.stdout


def test_demo_without_weights_says_so(tmp_path):
    "With no --weights, the demo uses the shipped file, or stops with a clear message when there is none."
    from blindsr.checkpoint import DEFAULT_WEIGHTS
    r = run('blindsr_demo', '--out', tmp_path, '--device', 'cpu', timeout=300)
    if DEFAULT_WEIGHTS.exists():
        assert r.returncode == 0, r.stderr
        assert (tmp_path / 'demo.png').exists()
        # the shipped model must beat bicubic on the demo face (25.24 vs 24.79 dB when it was shipped)
        psnr = {l.split()[0]: float(l.split()[1]) for l in r.stdout.splitlines() if l.startswith(('  bicubic ', '  model '))}
        assert psnr['model'] > psnr['bicubic'] + 0.2, r.stdout
    else:
        assert r.returncode == 2 and 'no pretrained weights' in r.stderr and 'Traceback' not in r.stderr
        assert not (tmp_path / 'demo.png').exists()

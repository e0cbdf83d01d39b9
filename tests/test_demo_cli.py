"""`blindsr_demo` as a newcomer runs it: the picture, the PSNRs, and the shipped weights (or the message without them)."""
import os
import subprocess
import sys

ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}


def run(*args, timeout=120):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=ENV, timeout=timeout)


def test_demo_writes_the_picture_and_prints_psnrs(tmp_path, tiny_weights):
    r = run('blindsr_demo', '--out', tmp_path, '--weights', tiny_weights, '--device', 'cpu')
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


def test_mistakes_are_one_line_before_any_work(tmp_path, tiny_weights, capsys):
    "--device cuda without a GPU, a user's demo.png, the face being the picture: exit 2, one line, nothing written."
    import pytest
    import torch
    from PIL import Image
    from blindsr.demo import demo_cli
    common = ['--weights', str(tiny_weights)]
    (tmp_path / 'mine').mkdir()
    Image.new('RGB', (128, 128), 'red').save(tmp_path / 'mine' / 'demo.png')   # big enough for --image
    before = (tmp_path / 'mine' / 'demo.png').read_bytes()
    cases = [(['--out', str(tmp_path / 'mine')], 'not written by this command'),
             (['--out', str(tmp_path / 'mine'), '--image', str(tmp_path / 'mine' / 'demo.png')], 'is the input'),
             (['--out', str(tmp_path / 'a'), '--device', 'gpu'], "--device 'gpu'")]
    if not torch.cuda.is_available(): cases.append((['--out', str(tmp_path / 'a'), '--device', 'cuda'], "--device 'cuda'"))
    for args, want in cases:
        assert demo_cli([*common, *args]) == 2
        err = capsys.readouterr().err
        assert want in err and len(err.strip().splitlines()) == 1 and 'Traceback' not in err, err
    assert (tmp_path / 'mine' / 'demo.png').read_bytes() == before and not (tmp_path / 'a').exists()

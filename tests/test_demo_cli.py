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

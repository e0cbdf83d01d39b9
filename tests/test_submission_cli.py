"""`blindsr_submit` as users run it: the zip it writes, the zips it refuses, in subprocesses and in-process."""
import subprocess
import zipfile

import numpy as np
import pytest
from PIL import Image

from cli_helpers import ENV, run, write_lq


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


def test_check_against_test_lq_sees_a_missing_last_image(tmp_path, capsys):
    "Without TEST_LQ or --n-expected the count is assumed (and said); with TEST_LQ a zip lacking its last image fails."
    from blindsr.submission import submit_cli
    z = zip_of(tmp_path / 's.zip', {f'results/{i:05d}.png': png(64, 64) for i in range(3)})
    lq = write_lq(tmp_path / 'test_lq', 4)
    assert submit_cli(['--check', str(z), '--size', '64']) == 0
    assert 'count not checked: assumed 3 images' in capsys.readouterr().out
    assert submit_cli([str(lq), '--check', str(z), '--size', '64']) == 2
    assert 'missing image(s): 00003.png' in capsys.readouterr().err


def test_wrong_size_lq_and_bad_zip_paths_are_refused_before_restoring(tmp_path, tiny_weights, capsys):
    from blindsr.submission import submit_cli
    lq = write_lq(tmp_path / 'test_lq', 3)
    common = ['--ckpt', str(tiny_weights), '--device', 'cpu', '--no-progress']
    for args, want in [([str(lq), str(tmp_path / 's.zip'), '--size', '128'], 'pass --size 64'),
                       ([str(lq), str(lq / 's.zip'), '--size', '64'], 'lies inside the input'),
                       ([str(lq), str(tmp_path / 's.zip'), '--size', '64', '--keep', str(lq)], 'is the input')]:
        assert submit_cli([*args, *common]) == 2
        err = capsys.readouterr().err
        assert want in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['test_lq'] and len(list(lq.iterdir())) == 3


def test_an_interrupted_submit_keeps_the_previous_zip(tmp_path, tiny_weights, monkeypatch):
    "Ctrl-C after the new zip is written but before it is checked: the previous zip is intact, no temporary file is left."
    import blindsr.submission as sub
    from blindsr.checkpoint import load_generator
    lq = write_lq(tmp_path / 'test_lq', 2)
    net = load_generator(tiny_weights, device='cpu')
    z = sub.make_submission(net, lq, tmp_path / 'submission.zip', size=(64, 64), progress=False)
    before = z.read_bytes()
    def interrupted(*a, **k): raise KeyboardInterrupt
    monkeypatch.setattr(sub, 'check_submission', interrupted)
    with pytest.raises(KeyboardInterrupt): sub.make_submission(net, lq, z, size=(64, 64), progress=False, tta='flip')
    assert z.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['submission.zip', 'test_lq']


def test_a_killed_submit_leaves_no_half_written_zip(tmp_path, tiny_weights):
    "SIGKILL while it restores or zips: the final name holds the previous good zip, never a partial one."
    import signal
    import time
    import zipfile as zf_mod
    lq = write_lq(tmp_path / 'test_lq', 120)
    z = tmp_path / 'submission.zip'
    first = run('blindsr_submit', lq, z, '--ckpt', tiny_weights, '--size', '64', '--device', 'cpu', '--no-progress')
    assert first.returncode == 0, first.stderr
    before = z.read_bytes()
    p = subprocess.Popen(['blindsr_submit', str(lq), str(z), '--ckpt', str(tiny_weights), '--size', '64', '--device', 'cpu',
                          '--no-progress', '--batch', '1', '--tta', 'x8'], env=ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        work = [q for q in tmp_path.iterdir() if q.name.startswith('.blindsr_submit_') or q.name.endswith('.tmp')]
        if any(w.is_file() or len(list(w.glob('*.png'))) >= 5 for w in work): break
        time.sleep(0.05)
    assert p.poll() is None, 'finished before it could be killed'
    p.send_signal(signal.SIGKILL); p.communicate()
    assert z.read_bytes() == before                              # the previous zip, whole
    with zf_mod.ZipFile(z) as zf: assert zf.testzip() is None

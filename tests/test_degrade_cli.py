"""`blindsr_degrade` as a user runs it, and the presets held against LQ made by others (when the faces exist)."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


def test_degrade_cli_writes_lq_and_json(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / 'hq').mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(tmp_path / 'hq' / f'{i:05d}.png')
    Image.fromarray(rng.integers(0, 256, (64, 80), dtype=np.uint8)).save(tmp_path / 'hq' / 'gray.jpg')  # not RGB
    r = subprocess.run(['blindsr_degrade', tmp_path / 'hq', tmp_path / 'lq', '--preset', 'ai6126_2023', '--workers', '2'],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    outs = sorted(p.name for p in (tmp_path / 'lq').glob('*.png'))
    assert outs == ['00000.png', '00001.png', '00002.png', 'gray.png']
    assert all(Image.open(tmp_path / 'lq' / f).size == (20, 16) for f in outs)
    meta = json.loads((tmp_path / 'lq' / 'degradation.json').read_text())
    assert meta['preset'] == 'ai6126_2023' and meta['seed'] == 0 and len(meta['images']) == 4
    assert set(meta['images']['gray']) == {'hq', 'hq_sha256', 'params'} and meta['images']['gray']['hq'] == 'gray.jpg'


def test_degrade_cli_refuses_a_resume_from_changed_faces(tmp_path):
    "Rerunning into a set whose HQ face changed is refused on one line that names the folder and the face."
    rng = np.random.default_rng(0)
    (tmp_path / 'hq').mkdir()
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / 'hq' / f'{i:05d}.png')
    cmd = ['blindsr_degrade', tmp_path / 'hq', tmp_path / 'lq', '--preset', 'bicubic', '--workers', '1']
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / 'hq' / '00001.png')
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert str(tmp_path / 'lq') in r.stderr and '00001' in r.stderr and '--overwrite' in r.stderr


def test_degrade_cli_names_bad_inputs(tmp_path):
    r = subprocess.run(['blindsr_degrade', tmp_path / 'nothing', tmp_path / 'lq'], capture_output=True, text=True)
    assert r.returncode == 2 and 'nothing' in r.stderr


@pytest.mark.parametrize('preset,ref', [('ai6126_2024', 'lq2024-ref'), ('ai6126_2023', 'lq2023')])
def test_preset_matches_reference_lq(ffhq200, tmp_path, preset, ref):
    "The degradation issue's measure: every KS distance of lq_fidelity.py under its critical value (seed 0)."
    subprocess.run(['blindsr_degrade', ffhq200 / 'gt', tmp_path / preset, '--preset', preset, '--seed', '0'],
                   check=True, capture_output=True)
    tool = ffhq200.parent.parent / 'tools' / 'lq_fidelity.py'
    res = json.loads(subprocess.run([sys.executable, tool, ffhq200 / 'gt', tmp_path / preset, ffhq200 / ref],
                                    capture_output=True, text=True, check=True).stdout)
    assert res['passed'], res


def test_every_face_is_checked_before_the_first_lq_is_written(tmp_path, capsys):
    "A .tif among the faces, or a broken last face: refused, named, and OUT_DIR is not even created."
    from blindsr.lqset import degrade_cli
    rng = np.random.default_rng(0)
    (tmp_path / 'hq').mkdir()
    for i in range(3): Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / 'hq' / f'{i:05d}.png')
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / 'hq' / '00003.tif')
    assert degrade_cli([str(tmp_path / 'hq'), str(tmp_path / 'lq'), '--workers', '1']) == 2
    assert '00003.tif' in capsys.readouterr().err
    (tmp_path / 'hq' / '00003.tif').unlink()
    data = (tmp_path / 'hq' / '00002.png').read_bytes()
    (tmp_path / 'hq' / '00009.png').write_bytes(data[:len(data) // 2])          # sorts last: found before any write
    assert degrade_cli([str(tmp_path / 'hq'), str(tmp_path / 'lq'), '--workers', '1']) == 2
    err = capsys.readouterr().err
    assert '00009.png' in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / 'lq').exists()

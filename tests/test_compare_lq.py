"""`blindsr_compare_lq` as a user runs it: a subprocess on synthetic LQ sets (exit codes, table, JSON, picture),
and on the real FFHQ faces beside the checkout (skipped where they are absent)."""
import json
import subprocess

import cv2
import numpy as np
import pytest
from PIL import Image


def fake_gt(rng, size=128):
    "A smooth random colour field with hard-edged discs and a bar: (size, size, 3) uint8."
    img = cv2.resize(rng.uniform(40, 215, (6, 6, 3)), (size, size), interpolation=cv2.INTER_CUBIC)
    for _ in range(3):
        c = tuple(int(v) for v in rng.integers(0, size, 2))
        cv2.circle(img, c, int(rng.integers(size // 10, size // 4)), tuple(float(v) for v in rng.uniform(30, 225, 3)), -1)
    y = int(rng.integers(0, size - 8))
    img[y:y + 5] = rng.uniform(30, 225, 3)
    return np.clip(np.round(cv2.GaussianBlur(img, (0, 0), 0.7)), 0, 255).astype(np.uint8)


def jpeg(lq, rng):
    ok, buf = cv2.imencode('.jpg', lq[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 61))])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


def noise(lq, rng):
    return np.clip(np.round(lq + rng.normal(0, rng.uniform(3, 7), lq.shape)), 0, 255).astype(np.uint8)


def make_set(root, name, degrade, seed, n=40):
    "n GT faces (128x128) in root/gt and their 64x64 LQ in root/name; stems start with the seed so sets never clash."
    rng = np.random.default_rng(seed)
    (root / name).mkdir(parents=True); (root / 'gt').mkdir(exist_ok=True)
    for i in range(n):
        gt = fake_gt(rng)
        Image.fromarray(gt).save(root / 'gt' / f'{seed:02d}{i:03d}.png')
        lq = cv2.resize(gt, (64, 64), interpolation=cv2.INTER_AREA)
        Image.fromarray(np.ascontiguousarray(degrade(lq, rng))).save(root / name / f'{seed:02d}{i:03d}.png')
    return root / name


def compare(*args):
    return subprocess.run(['blindsr_compare_lq', *map(str, args), '--quiet'], capture_output=True, text=True)


@pytest.fixture(scope='module')
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp('lq')
    return root, make_set(root, 'jpegA', jpeg, 1), make_set(root, 'jpegB', jpeg, 2), make_set(root, 'noiseA', noise, 3)


def test_same_pipeline_passes_and_draws_beside_ours(sets):
    root, ja, jb, _ = sets
    r = compare(ja, jb)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'same degradation' in r.stdout
    png = root / 'jpegA_vs_jpegB.png'
    assert png.exists() and Image.open(png).format == 'PNG'


def test_other_pipeline_fails_with_json(sets, tmp_path):
    root, ja, _, na = sets
    r = compare(ja, na, '--json', tmp_path / 'c.json', '--plot', tmp_path / 'p.png')
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'different:' in r.stdout and 'cleaner' in r.stdout
    d = json.loads((tmp_path / 'c.json').read_text())
    assert d['passed'] is False and d['n_ours'] == d['n_theirs'] == 40
    assert d['statistics']['noise']['differs'] and d['statistics']['noise']['direction'] == 'cleaner'
    assert set(d['per_image']['ours']) == {p.stem for p in ja.iterdir()}
    assert (tmp_path / 'p.png').exists()


def test_with_gt(sets, tmp_path):
    root, ja, jb, na = sets
    same = compare(ja, jb, '--gt', root / 'gt', '--scale', '2', '--no-plot', '--json', tmp_path / 's.json')
    assert same.returncode == 0, same.stdout + same.stderr
    assert 'psnr_bicubic' in json.loads((tmp_path / 's.json').read_text())['statistics']
    diff = compare(na, ja, '--gt', root / 'gt', '--scale', '2', '--no-plot')
    assert diff.returncode == 1 and 'noisier' in diff.stdout
    wrong = compare(ja, jb, '--gt', root / 'gt', '--no-plot')          # 2x GT, but the course's 4x is the default
    assert wrong.returncode == 2 and '--gt' in wrong.stderr and '128x128 for the 64x64 LQ' in wrong.stderr, wrong.stderr


def test_input_errors_exit_2_naming_the_path(sets, tmp_path):
    root, ja, _, _ = sets
    r = compare(tmp_path / 'missing', ja)
    assert r.returncode == 2 and 'missing' in r.stderr
    (tmp_path / 'few').mkdir()
    for p in sorted(ja.iterdir())[:3]: (tmp_path / 'few' / p.name).write_bytes(p.read_bytes())
    r = compare(ja, tmp_path / 'few', '--no-plot')
    assert r.returncode == 2 and 'too few images' in r.stderr
    (tmp_path / 'orphans').mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / 'orphans' / '77777.png')
    r = compare(tmp_path / 'orphans', ja, '--gt', root / 'gt', '--scale', '2')
    assert r.returncode == 2 and 'no GT partner' in r.stderr and '77777' in r.stderr
    bad = tmp_path / 'bad'; bad.mkdir()
    for p in sorted(ja.iterdir()): (bad / p.name).write_bytes(p.read_bytes())
    (bad / '01005.png').write_bytes(b'\x89PNG\r\n\x1a\n broken')
    r = compare(bad, ja, '--no-plot')
    assert r.returncode == 2 and '01005.png' in r.stderr


def test_real_faces_2023_vs_2024(ffhq200, tmp_path):
    "The organisers' 2023 LQ and the reference 2024 LQ of the same faces differ; two halves of the 2024 set do not."
    halves = [tmp_path / 'a', tmp_path / 'b']
    for h in halves: h.mkdir()
    for i, p in enumerate(sorted((ffhq200 / 'lq2024-ref').glob('*.png'))):
        (halves[i >= 100] / p.name).write_bytes(p.read_bytes())
    for gt in [[], ['--gt', ffhq200 / 'gt']]:
        r = compare(ffhq200 / 'lq2023', ffhq200 / 'lq2024-ref', *gt, '--no-plot', '--json', tmp_path / 'r.json')
        assert r.returncode == 1, r.stdout + r.stderr
        d = json.loads((tmp_path / 'r.json').read_text())['statistics']
        assert d['noise']['differs'] and d['jpeg_quality']['differs'] and d['blockiness']['differs']
        r = compare(*halves, *gt, '--no-plot')
        assert r.returncode == 0, r.stdout + r.stderr


def test_non_square_sets_get_a_verdict(tmp_path, capsys):
    "Portrait LQ (96x128): measured along both directions; a verdict (exit 0 or 1), never an error (issue 16's bug)."
    from blindsr.compare_lq import compare_lq_cli
    rng = np.random.default_rng(5)
    for name in ('a', 'b'):
        (tmp_path / name).mkdir()
        for i in range(12):
            gt = cv2.resize(fake_gt(rng), (96, 128), interpolation=cv2.INTER_AREA)   # width 96, height 128
            Image.fromarray(jpeg(np.ascontiguousarray(gt), rng)).save(tmp_path / name / f'{i:05d}.png')
    assert compare_lq_cli([str(tmp_path / 'a'), str(tmp_path / 'b'), '--quiet', '--no-plot']) in (0, 1)
    assert '96x128' in capsys.readouterr().out


def test_outputs_never_replace_inputs_or_users_files(sets, tmp_path, capsys):
    "--json inside OURS, --plot over one of THEIR images or over a user's picture, a set of mixed sizes: one line, nothing written."
    from blindsr.compare_lq import compare_lq_cli
    root, ja, jb, _ = sets
    theirs_first = sorted(jb.iterdir())[0]
    before = theirs_first.read_bytes()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / 'photo.png')
    (tmp_path / 'mixed').mkdir()
    for p in sorted(ja.iterdir())[:12]: (tmp_path / 'mixed' / p.name).write_bytes(p.read_bytes())
    Image.fromarray(np.zeros((48, 48, 3), np.uint8)).save(tmp_path / 'mixed' / '99999.png')
    for args, want in [(['--json', str(ja / 'stats.json')], 'lies inside the input'),
                       (['--plot', str(theirs_first)], 'lies inside the input'),
                       (['--plot', str(tmp_path / 'photo.png')], 'not written by this command')]:
        assert compare_lq_cli([str(ja), str(jb), '--quiet', *args]) == 2
        err = capsys.readouterr().err
        assert want in err and len(err.strip().splitlines()) == 1, err
    assert compare_lq_cli([str(tmp_path / 'mixed'), str(jb), '--quiet', '--no-plot']) == 2
    assert '99999.png (48x48)' in capsys.readouterr().err
    assert theirs_first.read_bytes() == before and not (ja / 'stats.json').exists()
    assert Image.open(tmp_path / 'photo.png').size == (8, 8)

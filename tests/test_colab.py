"""The Colab notebook: the committed colab/blindsr-colab.ipynb is what `blindsr_colab build` makes now, the README's
"Open in Colab" badge points at it, and it runs top to bottom on a CPU in smoke mode with a folder standing in for
Google Drive — twice, the second run resuming from the checkpoint the first left on "Drive", as after a disconnect.
The Colab-only calls (drive.mount, files.upload, files.download) sit behind on_colab() and are not reached here."""
import json
import os
import subprocess
import sys
import zipfile

from blindsr.kaggle_build import COLAB_DIR, COLAB_FILE, colab_badge, colab_stale_files, check_notebook, packed_wheel

RUN = '''
from execnb.shell import CaptureShell
CaptureShell().execute({src!r}, {dest!r}, exc_stop=True)
'''


def test_committed_colab_notebook_equals_a_fresh_build(root):
    "If this fails: run `blindsr_colab build` and commit colab/."
    assert colab_stale_files(root / COLAB_DIR, root) == [], 'colab/ differs from a fresh build: run blindsr_colab build and commit it'
    nb = json.loads((root / COLAB_DIR / COLAB_FILE).read_text())
    assert check_notebook(root / COLAB_DIR / COLAB_FILE) == [] and nb['metadata']['accelerator'] == 'GPU'
    assert packed_wheel(nb)[0].startswith('blindsr-0.1.0+')


def test_readme_badge_opens_the_committed_notebook_from_settings_repository(root):
    badge = colab_badge(root)
    assert badge in (root / 'README.md').read_text()
    assert f'/blob/main/{COLAB_DIR}/{COLAB_FILE})' in badge and 'colab.research.google.com/github/' in badge


def run_colab(root, tmp_path, name, drive):
    dest = tmp_path / f'{name}.ipynb'
    env = {**os.environ, 'BLINDSR_SMOKE': '1', 'BLINDSR_DRIVE': str(drive), 'BLINDSR_WORKING': str(tmp_path / f'{name}_local'),
           'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
    for k in ('IN_TEST', 'COLAB_RELEASE_TAG', 'COLAB_GPU', 'COLAB_BACKEND_VERSION'): env.pop(k, None)
    r = subprocess.run([sys.executable, '-c', RUN.format(src=str(root / COLAB_DIR / COLAB_FILE), dest=str(dest))],
                       capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-6000:])
    return '\n'.join(''.join(o.get('text', '')) for c in json.loads(dest.read_text())['cells'] for o in c.get('outputs', []))


def test_colab_notebook_runs_in_smoke_mode_and_a_second_run_resumes_from_drive(root, tmp_path):
    drive = tmp_path / 'MyDrive'
    log = run_colab(root, tmp_path, 'first', drive)
    run = drive / 'blindsr'
    assert log.splitlines()[0].startswith('Colab: Runtime > Change runtime type')
    assert 'blindsr 0.1.0' in log and 'SMOKE MODE' in log and 'training from scratch' in log
    assert f'{run / "submission.zip"} is ready' in log                    # download() off Colab: says where it is
    for f in ('submission.zip', 'curves.png', 'val_grid.png', 'val_scores.csv', 'colab_summary.json', 'run/last.ckpt', 'run/best.pt'):
        assert (run / f).is_file(), f
    with zipfile.ZipFile(run / 'submission.zip') as zf: assert len(zf.namelist()) == 4
    assert json.loads((run / 'colab_summary.json').read_text())['train']['steps'] == 6

    log2 = run_colab(root, tmp_path, 'second', drive)                     # a new runtime: local disk gone, Drive kept
    assert f'resuming {run / "run" / "last.ckpt"}: step 6' in log2
    rec = json.loads((run / 'colab_summary.json').read_text())
    assert rec['resumed_from']['step'] == 6 and rec['train']['steps'] == 12
    steps = [l.split(',')[0] for l in (run / 'run' / 'log.csv').read_text().splitlines()[1:]]
    assert steps == ['2', '4', '6', '8', '10', '12']


def test_colab_without_data_names_the_drive_path_it_looked_for(root, tmp_path):
    "A full run (not smoke mode) with an empty Drive folder: it stops before training, naming the Drive path of the zip."
    dest = tmp_path / 'nodata.ipynb'
    env = {**os.environ, 'BLINDSR_SMOKE': '0', 'BLINDSR_DRIVE': str(tmp_path / 'MyDrive'), 'BLINDSR_WORKING': str(tmp_path / 'local'),
           'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
    for k in ('IN_TEST', 'COLAB_RELEASE_TAG', 'COLAB_GPU', 'COLAB_BACKEND_VERSION'): env.pop(k, None)
    r = subprocess.run([sys.executable, '-c', RUN.format(src=str(root / COLAB_DIR / COLAB_FILE), dest=str(dest))],
                       capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert r.returncode != 0
    assert f'no course data: looked for {tmp_path / "MyDrive" / "blindsr" / "ai6126-faces.zip"} (My Drive/blindsr/ai6126-faces.zip)' \
        in r.stdout + r.stderr, (r.stdout + r.stderr)[-3000:]
    assert not (tmp_path / 'MyDrive' / 'blindsr' / 'run').exists()

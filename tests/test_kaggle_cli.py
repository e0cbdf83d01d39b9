"""`blindsr_kaggle push | status | output` against a stand-in `kaggle` executable on PATH (a script that records its
arguments and answers like the Kaggle CLI 2.2.5, or fails as it does without `six`): no network, no credentials. HOME
points to an empty folder so that the machine's own Kaggle credentials are never found. (tests/test_kaggle_real.py
runs the real package's code offline.)"""
import json
import os
import subprocess
import sys
import zipfile
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from blindsr.kaggle_build import KERNEL_DIR
from blindsr.kaggle_client import kaggle_cli

FAKE = '''#!{python}
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
if os.environ.get("FAKE_BROKEN"):
    sys.exit("Traceback (most recent call last):\\n  File \\"kaggle/models/upload_file.py\\", line 22, in <module>\\nModuleNotFoundError: No module named 'six'")
if args == ["--version"]:
    print("Kaggle CLI 2.2.5"); sys.exit(0)
if args[:2] == ["datasets", "status"]:          # read-only, not logged: what push asks before it pushes
    print(os.environ.get("FAKE_DATASET", '{{"status": "ready", "current_version_number": 1}}')); sys.exit(0)
with open(os.environ["FAKE_KAGGLE_LOG"], "a") as f: f.write(json.dumps(args) + "\\n")
if args[:2] == ["kernels", "status"]:
    print(f'{{args[2]}} has status "{{os.environ.get("FAKE_STATUS", "KernelWorkerStatus.COMPLETE")}}"')
    if "error" in os.environ.get("FAKE_STATUS", "").lower(): print('Failure message: "Your notebook tried to allocate more memory"')
elif args[:2] == ["kernels", "push"]:
    print(os.environ.get("FAKE_PUSH", "Kernel version 3 successfully pushed.  Please check progress at https://www.kaggle.com/code/alice/blindsr-train"))
elif args[:2] == ["kernels", "output"]:
    dest = Path(args[args.index("-p") + 1])
    for name in os.environ.get("FAKE_OUTPUT_FILES", "").split(","):
        if name: (dest / name).parent.mkdir(parents=True, exist_ok=True); (dest / name).write_bytes(Path(os.environ["FAKE_OUTPUT_DIR"], name).read_bytes())
    print(f"Output file downloaded to {{dest}}")
'''
CREDS = ('KAGGLE_USERNAME', 'KAGGLE_KEY', 'KAGGLE_API_TOKEN', 'KAGGLE_CONFIG_DIR', 'XDG_CONFIG_HOME', 'KAGGLE_KERNEL_RUN_TYPE')
SECRET = 'k3y-that-must-never-be-printed'


@pytest.fixture
def kaggle(tmp_path, monkeypatch, root):
    "A fake kaggle on PATH, an empty HOME, a kernel built for user alice; returns (kernel dir, calls log)."
    bin_ = tmp_path / 'bin'; bin_.mkdir()
    (bin_ / 'kaggle').write_text(FAKE.format(python=sys.executable)); (bin_ / 'kaggle').chmod(0o755)
    for k in CREDS: monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    monkeypatch.setenv('PATH', f"{bin_}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv('FAKE_KAGGLE_LOG', str(tmp_path / 'calls.log'))
    kdir = tmp_path / 'kernel'
    assert kaggle_cli(['build', '--dir', str(kdir), '--user', 'alice', '--dataset', 'ai6126-faces']) == 0
    return kdir, tmp_path / 'calls.log'


def calls(log):
    return [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []


def test_dry_run_prints_command_metadata_and_checks_and_sends_nothing(kaggle, capsys):
    kdir, log = kaggle
    assert kaggle_cli(['push', '--dry-run', '--dir', str(kdir)]) == 0
    out = capsys.readouterr().out
    assert f'would run: kaggle kernels push -p {kdir}' in out
    assert '"id": "alice/blindsr-train"' in out and '"machine_shape": "NvidiaTeslaP100"' in out
    assert 'ok       the kernel is what nbs/10_kaggle_run.ipynb and blindsr/ build now' in out
    assert 'ok       carries blindsr-0.1.0+' in out and 'ok       kaggle CLI 2.2.5 runs' in out
    assert 'MISSING  Kaggle credentials' in out and '~/.kaggle/access_token' in out and '~/.kaggle/kaggle.json' in out
    assert 'runs P100 requests on T4 x2' in out and calls(log) == []


def test_a_cli_that_cannot_start_is_reported_with_the_fix(kaggle, monkeypatch, capsys):
    "`pip install kaggle` alone gives a kaggle that dies on `import six`: found on PATH, but not working."
    kdir, log = kaggle
    monkeypatch.setenv('FAKE_BROKEN', '1')
    assert kaggle_cli(['push', '--dry-run', '--dir', str(kdir)]) == 0           # the kernel itself is fine
    out = capsys.readouterr().out
    assert "MISSING  " in out and "--version fails: ModuleNotFoundError: No module named 'six'" in out
    assert "pip install 'kaggle==2.2.5' six" in out
    monkeypatch.setenv('KAGGLE_USERNAME', 'alice'); monkeypatch.setenv('KAGGLE_KEY', SECRET)
    assert kaggle_cli(['push', '--dir', str(kdir)]) == 2
    assert "pip install 'kaggle==2.2.5' six" in capsys.readouterr().err and calls(log) == []


def test_credentials_where_kaggle_looks_and_nowhere_else(kaggle, monkeypatch, tmp_path, capsys):
    kdir, log = kaggle
    home = tmp_path / 'home'
    (home / '.config' / 'kaggle').mkdir(parents=True); (home / '.config' / 'kaggle' / 'access_token').write_text('x')
    assert kaggle_cli(['push', '--dir', str(kdir)]) == 2                       # tokens are only read from ~/.kaggle
    assert 'no Kaggle credentials found' in capsys.readouterr().err
    (home / '.kaggle').mkdir(); (home / '.kaggle' / 'access_token.txt').write_text('x')
    assert kaggle_cli(['push', '--dir', str(kdir)]) == 0
    assert calls(log) == [['kernels', 'push', '-p', str(kdir)]]


def test_push_without_credentials_says_how_to_set_them_up(kaggle, capsys):
    kdir, log = kaggle
    assert kaggle_cli(['push', '--dir', str(kdir)]) == 2
    err = capsys.readouterr().err
    assert 'no Kaggle credentials found' in err and 'KAGGLE_USERNAME' in err and calls(log) == []


def test_push_without_the_kaggle_command(kaggle, monkeypatch, capsys):
    kdir, _ = kaggle
    monkeypatch.setenv('PATH', str(kdir))                        # no kaggle here
    monkeypatch.setenv('KAGGLE_USERNAME', 'alice'); monkeypatch.setenv('KAGGLE_KEY', SECRET)
    assert kaggle_cli(['push', '--dir', str(kdir)]) == 2
    assert "the kaggle command is not on PATH: pip install 'kaggle==2.2.5' six" in capsys.readouterr().err


def test_push_runs_the_cli_and_never_prints_the_key(kaggle, monkeypatch, capsys):
    kdir, log = kaggle
    monkeypatch.setenv('KAGGLE_USERNAME', 'alice'); monkeypatch.setenv('KAGGLE_KEY', SECRET)
    assert kaggle_cli(['push', '--dir', str(kdir)]) == 0
    out, err = capsys.readouterr()
    assert calls(log) == [['kernels', 'push', '-p', str(kdir)]]
    assert 'successfully pushed' in out and SECRET not in out + err
    monkeypatch.setenv('FAKE_PUSH', 'Kernel push error: Notebook not found')
    assert kaggle_cli(['push', '--dir', str(kdir)]) == 1


def test_push_refuses_a_stale_kernel_and_the_placeholder_user(kaggle, monkeypatch, capsys, root):
    kdir, log = kaggle
    monkeypatch.setenv('KAGGLE_USERNAME', 'alice'); monkeypatch.setenv('KAGGLE_KEY', SECRET)
    nb = kdir / 'blindsr-train.ipynb'
    nb.write_text(nb.read_text().replace('HOURS = 11.0', 'HOURS = 2.0'))
    assert kaggle_cli(['push', '--dir', str(kdir)]) == 1
    assert 'differ from a fresh build' in capsys.readouterr().out
    assert kaggle_cli(['push', '--dir', str(root / KERNEL_DIR)]) == 1
    out = capsys.readouterr().out
    assert "FAIL     built for the placeholder user 'your-kaggle-name'" in out and calls(log) == []


@pytest.mark.parametrize('status, rc, word', [('KernelWorkerStatus.COMPLETE', 0, 'complete'), ('complete', 0, 'complete'),
                                              ('KernelWorkerStatus.RUNNING', 3, 'running'), ('KernelWorkerStatus.QUEUED', 3, 'queued'),
                                              ('KernelWorkerStatus.ERROR', 1, 'error'), ('error', 1, 'error'),
                                              ('KernelWorkerStatus.CANCEL_ACKNOWLEDGED', 1, 'cancelled')])
def test_status_exit_codes(kaggle, monkeypatch, capsys, status, rc, word):
    kdir, log = kaggle
    monkeypatch.setenv('KAGGLE_USERNAME', 'alice'); monkeypatch.setenv('KAGGLE_KEY', SECRET)
    monkeypatch.setenv('FAKE_STATUS', status)
    assert kaggle_cli(['status', '--dir', str(kdir)]) == rc
    out = capsys.readouterr().out
    assert f'alice/blindsr-train: {word}' in out and calls(log) == [['kernels', 'status', 'alice/blindsr-train']]
    if word == 'error': assert 'Failure message' in out


def test_status_as_a_command_in_a_fresh_process(kaggle, tmp_path):
    kdir, _ = kaggle
    env = {**os.environ, 'KAGGLE_USERNAME': 'alice', 'KAGGLE_KEY': SECRET, 'FAKE_STATUS': 'KernelWorkerStatus.ERROR'}
    r = subprocess.run(['blindsr_kaggle', 'status', 'alice/other-kernel', '--dir', str(kdir)], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and 'alice/other-kernel: error' in r.stdout and SECRET not in r.stdout + r.stderr
    r = subprocess.run(['blindsr_kaggle', 'status', '--dir', str(kdir)], capture_output=True, text=True,
                       env={**env, 'KAGGLE_USERNAME': '', 'KAGGLE_KEY': ''})
    assert r.returncode == 2 and 'no Kaggle credentials found' in r.stderr


def submission_zip(path, n=2, size=512):
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, 'w') as zf:
        for i in range(n):
            buf = BytesIO(); Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, 'PNG')
            zf.writestr(f'results/{i:05d}.png', buf.getvalue())


def test_output_downloads_and_checks_the_submission(kaggle, monkeypatch, tmp_path, capsys):
    kdir, log = kaggle
    monkeypatch.setenv('KAGGLE_USERNAME', 'alice'); monkeypatch.setenv('KAGGLE_KEY', SECRET)
    src = tmp_path / 'kaggle_side'; src.mkdir()
    submission_zip(src / 'submission.zip')
    (src / 'kaggle_summary.json').write_text(json.dumps({'val_psnr': 26.1, 'bicubic_psnr': 24.0, 'kernel_minutes': 655.0, 'smoke': False}))
    monkeypatch.setenv('FAKE_OUTPUT_DIR', str(src)); monkeypatch.setenv('FAKE_OUTPUT_FILES', 'submission.zip,kaggle_summary.json')
    dest = tmp_path / 'got'
    assert kaggle_cli(['output', '--dir', str(kdir), '-p', str(dest)]) == 0
    out = capsys.readouterr().out
    assert calls(log) == [['kernels', 'output', 'alice/blindsr-train', '-p', str(dest), '--force']]
    assert 'a valid submission of 2 images' in out and 'val PSNR 26.1' in out
    (src / 'submission.zip').write_bytes(b'not a zip')
    assert kaggle_cli(['output', '--dir', str(kdir), '-p', str(tmp_path / 'got2')]) == 1
    monkeypatch.setenv('FAKE_OUTPUT_FILES', '')
    assert kaggle_cli(['output', '--dir', str(kdir), '-p', str(tmp_path / 'got3')]) == 1
    assert 'no submission.zip' in capsys.readouterr().err


def test_push_refuses_a_dataset_that_is_not_ready_and_says_so_when_kaggle_created_a_version_anyway(kaggle, monkeypatch, capsys):
    kdir, log = kaggle
    monkeypatch.setenv('KAGGLE_USERNAME', 'alice'); monkeypatch.setenv('KAGGLE_KEY', SECRET)
    monkeypatch.setenv('FAKE_DATASET', '{"status": "blobs_received", "current_version_number": 1}')
    assert kaggle_cli(['push', '--dir', str(kdir)]) == 1
    err = capsys.readouterr().err
    assert "not pushed: the dataset alice/ai6126-faces is not ready (Kaggle reports 'blobs_received')" in err and calls(log) == []
    monkeypatch.delenv('FAKE_DATASET')
    monkeypatch.setenv('FAKE_PUSH', 'The following are not valid dataset sources and could not be added to the kernel: '
                                    "['alice/ai6126-faces']\nKernel version 2 successfully pushed.  Please check progress at https://x")
    assert kaggle_cli(['push', '--dir', str(kdir)]) == 1
    err = capsys.readouterr().err
    assert 'Kaggle created kernel version 2 ANYWAY' in err and 'https://www.kaggle.com/code/alice/blindsr-train' in err


def test_kaggle_steps_on_an_old_python_stop_at_once_with_the_version_they_need(kaggle, monkeypatch, capsys):
    kdir, log = kaggle
    monkeypatch.setattr(sys, 'version_info', (3, 10, 12, 'final', 0))
    monkeypatch.setenv('KAGGLE_USERNAME', 'alice'); monkeypatch.setenv('KAGGLE_KEY', SECRET)
    for argv in (['push'], ['status'], ['dataset', '--user', 'alice']):
        assert kaggle_cli([*argv, '--dir', str(kdir)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and 'need Python >= 3.11' in err and 'Python 3.10.12' in err, err
    assert calls(log) == []
    assert kaggle_cli(['build', '--dir', str(kdir)]) == 0                  # building needs no kaggle: any Python

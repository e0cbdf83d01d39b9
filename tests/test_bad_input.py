"""Every blindsr command driven as a careless user drives it, in a subprocess, asserting the CORRECT behaviour.

The rules (from the bad-input issue), checked for every case:

* a user mistake ends with exit code 2 (argparse's usage errors are 2 too), a message on stderr that names the offending
  flag or file, and no Python traceback in stdout or stderr;
* no input file is ever changed: every input file, and the listing of every input folder, is hashed before and after;
* data loss: an output folder that is, contains or lies inside an input is refused; an output folder holding files
  the command did not write is refused (unless --overwrite, where there is one);
* impossible numbers, unknown names, malformed generator kwargs and over-cap generators are refused, the generator
  ones before any expensive work;
* --device cuda without a GPU is a one-line error;
* Ctrl-C (SIGINT) in blindsr_train and blindsr_degrade: one line saying where it stopped and to rerun the same command,
  no traceback, exit code 130 (the shell's 128 + SIGINT).

Tests generate their own tiny images (64x64 HQ, 16x16 LQ) and a tiny generator (8 features, 1 block, trained 2 steps).
Each case is one subprocess (~3 s of `import torch`). Set BADINPUT_RECORD=path.jsonl to log what every case observed
(used to write the baseline report); the assertions do not depend on it.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from PIL import Image


# --------------------------------------------------------------------------------------------------------------------
# the harness
# --------------------------------------------------------------------------------------------------------------------
TINY_KW = '{"num_feat": 8, "num_block": 1}'
TRACEBACK = 'Traceback (most recent call last)'
BIN = Path(sys.executable).parent


def _has_cuda() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except Exception:
        return False


NO_GPU = pytest.mark.skipif(_has_cuda(), reason='this case is about --device cuda on a machine without a GPU')


def exe(name: str) -> str:
    "The console script beside this Python (the venv's), else the name on PATH."
    p = BIN / name
    return str(p) if p.exists() else name


def command(name: str) -> list[str]:
    """How to start a blindsr command: its console script; or, with BADINPUT_SCRIPTS=path/to/settings.ini (to test a
    checkout other than the installed one, put first on PYTHONPATH), `python -c` calling the entry point it names."""
    spec = os.environ.get('BADINPUT_SCRIPTS')
    if spec:
        m = re.search(r'^console_scripts\s*=\s*(.*)$', Path(spec).read_text(), re.M)
        eps = dict(e.split('=', 1) for e in (m.group(1).split() if m else []))
        if name in eps:
            mod, fn = eps[name].split(':')
            return [sys.executable, '-c', f'import sys; from {mod} import {fn}; sys.argv[0] = {name!r}; sys.exit({fn}())']
    return [exe(name)]


def env_for(home: Path | None = None) -> dict:
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'MPLBACKEND': 'Agg', 'PYTHONUNBUFFERED': '1'}
    env.pop('PYTEST_CURRENT_TEST', None)
    if home is not None:     # no Kaggle credentials can be found, nothing is ever sent
        for k in list(env):
            if k.startswith('KAGGLE'): env.pop(k)
        env.update(HOME=str(home), KAGGLE_CONFIG_DIR=str(home / '.kaggle'), XDG_CONFIG_HOME=str(home / '.config'),
                   MPLCONFIGDIR=str(home / '.mpl'))
    return env


def _sha(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''): h.update(chunk)
    return h.hexdigest()


def snapshot(paths) -> dict:
    "path -> None (absent) | file hash | {relative path: hash or 'dir'} of a whole folder."
    snap = {}
    for p in paths:
        p = Path(p)
        if p.is_dir():
            snap[str(p)] = {str(q.relative_to(p)): ('dir' if q.is_dir() else f'{q.stat().st_size}:{_sha(q)}')
                            for q in sorted(p.rglob('*'))}
        elif p.is_file(): snap[str(p)] = f'{p.stat().st_size}:{_sha(p)}'
        else: snap[str(p)] = None
    return snap


def snapshot_diff(before: dict, after: dict) -> list[str]:
    out = []
    for k, b in before.items():
        a = after.get(k)
        if a == b: continue
        if isinstance(b, dict) and isinstance(a, dict):
            added = sorted(set(a) - set(b)); gone = sorted(set(b) - set(a))
            changed = sorted(x for x in set(a) & set(b) if a[x] != b[x])
            bits = ([f'added {added[:3]}'] if added else []) + ([f'removed {gone[:3]}'] if gone else []) + \
                   ([f'changed {changed[:3]}'] if changed else [])
            out.append(f'{Path(k).name}/: ' + ', '.join(bits))
        else:
            out.append(f'{Path(k).name}: ' + ('created' if b is None else 'deleted' if a is None else
                                              'replaced by a folder' if isinstance(a, dict) else 'changed'))
    return out


PROGRESS = re.compile(r'\d+%\||it/s\]|img/s\]|s/it\]|s/img\]')


def err_lines(text: str) -> list[str]:
    "Non-empty lines of stderr, tqdm progress bars removed."
    return [l for l in re.split(r'[\r\n]+', text) if l.strip() and not PROGRESS.search(l)]


def traceback_summary(text: str) -> str | None:
    "'ExcType: message' of the last traceback in `text`, or None."
    if TRACEBACK not in text: return None
    tail = text[text.rindex(TRACEBACK):]
    for l in tail.splitlines()[1:]:
        if l and not l.startswith(' ') and not l.startswith('Traceback'):
            return l.strip()[:200]
    return 'traceback'


@dataclass
class Result:
    cmd: list
    rc: int | None              # None: killed at the timeout
    stdout: str
    stderr: str
    changed: list[str]          # inputs that changed (snapshot_diff)
    seconds: float

    @property
    def out(self) -> str: return self.stdout + self.stderr

    @property
    def traceback(self) -> str | None: return traceback_summary(self.stdout + '\n' + self.stderr)

    def first_error(self) -> str:
        tb = self.traceback
        if tb: return f'traceback: {tb}'
        lines = err_lines(self.stderr)
        hit = next((l for l in lines if 'error' in l.lower()), lines[0] if lines else None)
        if hit: return hit.strip()[:220]
        out = [l for l in self.stdout.splitlines() if l.strip()]
        return f'(stdout) {out[0].strip()[:200]}' if out else '(no output)'

    def assert_clean(self):
        "The two rules that hold for every run: no traceback, no input changed."
        assert TRACEBACK not in self.stdout and TRACEBACK not in self.stderr, f'traceback:\n{self.stderr[-3000:]}'
        assert not self.changed, f'input changed: {self.changed}'


def run(cmd, inputs=(), timeout: float = 180, cwd=None, env=None) -> Result:
    """Run `cmd` (its first word a console script) with every input hashed before and after.

    Returns a Result; `Result.assert_clean()` asserts no traceback and no changed input (check() gathers every
    problem of a case before asserting, so the failure message lists them all)."""
    cmd = [str(c) for c in cmd]
    cmd = command(cmd[0]) + cmd[1:]
    before = snapshot(inputs)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                         env=env or env_for(), start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        rc = None
        err += f'\n[killed by the test after {timeout:.0f} s: the command hung]'
    return Result(cmd, rc, out, err, snapshot_diff(before, snapshot(inputs)), time.perf_counter() - t0)


def record(case_id: str, group: str, cls: str, r: Result | None, problems: list[str], note: str = '', issue: int = 0):
    "Append what this case observed to $BADINPUT_RECORD (for the baseline report); `issue` 24: a case issue 24 added."
    path = os.environ.get('BADINPUT_RECORD')
    if not path: return
    rec = {'group': group, 'id': case_id, 'cls': cls, 'problems': problems, 'note': note, 'round': issue}
    if r is not None:
        rec.update(rc=r.rc, first=r.first_error(), traceback=r.traceback, changed=r.changed,
                   seconds=round(r.seconds, 1), cmd=' '.join(r.cmd[3:] if r.cmd[1:2] == ['-c'] else [Path(r.cmd[0]).name, *r.cmd[1:]]))
    with open(path, 'a') as f: f.write(json.dumps(rec) + '\n')


# --------------------------------------------------------------------------------------------------------------------
# tiny data
# --------------------------------------------------------------------------------------------------------------------
def face(rng, h, w) -> np.ndarray:
    "A smooth colour field with a little texture: compresses well, degrades like a photo."
    import cv2
    img = cv2.resize(rng.random((4, 4, 3)), (w, h), interpolation=cv2.INTER_CUBIC) + 0.03 * rng.standard_normal((h, w, 3))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def images(folder: Path, n: int, h: int, w: int | None = None, seed: int = 0, ext: str = 'png', start: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(start, start + n):
        Image.fromarray(face(rng, h, w or h)).save(folder / f'{i:05d}.{ext}')
    return folder


def png_bytes(h: int, w: int | None = None, seed: int = 0, noise: bool = True) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (h, w or h, 3), dtype=np.uint8) if noise else face(rng, h, w or h)
    buf = io.BytesIO(); Image.fromarray(arr).save(buf, format='PNG')
    return buf.getvalue()


def add_bad(folder: Path, kind: str, size: int = 16, stem: str = '00002') -> Path:
    "Put one bad file into `folder`; returns it."
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    if kind == 'garbage':
        p = folder / f'{stem}.png'; p.write_bytes(b'this is not a PNG at all ' * 8)
    elif kind == 'truncated':
        data = png_bytes(size, seed=3); p = folder / f'{stem}.png'; p.write_bytes(data[:int(len(data) * 0.6)])
    elif kind == 'empty':
        p = folder / f'{stem}.png'; p.write_bytes(b'')
    elif kind in ('tif', 'gif'):
        p = folder / f'00009.{kind}'; Image.fromarray(face(rng, size, size)).save(p)
    elif kind == 'dupjpg':
        p = folder / f'{stem}.jpg'; Image.fromarray(face(rng, size, size)).save(p, quality=95)
    elif kind == 'othersize':
        p = folder / f'{stem}.png'; Image.fromarray(face(rng, size + 4, size + 4)).save(p)
    elif kind == 'not4':
        p = folder / f'{stem}.png'; Image.fromarray(face(rng, size + 2, size + 2)).save(p)
    else:
        raise ValueError(kind)
    return p


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, 'w') as zf:
        for n, b in members.items(): zf.writestr(n, b)
    return path


# --------------------------------------------------------------------------------------------------------------------
# fixtures: one tiny trained generator per session, one workspace per case
# --------------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope='session')
def trained(tmp_path_factory) -> dict:
    "A 2-step blindsr_train run of the tiny generator: final.pt (weights), last.ckpt (training state), a BasicSR .pth."
    root = tmp_path_factory.mktemp('trained')
    hq = images(root / 'faces', 6, 64)
    run_dir = root / 'RUNdir'
    r = run(['blindsr_train', '--train-hq', hq, '--out-dir', run_dir, '--iters', '2', '--batch-size', '2',
             '--generator-kwargs', TINY_KW, '--device', 'cpu', '--no-progress', '--degrade-on', 'gpu',
             '--log-every', '1', '--val-holdout', '2'], timeout=300)
    assert r.rc == 0, r.stderr[-3000:]
    import torch
    ck = torch.load(run_dir / 'last.ckpt', weights_only=True)
    pth = root / 'net_g_basicsr.pth'
    torch.save({'params_ema': ck['params_ema']}, pth)         # a BasicSR-style file: no arch recorded
    for f in ('final.pt', 'last.ckpt', 'best.pt'):
        os.chmod(run_dir / f, 0o444)
    return {'pt': run_dir / 'final.pt', 'ckpt': run_dir / 'last.ckpt', 'pth': pth, 'run': run_dir}


class WS:
    "One case's workspace: tiny image folders with distinctive names (so that messages can be matched), weights."
    def __init__(self, root: Path, trained: dict, request):
        self.root, self.request = root, request
        self.hq = images(root / 'HQfaces', 4, 64, seed=1)
        self.lq = images(root / 'LQimgs', 4, 16, seed=2)
        self.gt = images(root / 'GTfaces', 4, 64, seed=3)
        self.pred = images(root / 'PREDimgs', 4, 64, seed=4)
        self.empty = root / 'EMPTYdir'; self.empty.mkdir()
        self.txt = root / 'notes.txt'; self.txt.write_text('my notes\n')
        self.out = root / 'OUTdir'
        self.missing = root / 'NOSUCHthing'
        self.pt, self.ckpt, self.pth, self.run_dir = trained['pt'], trained['ckpt'], trained['pth'], trained['run']
        self.home = root / 'home'; self.home.mkdir()

    def __truediv__(self, other) -> Path: return self.root / other

    def garbage_ckpt(self) -> Path:
        p = self.root / 'garbage.pt'; p.write_bytes(b'\x00garbage, not a torch file' * 50); return p

    def truncated_ckpt(self) -> Path:
        data = self.ckpt.read_bytes(); p = self.root / 'truncated.ckpt'; p.write_bytes(data[:len(data) // 2]); return p

    def nan_weights(self) -> Path:
        "The weights of a run that diverged: the trained ones, every float turned to NaN."
        import torch
        ck = torch.load(self.pt, weights_only=True)
        ck['params'] = {k: (v * float('nan') if v.is_floating_point() else v) for k, v in ck['params'].items()}
        p = self.root / 'diverged.pt'; torch.save(ck, p); return p

    def flat_zip(self, folder: Path, name: str) -> Path:
        "A zip of `folder`'s images at its root: what a user downloads and forgets to unzip."
        return make_zip(self.root / name, {q.name: q.read_bytes() for q in sorted(folder.iterdir())})

    def readonly(self, path: Path) -> Path:
        "Make a folder read-only for this process, root included (chattr +i); undone at teardown."
        path.mkdir(parents=True, exist_ok=True)
        def undo():
            if os.geteuid() == 0: subprocess.run(['chattr', '-i', str(path)], capture_output=True)
            os.chmod(path, 0o755)
        self.request.addfinalizer(undo)
        os.chmod(path, 0o555)
        if os.geteuid() == 0:
            r = subprocess.run(['chattr', '+i', str(path)], capture_output=True, text=True)
            if r.returncode != 0: pytest.skip(f'running as root and chattr +i failed ({r.stderr.strip()}): cannot make a read-only folder')
        return path


@pytest.fixture
def ws(tmp_path, trained, request) -> WS:
    return WS(tmp_path, trained, request)


# --------------------------------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------------------------------
@dataclass
class C:
    id: str
    cls: str                                   # data-loss, numbers, names, device, paths, images, config, checkpoint, usage
    cmd: Callable[[WS], list]
    inputs: Callable[[WS], list] = lambda w: []
    expect: str = 'refuse'                     # 'refuse' (exit 2 + message), 'work' (exit in ok_rc), 'either' (post decides)
    mention: tuple = ()                        # each item: a string or a tuple of alternatives, found in stderr (case-insensitive)
    setup: Callable[[WS], Any] | None = None
    post: Callable[[WS, Result], list] | None = None   # extra problems
    one_line: bool = False
    ok_rc: tuple = (0,)
    timeout: float = 180
    marks: tuple = ()
    home: bool = False                         # run with an empty HOME (no Kaggle credentials)
    guard: tuple | None = None                 # names in the workspace the command may change (its outputs): every other
                                               # file, folder and link in the workspace (the outputs' parent) is hashed
    round: int = 0                             # the round of careless-user testing that added the case (24: issue 24)


# --------------------------------------------------------------------------------------------------------------------
# core and extended cases: by default the core cases run (every class of mistake for every command, a few minutes on
# two cores); the extended ones repeat a core case's root cause with another value or file and run with
# BLINDSR_BADINPUT_ALL=1
# --------------------------------------------------------------------------------------------------------------------
ALL = os.environ.get('BLINDSR_BADINPUT_ALL', '') not in ('', '0')
EXTENDED = {
    'blindsr_evaluate': {'gt_missing', 'pred_is_a_png_file', 'gt_is_a_text_file', 'pred_empty_folder',
                         'gt_empty_folder', 'pred_garbage_png', 'gt_garbage_png', 'gt_empty_png', 'pred_wrong_size',
                         'pred_missing_one', 'pred_extra_one', 'pred_has_gif', 'gt_has_tif', 'pred_duplicate_stem',
                         'pred_zip_garbage', 'pred_zip_two_folders', 'csv_inside_gt_folder',
                         'csv_inside_pred_folder', 'csv_is_a_users_file', 'workers_negative', 'workers_not_a_number',
                         'unknown_flag', 'workers_huge'},
    'blindsr_degrade': {'hq_is_a_file', 'hq_empty_folder', 'hq_garbage_png', 'hq_truncated_png',
                        'hq_side_not_divisible_by_4', 'hq_has_gif', 'hq_bad_last_face_nothing_written', 'out_is_hq',
                        'out_inside_hq', 'out_contains_hq', 'out_is_an_existing_file',
                        'out_holds_foreign_same_names', 'out_made_with_other_preset',
                        'overwrite_replaces_only_its_names', 'seed_not_int', 'workers_negative', 'workers_zero',
                        'out_cannot_be_created'},
    'blindsr_compare_lq': {'non_square_with_gt_works', 'theirs_is_a_file', 'theirs_empty_folder', 'ours_garbage_png',
                           'ours_truncated_png', 'theirs_has_gif', 'ours_too_small_16px', 'too_few_images',
                           'gt_lacks_partners', 'gt_missing', 'alpha_zero', 'alpha_negative', 'alpha_above_one',
                           'alpha_inf', 'workers_negative', 'workers_zero', 'plot_inside_theirs',
                           'plot_over_a_users_png', 'json_over_a_users_file',
                           'default_plot_beside_readonly_ours_falls_back', 'plot_over_a_users_matplotlib_figure',
                           'plot_not_a_png_name', 'plot_and_no_plot', 'json_is_the_default_plot', 'gt_smaller_than_lq',
                           'workers_huge_is_capped'},
    'blindsr_train': {'iters_negative', 'batch_size_negative', 'time_budget_zero', 'log_every_zero', 'ckpt_every_zero',
                      'seed_negative', 'val_every_min_negative', 'generator_kwargs_json_list', 'generator_kwargs_string_value',
                      'iters_nan', 'time_budget_nan_alone', 'time_budget_inf', 'accum_negative', 'lr_nan', 'warmup_above_one',
                      'mse_finish_negative', 'grad_clip_negative', 'val_holdout_negative', 'val_holdout_all_faces',
                      'val_limit_negative', 'degrade_group_negative', 'batch_not_divisible_by_accum',
                      'generator_kwargs_not_json', 'loss_typo', 'flag_abbreviation_accepted', 'unknown_flag',
                      'config_missing', 'config_truncated_json', 'config_is_a_json_list', 'config_wrong_type',
                      'train_hq_is_a_file', 'train_hq_empty', 'train_hq_truncated_png', 'val_gt_missing',
                      'val_lq_not_quarter_size', 'val_gt_and_holdout', 'out_dir_has_unrelated_files', 'last_ckpt_empty',
                      'last_ckpt_is_a_weights_file', 'last_ckpt_is_a_folder', 'last_ckpt_other_generator',
                      'init_from_missing', 'init_from_other_generator', 'device_cuda1_without_gpu', 'device_typo'},
    'blindsr_restore': {'input_empty_folder', 'input_text_file', 'input_tif_file', 'input_truncated_png',
                        'input_folder_has_gif', 'input_duplicate_stems', 'out_is_input_folder',
                        'out_is_input_folder_of_jpgs', 'out_contains_input', 'out_is_an_existing_file',
                        'out_png_is_a_users_file', 'single_png_to_tif_name', 'single_png_onto_itself',
                        'single_png_into_own_folder', 'rerun_into_its_own_folder_works', 'batch_zero',
                        'tile_negative', 'workers_negative', 'workers_zero', 'tta_typo',
                        'arch_typo_for_basicsr_file', 'arch_kwargs_wrong_key', 'arch_kwargs_negative',
                        'arch_kwargs_not_json', 'weights_missing', 'weights_truncated', 'weights_is_a_folder',
                        'weights_is_an_image', 'weights_basicsr_wrong_arch_size', 'training_ckpt_works',
                        'device_typo', 'arch_kwargs_float', 'arch_kwargs_nan', 'workers_huge'},
    'blindsr_val': {'out_is_val_lq', 'out_inside_val_gt', 'out_inside_val_lq', 'out_contains_inputs',
                    'csv_overwrites_a_gt_image', 'csv_inside_val_lq', 'csv_is_a_users_file', 'val_lq_missing',
                    'val_gt_missing', 'val_gt_empty', 'val_gt_is_a_file', 'val_lq_garbage_png', 'val_gt_has_gif',
                    'unpaired_stems', 'tile_overlap_negative', 'workers_negative', 'weights_garbage',
                    'arch_kwargs_json_list', 'device_cuda_without_gpu', 'ssim_on_gt_under_7px', 'csv_empty_string',
                    'out_cannot_be_created', 'weights_nan', 'workers_huge'},
    'blindsr_submit': {'check_zip_adds_image_vs_test_lq', 'check_zip_adds_image_no_n', 'check_zip_gap_detected',
                       'check_n_expected_zero', 'check_n_expected_disagrees_with_test_lq', 'check_and_out_zip_both',
                       'check_wrong_image_size', 'check_corrupt_member', 'check_truncated_zip', 'check_zip_missing',
                       'check_a_folder', 'zip_overwrites_a_test_image', 'zip_is_an_existing_folder',
                       'zip_is_a_users_file', 'zip_name_without_zip_suffix', 'keep_is_test_lq',
                       'keep_inside_test_lq', 'keep_holds_unrelated_file', 'keep_rerun_works', 'test_lq_missing',
                       'test_lq_empty', 'test_lq_is_a_file', 'test_lq_garbage_png', 'test_lq_badly_named',
                       'lq_wrong_size_for_size', 'size_negative', 'size_not_multiple_of_4', 'batch_zero',
                       'workers_negative', 'folder_name_escapes', 'weights_truncated', 'device_cuda_without_gpu',
                       'zip_argument_missing', 'zip_cannot_be_created', 'check_test_lq_is_a_zip', 'weights_nan'},
    'blindsr_demo': {'weights_missing', 'weights_truncated', 'weights_is_a_folder', 'image_missing',
                     'image_truncated', 'image_tif', 'out_is_an_existing_file', 'out_has_a_users_demo_png',
                     'out_readonly', 'tta_typo', 'device_typo', 'image_flat', 'overwrite_replaces_a_users_demo_png', 'weights_nan'},
    'blindsr_bench': {'speed_set_unknown_field', 'speed_set_negative_batch', 'recipes_typo', 'recipes_minutes_nan',
                      'recipes_val_holdout_zero', 'recipes_device_cuda_without_gpu', 'breakdown_steps_negative',
                      'breakdown_faces_missing', 'no_subcommand'},
    'blindsr_kaggle': {'build_hours_zero', 'build_hours_inf', 'build_machine_typo', 'build_kwargs_not_json',
                       'build_dataset_invalid', 'output_without_cli_or_credentials', 'build_hours_no_time_to_train',
                       'dataset_data_missing'},
}


def params(group: str, cases: list) -> list:
    "pytest params of a command's cases; extended ones are skipped unless BLINDSR_BADINPUT_ALL=1."
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), f'duplicate case ids in {group}'
    unknown = EXTENDED.get(group, set()) - set(ids)
    assert not unknown, f'EXTENDED names cases {group} does not have: {unknown}'
    out = []
    for c in cases:
        marks = list(c.marks)
        if c.id in EXTENDED.get(group, ()) and not ALL:
            marks.append(pytest.mark.skip(reason='extended case (a core case has the same root cause); BLINDSR_BADINPUT_ALL=1 runs it'))
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


def scrub(text: str, w: WS) -> str:
    "`text` with the workspace's path replaced by 'WS' (pytest names the folder after the test, e.g. …_seed_negative0)."
    for root in sorted({str(w.root), str(w.root.resolve())}, key=len, reverse=True):
        text = text.replace(root, 'WS')
    return text


def F(name: str) -> tuple:
    "How a message may name a TrainConfig field / flag: --flag-name, or the field name where it cannot be a mere word."
    dash = '--' + name.replace('_', '-')
    if '_' in name or len(name) >= 6: return (dash, name)
    return (dash, f'{name} ', f'{name}=', f"'{name}'", f'.{name}', f'{name}:', f'{name},')


def _val(x, w):
    return x(w) if callable(x) else x


def tree(root: Path, allowed: tuple = ()) -> dict:
    "relative path -> 'dir' | 'link:<target>' | '<size>:<sha256>' of everything under `root` but the top-level `allowed` names (links not followed)."
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for n in [*dirnames, *filenames]:
            p = Path(dirpath) / n
            rel = p.relative_to(root)
            if rel.parts[0] in allowed: continue
            out[str(rel)] = (f'link:{os.readlink(p)}' if p.is_symlink() else 'dir' if p.is_dir() else f'{p.stat().st_size}:{_sha(p)}')
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink()]
    return out


def outside_changes(before: dict, after: dict) -> list[str]:
    "What changed outside the output: the workspace's files added, removed or changed."
    added = sorted(set(after) - set(before)); gone = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return ([f'added {added[:3]}'] if added else []) + ([f'removed {gone[:3]}'] if gone else []) + \
           ([f'changed {changed[:3]}'] if changed else [])


def check(case: C, w: WS, group: str):
    "Run one case and assert the correct behaviour; every problem found is listed in the failure."
    if case.setup: case.setup(w)
    cmd = [_val(c, w) for c in case.cmd(w)]
    inputs = case.inputs(w)
    allowed = None if case.guard is None else (*case.guard, 'home')   # home: the empty HOME of Kaggle cases (.mpl cache)
    outside = tree(w.root, allowed) if allowed is not None else None
    r = run(cmd, inputs, timeout=case.timeout, env=env_for(w.home) if case.home else None, cwd=w.root)
    problems = []
    if outside is not None:
        moved = outside_changes(outside, tree(w.root, allowed))
        if moved: problems.append(f'changed outside the output ({", ".join(case.guard) or "none"}): {"; ".join(moved)}')
    if r.rc is None: problems.append(f'hang: killed after {case.timeout:.0f} s')
    if r.traceback: problems.append(f'traceback: {r.traceback}')
    if r.changed: problems.append(f'input changed: {"; ".join(r.changed)}')
    low = scrub(r.stderr, w).lower()     # the workspace path holds the test's name: never let it match a flag
    if case.expect == 'refuse' and r.rc is not None:
        if r.rc == 0: problems.append('silently accepted (exit 0)')
        elif r.rc != 2: problems.append(f'exit code {r.rc}, want 2')
        if r.rc != 0:
            if not err_lines(r.stderr): problems.append('no message on stderr')
            for m in case.mention:
                alts = [str(_val(a, w)) for a in (m if isinstance(m, tuple) else (m,))]
                if not any(a.lower() in low for a in alts):
                    problems.append(f'message does not name {" / ".join(alts)}')
            if case.one_line:
                body = [l for l in err_lines(r.stderr) if not l.startswith(('usage:', ' '))]
                if len(body) > 1: problems.append(f'message is {len(body)} lines, want one')
    elif case.expect == 'work' and r.rc is not None and r.rc not in case.ok_rc:
        problems.append(f'exit code {r.rc}, want {" or ".join(map(str, case.ok_rc))}: {r.first_error()}')
    if case.post: problems += case.post(w, r)
    record(case.id, group, case.cls, r, problems, issue=case.round)
    assert not problems, '\n'.join(problems) + f'\n--- command: {" ".join(r.cmd)}\n--- stderr:\n{r.stderr[-2500:]}'


# post-checks ---------------------------------------------------------------------------------------------------------
def no_path(*parts, why='') -> Callable:
    def post(w, r):
        p = w.root.joinpath(*parts)
        return [f'{why or "created"}: {p.relative_to(w.root)} exists'] if p.exists() else []
    return post


def nothing_in(*parts, why='late check: work was written before the refusal') -> Callable:
    def post(w, r):
        p = w.root.joinpath(*parts)
        return [f'{why} ({p.relative_to(w.root)} holds {len(list(p.iterdir()))} entries)'] if p.is_dir() and any(p.iterdir()) else []
    return post


def no_val_lq(w, r):
    "The refusal must come before any degradation/decoding: --val-gt without --val-lq makes OUT/val_lq_* first."
    made = list((w.out).glob('val_lq_*/*.png')) if w.out.is_dir() else []
    return [f'late check: the val GT was degraded into {made[0].parent.name}/ before the refusal'] if made else []


def decoded_first(w, r):
    "A corrupt training image and a bad generator: the generator must be refused before any image is decoded."
    return ['late check: the training images were decoded before the generator was checked'] if '00002.png' in r.stderr else []


def all_(*posts) -> Callable:
    return lambda w, r: [p for f in posts for p in f(w, r)]


# helpers of the data commands' cases (blindsr_evaluate … blindsr_demo) ------------------------------------------------
def no_png_in(*parts, why='late check: images were written before the refusal') -> Callable:
    "Post-check: the folder holds no PNG (absent is fine)."
    def post(w, r):
        p = w.root.joinpath(*parts)
        made = sorted(q.name for q in p.glob('*.png')) if p.is_dir() else []
        return [f'{why} ({p.relative_to(w.root)}: {made[:3]})'] if made else []
    return post


def no_submit_work(w, r):
    "Post-check: a refused blindsr_submit restored nothing (no temporary work folder, no zip, no temporary zip)."
    left = [q.name for q in w.root.iterdir() if q.name.startswith('.blindsr_submit_') or q.name.endswith('.zip.tmp')
            or (q.name.startswith('.submission.zip.'))]
    zipped = (w / 'submission.zip').exists()
    return ([f'late check: work left behind {left[:3]}'] if left else []) + (['a zip was written'] if zipped else [])


def dead_pid() -> int:
    "The process id of a process that has ended."
    p = subprocess.Popen(['true']); p.wait()
    return p.pid


def killed_submit_left_work(w: WS):
    "What a blindsr_submit killed with SIGKILL leaves beside its zip: a folder of restored PNGs and half a zip."
    work = w / f'.blindsr_submit_{dead_pid()}_abc'; work.mkdir()
    (work / '00000.png').write_bytes(png_bytes(64))
    (w / f'.submission.zip.{dead_pid()}.tmp').write_bytes(b'PK half a zip')


def stale_work_removed(w, r):
    left = sorted(q.name for q in w.root.iterdir() if q.name.startswith(('.blindsr_submit_', '.submission.zip.')))
    return [f'the killed run\'s work is still there: {left}'] if left else []


def no_scores(w, r):
    "Post-check: refused before any scoring (no PSNR printed)."
    return ['late check: scored before the refusal'] if 'PSNR' in r.stdout else []


def tiny_pair(w: WS):
    "PRED and GT of 4x4 images: too small for SSIM's 7x7 window."
    for d in (w.pred, w.gt):
        shutil.rmtree(d); images(d, 2, 4, seed=9)


PROC = pytest.mark.skipif(not Path('/proc/self').is_dir(), reason='needs /proc (a folder nothing can be created in)')


def says(*texts, where='stdout') -> Callable:
    "Post-check: each text appears in the command's stdout (or stderr)."
    def post(w, r):
        out = r.stdout if where == 'stdout' else r.stderr
        return [f'{where} does not say {t!r}' for t in texts if t not in out]
    return post


def exists(*parts) -> Callable:
    "Post-check: the command wrote this file."
    def post(w, r):
        p = w.root.joinpath(*parts)
        return [] if p.is_file() else [f'{p.relative_to(w.root)} was not written']
    return post


def users_photo(w: WS, *parts) -> Path:
    "A user's own picture at root/parts (not drawn by matplotlib, not written by any blindsr command)."
    p = w.root.joinpath(*parts); p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(face(np.random.default_rng(21), 40, 40)).save(p)
    return p


def matplotlib_figure(path: Path) -> Path:
    "A user's own matplotlib figure at `path` (PNG, Software: matplotlib), drawn by no blindsr command."
    from matplotlib.figure import Figure
    path.parent.mkdir(parents=True, exist_ok=True)
    Figure(figsize=(2, 2)).savefig(path)
    return path


def readonly_copy(w: WS, src: Path, name: str) -> Path:
    "A copy of `src` (file or folder) inside the read-only folder RO (a dataset under /kaggle/input, say)."
    ro = w / 'RO'; ro.mkdir(exist_ok=True)
    dst = ro / name
    (shutil.copytree if src.is_dir() else shutil.copyfile)(src, dst)
    w.readonly(ro)
    return dst


# ==================================================================================================================
# blindsr_evaluate
# ==================================================================================================================
def ev(*extra):
    return lambda w: ['blindsr_evaluate', w.pred, w.gt, '--no-ssim', *extra]


EV_IN = lambda w: [w.pred, w.gt]

EVALUATE = [
    C('pred_missing', 'paths', lambda w: ['blindsr_evaluate', w.missing, w.gt], EV_IN, mention=('NOSUCHthing',)),
    C('gt_missing', 'paths', lambda w: ['blindsr_evaluate', w.pred, w.missing], EV_IN, mention=('NOSUCHthing',)),
    C('pred_is_a_png_file', 'paths', lambda w: ['blindsr_evaluate', w.pred / '00000.png', w.gt], EV_IN, mention=('00000.png',)),
    C('gt_is_a_text_file', 'paths', lambda w: ['blindsr_evaluate', w.pred, w.txt], EV_IN, mention=('notes.txt',)),
    C('pred_empty_folder', 'paths', lambda w: ['blindsr_evaluate', w.empty, w.gt], EV_IN, mention=('EMPTYdir',)),
    C('gt_empty_folder', 'paths', lambda w: ['blindsr_evaluate', w.pred, w.empty], EV_IN, mention=('EMPTYdir',)),
    C('pred_garbage_png', 'images', ev(), EV_IN, setup=lambda w: add_bad(w.pred, 'garbage'), mention=('00002.png',)),
    C('pred_truncated_png', 'images', ev(), EV_IN, setup=lambda w: add_bad(w.pred, 'truncated', 64), mention=('00002.png',)),
    C('gt_garbage_png', 'images', ev(), EV_IN, setup=lambda w: add_bad(w.gt, 'garbage'), mention=('00002.png',)),
    C('gt_empty_png', 'images', ev(), EV_IN, setup=lambda w: add_bad(w.gt, 'empty'), mention=('00002.png',)),
    C('pred_wrong_size', 'images', ev(), EV_IN, setup=lambda w: add_bad(w.pred, 'othersize', 64), mention=('00002',)),
    C('pred_missing_one', 'images', ev(), EV_IN, setup=lambda w: (w.pred / '00003.png').unlink(), mention=('00003',)),
    C('pred_extra_one', 'images', ev(), EV_IN, setup=lambda w: images(w.pred, 1, 64, start=4), mention=('00004',)),
    C('pred_has_tif', 'images', ev(), EV_IN, setup=lambda w: add_bad(w.pred, 'tif', 64), mention=('00009.tif',)),
    C('pred_has_gif', 'images', ev(), EV_IN, setup=lambda w: add_bad(w.pred, 'gif', 64), mention=('00009.gif',)),
    C('gt_has_tif', 'images', ev(), EV_IN, setup=lambda w: add_bad(w.gt, 'tif', 64), mention=('00009.tif',)),
    C('pred_duplicate_stem', 'images', ev(), EV_IN, setup=lambda w: add_bad(w.pred, 'dupjpg', 64), mention=('00002',)),
    C('pred_zip_garbage', 'paths', lambda w: ['blindsr_evaluate', w / 'sub.zip', w.gt],
      lambda w: [w / 'sub.zip', w.gt], setup=lambda w: (w / 'sub.zip').write_bytes(b'PK not really'), mention=('sub.zip',)),
    C('pred_zip_two_folders', 'paths', lambda w: ['blindsr_evaluate', w / 'sub.zip', w.gt], lambda w: [w / 'sub.zip', w.gt],
      setup=lambda w: make_zip(w / 'sub.zip', {'a/00000.png': png_bytes(64), 'b/00001.png': png_bytes(64)}),
      mention=('sub.zip',)),
    C('csv_is_a_folder', 'paths', ev('--csv', lambda w: w.empty), lambda w: [*EV_IN(w), w.empty], mention=(('--csv', 'EMPTYdir'),)),
    C('csv_overwrites_a_gt_image', 'data-loss', ev('--csv', lambda w: w.gt / '00000.png'), EV_IN, mention=(('--csv', '00000.png'),)),
    C('csv_inside_gt_folder', 'data-loss', ev('--csv', lambda w: w.gt / 'scores.csv'), EV_IN, mention=(('--csv', 'GTfaces'),)),
    C('csv_inside_pred_folder', 'data-loss', ev('--csv', lambda w: w.pred / 'scores.csv'), EV_IN, mention=(('--csv', 'PREDimgs'),)),
    C('csv_in_readonly_folder', 'paths', ev('--csv', lambda w: w / 'RO' / 'scores.csv'), EV_IN,
      setup=lambda w: w.readonly(w / 'RO'), mention=(('--csv', 'scores.csv', 'RO'),)),
    C('csv_is_a_users_file', 'data-loss', ev('--csv', lambda w: w.txt), lambda w: [*EV_IN(w), w.txt], mention=(('--csv', 'notes.txt'),)),
    C('csv_default_beside_readonly_pred_falls_back', 'paths', lambda w: ['blindsr_evaluate', w / 'RO' / 'sub.zip', w.gt, '--no-ssim'],
      lambda w: [w / 'RO', w.gt], expect='work',
      setup=lambda w: readonly_copy(w, make_zip(w / 'sub.zip', {f'results/{q.name}': q.read_bytes() for q in sorted(w.pred.iterdir())}), 'sub.zip'),
      post=all_(says('PSNR'), exists('sub_metrics.csv'))),     # the scores printed, the CSV in the current folder
    C('workers_negative', 'numbers', ev('--workers', '-3'), EV_IN, mention=('--workers',)),
    C('workers_zero', 'numbers', ev('--workers', '0'), EV_IN, mention=('--workers',)),
    C('workers_not_a_number', 'numbers', ev('--workers', 'two'), EV_IN, mention=('--workers',)),
    C('unknown_flag', 'usage', ev('--ssim-only'), EV_IN, mention=('--ssim-only',)),
    C('same_folder_twice', 'usage', lambda w: ['blindsr_evaluate', w.gt, w.gt, '--no-ssim'], EV_IN, mention=('GTfaces',),
      one_line=True, post=no_scores),
    C('ssim_on_images_under_7px', 'images', lambda w: ['blindsr_evaluate', w.pred, w.gt, '--csv', w / 's.csv'], EV_IN,
      setup=tiny_pair, mention=('00000.png', '--no-ssim'), one_line=True, post=no_scores),
    C('csv_empty_string', 'paths', ev('--csv', ''), EV_IN, mention=('--csv',), post=no_path('PREDimgs_metrics.csv')),
    C('csv_cannot_be_created', 'paths', ev('--csv', '/proc/blindsr_x.csv'), EV_IN, mention=('--csv', '/proc/blindsr_x.csv'),
      one_line=True, post=no_scores, marks=(PROC,)),
    C('workers_huge', 'numbers', ev('--workers', '100000'), EV_IN, mention=('--workers',)),
    C('missing_gt_argument', 'usage', lambda w: ['blindsr_evaluate', w.pred], EV_IN, mention=('gt',)),
]


@pytest.mark.parametrize('case', params('blindsr_evaluate', EVALUATE))
def test_evaluate(case, ws): check(case, ws, 'blindsr_evaluate')


# ==================================================================================================================
# blindsr_degrade
# ==================================================================================================================
def dg(*extra, hq=None, out=None):
    return lambda w: ['blindsr_degrade', hq(w) if hq else w.hq, out(w) if out else w.out, '--workers', '1', *extra]


DG_IN = lambda w: [w.hq]


def degrade_post_only_named_replaced(w, r):
    "--overwrite into a folder with a foreign file: the foreign notes stay, the same-named PNG is replaced."
    problems = []
    if r.rc == 0 and not (w.out / 'keep_me.txt').exists(): problems.append('--overwrite deleted a file it did not write')
    return problems


DEGRADE = [
    C('hq_is_a_zip', 'paths', dg(hq=lambda w: w.flat_zip(w.hq, 'faces.zip')), DG_IN, mention=('faces.zip', 'unzip'), one_line=True),
    C('out_cannot_be_created', 'paths', dg(out=lambda w: '/proc/blindsr_degrade_out'), DG_IN,
      mention=('OUT_DIR', '/proc/blindsr_degrade_out'), one_line=True, marks=(PROC,)),
    C('workers_huge', 'numbers', lambda w: ['blindsr_degrade', w.hq, w.out, '--workers', '100000'], DG_IN, mention=('--workers',),
      post=no_path('OUTdir')),
    C('hq_missing', 'paths', dg(hq=lambda w: w.missing), DG_IN, mention=('NOSUCHthing',)),
    C('hq_is_a_file', 'paths', dg(hq=lambda w: w.hq / '00000.png'), DG_IN, mention=('00000.png',)),
    C('hq_empty_folder', 'paths', dg(hq=lambda w: w.empty), DG_IN, mention=('EMPTYdir',)),
    C('hq_garbage_png', 'images', dg(), DG_IN, setup=lambda w: add_bad(w.hq, 'garbage'), mention=('00002.png',)),
    C('hq_truncated_png', 'images', dg(), DG_IN, setup=lambda w: add_bad(w.hq, 'truncated', 64), mention=('00002.png',)),
    C('hq_side_not_divisible_by_4', 'images', dg(), DG_IN, setup=lambda w: add_bad(w.hq, 'not4', 64), mention=('00002',)),
    C('hq_has_tif', 'images', dg(), DG_IN, setup=lambda w: add_bad(w.hq, 'tif', 64), mention=('00009.tif',)),
    C('hq_has_gif', 'images', dg(), DG_IN, setup=lambda w: add_bad(w.hq, 'gif', 64), mention=('00009.gif',)),
    C('hq_bad_last_face_nothing_written', 'images', dg(), DG_IN, setup=lambda w: add_bad(w.hq, 'truncated', 64, stem='00009'),
      mention=('00009.png',), post=no_png_in('OUTdir')),       # every face is checked before the first LQ is written
    C('hq_duplicate_stems_png_jpg', 'images', dg(), DG_IN, setup=lambda w: add_bad(w.hq, 'dupjpg', 64),
      mention=('00002',), post=no_path('OUTdir', '00002.png', why='one of the two 00002 inputs was written anyway')),
    C('out_is_hq', 'data-loss', dg(out=lambda w: w.hq), DG_IN, mention=('HQfaces',)),
    C('out_is_hq_with_overwrite', 'data-loss', dg('--overwrite', out=lambda w: w.hq), DG_IN, mention=('HQfaces',)),
    C('out_inside_hq', 'data-loss', dg(out=lambda w: w.hq / 'sub'), DG_IN, mention=('HQfaces',)),
    C('out_contains_hq', 'data-loss', dg(out=lambda w: w.root), DG_IN, mention=(('HQfaces', 'input', 'contains'),)),
    C('out_is_an_existing_file', 'paths', dg(out=lambda w: w.txt), lambda w: [w.hq, w.txt], mention=('notes.txt',)),
    C('out_readonly_folder', 'paths', dg(out=lambda w: w / 'RO'), DG_IN, setup=lambda w: w.readonly(w / 'RO'), mention=('RO',)),
    C('out_holds_foreign_same_names', 'data-loss', dg(), lambda w: [w.hq, w.out],
      setup=lambda w: images(w.out, 2, 16, seed=9), mention=(('OUTdir', '--overwrite'),)),
    C('out_holds_unrelated_files', 'data-loss', dg(), lambda w: [w.hq, w.out],
      setup=lambda w: (w.out.mkdir(), (w.out / 'keep_me.txt').write_text('x')), mention=(('OUTdir', '--overwrite'),)),
    C('out_made_from_other_hq_same_preset', 'data-loss', dg(), lambda w: [w.hq, w.out],
      setup=lambda w: subprocess.run([*command('blindsr_degrade'), str(w.gt), str(w.out), '--workers', '1'], capture_output=True,
                                     env=env_for(), check=True),
      mention=(('OUTdir', 'GTfaces', '--overwrite'),)),
    C('out_made_with_other_preset', 'data-loss', dg(), lambda w: [w.hq, w.out],
      setup=lambda w: subprocess.run([*command('blindsr_degrade'), str(w.hq), str(w.out), '--workers', '1', '--preset', 'bicubic'],
                                     capture_output=True, env=env_for(), check=True),
      mention=('--overwrite',)),
    C('overwrite_replaces_only_its_names', 'data-loss', dg('--overwrite'), DG_IN, expect='work',
      setup=lambda w: (images(w.out, 1, 16, seed=9), (w.out / 'keep_me.txt').write_text('x')),
      post=degrade_post_only_named_replaced),
    C('seed_negative', 'numbers', dg('--seed', '-1'), DG_IN, mention=('--seed',)),
    C('seed_not_int', 'numbers', dg('--seed', '1.5'), DG_IN, mention=('--seed',)),
    C('workers_negative', 'numbers', dg('--workers', '-3'), DG_IN, mention=('--workers',)),
    C('workers_zero', 'numbers', dg('--workers', '0'), DG_IN, mention=('--workers',)),
    C('preset_typo', 'names', dg('--preset', 'ai6126_2042'), DG_IN, mention=('--preset',)),
    C('preset_file_missing', 'names', dg('--preset', 'NOSUCHthing.json'), DG_IN, mention=('--preset', 'NOSUCHthing.json')),
]


# issue 24: names read from degradation.json become paths only when they stay in OUT_DIR; a resume redoes what it
# cannot vouch for
def hostile_record(stem: Callable[[WS], str] | None = None, text: str | None = None) -> Callable:
    "OUTdir/degradation.json recording `stem(w)` (a user's PNG outside OUTdir beside it), or holding `text`."
    def setup(w):
        users_photo(w, 'PRECIOUS', 'keep.png'); w.out.mkdir()
        body = text if text is not None else json.dumps({'format': 2, 'preset': 'ai6126_2024', 'seed': 0, 'images': {stem(w): {}}})
        (w.out / 'degradation.json').write_text(body)
    return setup


def spoiled_lq_set(w: WS):
    "An LQ set made by blindsr_degrade, then spoiled: a 0-byte LQ, one 64x64 image, one link to its own HQ face."
    subprocess.run([*command('blindsr_degrade'), str(w.hq), str(w.out), '--workers', '1'], capture_output=True, env=env_for(), check=True)
    (w.out / '00000.png').write_bytes(b'')
    Image.fromarray(face(np.random.default_rng(5), 64, 64)).save(w.out / '00001.png')
    (w.out / '00002.png').unlink(); (w.out / '00002.png').symlink_to(w.hq / '00002.png')


def resumed_lq_ok(w, r):
    "Post-check: every LQ is a plain 16x16 PNG again (redone, not skipped)."
    problems = []
    for p in sorted(w.out.glob('*.png')):
        if p.is_symlink(): problems.append(f'{p.name} is still a link'); continue
        try:
            with Image.open(p) as im: im.load(); size = im.size
        except Exception as e: problems.append(f'{p.name} unreadable ({type(e).__name__})'); continue
        if size != (16, 16): problems.append(f'{p.name} is {size[0]}x{size[1]}, want 16x16')
    return problems


DEG_PRECIOUS = lambda w: [w.hq, w / 'PRECIOUS']
DEGRADE += [
    C('overwrite_record_stem_climbs_out', 'data-loss', dg('--overwrite'), DEG_PRECIOUS, setup=hostile_record(lambda w: '../PRECIOUS/keep'),
      mention=('degradation.json',), one_line=True, guard=('OUTdir',), round=24),
    C('overwrite_record_stem_absolute', 'data-loss', dg('--overwrite'), DEG_PRECIOUS,
      setup=hostile_record(lambda w: str(w / 'PRECIOUS' / 'keep')), mention=('degradation.json',), one_line=True, guard=('OUTdir',), round=24),
    C('record_is_a_json_list', 'names', dg(), DG_IN, setup=hostile_record(text='[1, 2]'), mention=('degradation.json',),
      one_line=True, guard=('OUTdir',), round=24),
    C('record_not_json', 'names', dg(), DG_IN, setup=hostile_record(text='{"format": 2,'), mention=('degradation.json',),
      one_line=True, guard=('OUTdir',), round=24),
    C('resume_redoes_spoiled_lq', 'data-loss', dg(), DG_IN, expect='work', setup=spoiled_lq_set, post=resumed_lq_ok,
      guard=('OUTdir',), round=24),
]
EXTENDED['blindsr_degrade'] |= {'overwrite_record_stem_absolute', 'record_not_json'}


@pytest.mark.parametrize('case', params('blindsr_degrade', DEGRADE))
def test_degrade(case, ws): check(case, ws, 'blindsr_degrade')


# ==================================================================================================================
# blindsr_compare_lq
# ==================================================================================================================
def cmp_sets(w: WS, h=32, wd=None, n=12):
    "Two LQ sets of n images each (OURSlq, THEIRSlq) and the GT of ours (CMPgt, 4x)."
    if (w / 'OURSlq').exists(): return
    images(w / 'OURSlq', n, h, wd, seed=11)
    images(w / 'THEIRSlq', n, h, wd, seed=12)
    images(w / 'CMPgt', n, 4 * h, 4 * (wd or h), seed=13)


def cq(*extra):
    return lambda w: ['blindsr_compare_lq', w / 'OURSlq', w / 'THEIRSlq', '--quiet', '--no-plot', *extra]


def cq_in(w): return [w / 'OURSlq', w / 'THEIRSlq', w / 'CMPgt']


def cs(fn=None):
    def setup(w):
        cmp_sets(w)
        if fn: fn(w)
    return setup


COMPARE = [
    C('non_square_96x128_works', 'images', cq(), cq_in, expect='work', ok_rc=(0, 1), setup=lambda w: cmp_sets(w, 128, 96)),
    C('non_square_with_gt_works', 'images', cq('--gt', lambda w: w / 'CMPgt'), cq_in, expect='work', ok_rc=(0, 1),
      setup=lambda w: cmp_sets(w, 128, 96)),
    C('ours_missing', 'paths', lambda w: ['blindsr_compare_lq', w.missing, w / 'THEIRSlq', '--quiet', '--no-plot'], cq_in,
      setup=cs(), mention=('NOSUCHthing',)),
    C('theirs_is_a_file', 'paths', lambda w: ['blindsr_compare_lq', w / 'OURSlq', w.txt, '--quiet', '--no-plot'], cq_in,
      setup=cs(), mention=('notes.txt',)),
    C('theirs_empty_folder', 'paths', lambda w: ['blindsr_compare_lq', w / 'OURSlq', w.empty, '--quiet', '--no-plot'], cq_in,
      setup=cs(), mention=('EMPTYdir',)),
    C('ours_garbage_png', 'images', cq(), cq_in, setup=cs(lambda w: add_bad(w / 'OURSlq', 'garbage')), mention=('00002.png',)),
    C('ours_truncated_png', 'images', cq(), cq_in, setup=cs(lambda w: add_bad(w / 'OURSlq', 'truncated', 32)), mention=('00002.png',)),
    C('ours_has_tif', 'images', cq(), cq_in, setup=cs(lambda w: add_bad(w / 'OURSlq', 'tif', 32)), mention=('00009.tif',)),
    C('theirs_has_gif', 'images', cq(), cq_in, setup=cs(lambda w: add_bad(w / 'THEIRSlq', 'gif', 32)), mention=('00009.gif',)),
    C('ours_mixed_sizes', 'images', cq(), cq_in, setup=cs(lambda w: images(w / 'OURSlq', 1, 48, start=20)), mention=('00020',)),
    C('ours_too_small_16px', 'images', cq(), cq_in, setup=lambda w: cmp_sets(w, 16), mention=('32',)),
    C('too_few_images', 'images', cq(), cq_in, setup=lambda w: cmp_sets(w, 32, n=3), mention=(('too few', 'at least'),)),
    C('gt_lacks_partners', 'images', cq('--gt', lambda w: w.gt), cq_in, setup=cs(), mention=(('GTfaces', 'partner'),)),
    C('gt_missing', 'paths', cq('--gt', lambda w: w.missing), cq_in, setup=cs(), mention=('NOSUCHthing',)),
    C('gt_theirs_without_gt', 'usage', cq('--gt-theirs', lambda w: w / 'CMPgt'), cq_in, setup=cs(), mention=('--gt',)),
    C('alpha_zero', 'numbers', cq('--alpha', '0'), cq_in, setup=cs(), mention=('--alpha',)),
    C('alpha_negative', 'numbers', cq('--alpha', '-0.5'), cq_in, setup=cs(), mention=('--alpha',)),
    C('alpha_above_one', 'numbers', cq('--alpha', '1.5'), cq_in, setup=cs(), mention=('--alpha',)),
    C('alpha_nan', 'numbers', cq('--alpha', 'nan'), cq_in, setup=cs(), mention=('--alpha',)),
    C('alpha_inf', 'numbers', cq('--alpha', 'inf'), cq_in, setup=cs(), mention=('--alpha',)),
    C('workers_negative', 'numbers', cq('--workers', '-3'), cq_in, setup=cs(), mention=('--workers',)),
    C('workers_zero', 'numbers', cq('--workers', '0'), cq_in, setup=cs(), mention=('--workers',)),
    C('json_is_a_folder', 'paths', cq('--json', lambda w: w.empty), lambda w: [*cq_in(w), w.empty], setup=cs(),
      mention=(('--json', 'EMPTYdir'),)),
    C('json_inside_ours', 'data-loss', cq('--json', lambda w: w / 'OURSlq' / 'stats.json'), cq_in, setup=cs(),
      mention=(('--json', 'OURSlq'),)),
    C('plot_overwrites_an_input_image', 'data-loss',
      lambda w: ['blindsr_compare_lq', w / 'OURSlq', w / 'THEIRSlq', '--quiet', '--plot', w / 'THEIRSlq' / '00000.png'],
      cq_in, setup=cs(), mention=(('--plot', '00000.png'),)),
    C('plot_inside_theirs', 'data-loss',
      lambda w: ['blindsr_compare_lq', w / 'OURSlq', w / 'THEIRSlq', '--quiet', '--plot', w / 'THEIRSlq' / 'hist.png'],
      cq_in, setup=cs(), mention=(('--plot', 'THEIRSlq'),)),
    C('plot_over_a_users_png', 'data-loss',
      lambda w: ['blindsr_compare_lq', w / 'OURSlq', w / 'THEIRSlq', '--quiet', '--plot', w / 'photo.png'],
      lambda w: [*cq_in(w), w / 'photo.png'], setup=cs(lambda w: users_photo(w, 'photo.png')), mention=(('--plot', 'photo.png'),)),
    C('json_over_a_users_file', 'data-loss', cq('--json', lambda w: w.txt), lambda w: [*cq_in(w), w.txt], setup=cs(),
      mention=(('--json', 'notes.txt'),)),
    C('default_plot_beside_readonly_ours_falls_back', 'paths',
      lambda w: ['blindsr_compare_lq', w / 'RO' / 'OURSlq', w / 'THEIRSlq', '--quiet'], lambda w: [w / 'RO', w / 'THEIRSlq'],
      expect='work', ok_rc=(0, 1), setup=cs(lambda w: readonly_copy(w, w / 'OURSlq', 'OURSlq')),
      post=exists('OURSlq_vs_THEIRSlq.png')),                  # the picture in the current folder instead
    # QA round 2: the file really written, two outputs on one file, outputs that cannot be created, a GT of the wrong
    # scale, one set given twice, an absurd thread count
    C('plot_without_png_over_users_png', 'data-loss',           # matplotlib writes userplot.png for --plot userplot
      lambda w: ['blindsr_compare_lq', w / 'OURSlq', w / 'THEIRSlq', '--quiet', '--plot', w / 'userplot'],
      lambda w: [*cq_in(w), w / 'userplot.png'], setup=cs(lambda w: users_photo(w, 'userplot.png')),
      mention=(('--plot', 'userplot.png'),), post=no_path('userplot')),
    C('plot_over_a_users_matplotlib_figure', 'data-loss',       # matplotlib drew it, but not this command
      lambda w: ['blindsr_compare_lq', w / 'OURSlq', w / 'THEIRSlq', '--quiet', '--plot', w / 'fig.png'],
      lambda w: [*cq_in(w), w / 'fig.png'], setup=cs(lambda w: matplotlib_figure(w / 'fig.png')), mention=(('--plot', 'fig.png'),)),
    C('plot_not_a_png_name', 'paths',
      lambda w: ['blindsr_compare_lq', w / 'OURSlq', w / 'THEIRSlq', '--quiet', '--plot', w / 'hist.jpg'], cq_in,
      setup=cs(), mention=(('--plot', 'hist.jpg'),), post=no_path('hist.jpg')),
    C('plot_and_json_same_file', 'data-loss',
      lambda w: ['blindsr_compare_lq', w / 'OURSlq', w / 'THEIRSlq', '--quiet', '--plot', w / 'same.png', '--json', w / 'same.png'],
      cq_in, setup=cs(), mention=('--plot', '--json'), post=no_path('same.png')),
    C('json_is_the_default_plot', 'data-loss',
      lambda w: ['blindsr_compare_lq', w / 'OURSlq', w / 'THEIRSlq', '--quiet', '--json', w / 'OURSlq_vs_THEIRSlq.png'],
      cq_in, setup=cs(), mention=('--plot', '--json'), post=no_path('OURSlq_vs_THEIRSlq.png')),
    C('plot_and_no_plot', 'usage',
      lambda w: ['blindsr_compare_lq', w / 'OURSlq', w / 'THEIRSlq', '--quiet', '--no-plot', '--plot', w / 'p.png'], cq_in,
      setup=cs(), mention=('--no-plot',)),
    C('json_cannot_be_created', 'paths', cq('--json', '/proc/blindsr_x.json'), cq_in, setup=cs(),
      mention=('--json',), one_line=True),
    C('gt_same_size_as_lq', 'images', cq('--gt', lambda w: w / 'OURSlq'), cq_in, setup=cs(),
      mention=('--gt', '32x32'), one_line=True),
    C('gt_smaller_than_lq', 'images', cq('--gt', lambda w: w / 'SMALLgt'), lambda w: [*cq_in(w), w / 'SMALLgt'],
      setup=cs(lambda w: images(w / 'SMALLgt', 12, 16, seed=14)), mention=('--gt', '16x16')),
    C('ours_and_theirs_the_same_folder', 'usage',
      lambda w: ['blindsr_compare_lq', w / 'OURSlq', w / 'OURSlq', '--quiet', '--no-plot'], cq_in, setup=cs(),
      mention=('OURSlq', 'same')),
    C('workers_huge_is_capped', 'numbers', cq('--workers', '9999999'), cq_in, expect='work', ok_rc=(0, 1), setup=cs(),
      post=says('note: --workers 9999999')),
]


COMPARE += [
    C('nine_images_no_verdict', 'images', cq(), cq_in, setup=lambda w: cmp_sets(w, 32, n=9), mention=('at least 10',),
      one_line=True, guard=(), round=24),
]


@pytest.mark.parametrize('case', params('blindsr_compare_lq', COMPARE))
def test_compare_lq(case, ws): check(case, ws, 'blindsr_compare_lq')


# ==================================================================================================================
# blindsr_train
# ==================================================================================================================
def tr(*extra, hq=None, out=None):
    "The tiny training command (2 steps on the CPU), extra flags appended (argparse: the last value of a flag wins)."
    return lambda w: ['blindsr_train', '--train-hq', hq(w) if hq else w.hq, '--out-dir', out(w) if out else w.out,
                      '--iters', '2', '--batch-size', '2', '--generator-kwargs', TINY_KW, '--device', 'cpu',
                      '--no-progress', '--degrade-on', 'gpu', '--log-every', '1', '--val-every', '1000',
                      '--ckpt-every', '1000', *extra]


TR_IN = lambda w: [w.hq]
TR_VAL_IN = lambda w: [w.hq, w.gt]
VALGT = ('--val-gt', lambda w: w.gt)        # no --val-lq: the trainer degrades the val GT first (the "expensive work")


def write_config(w: WS, text: str, name='cfg.json') -> Path:
    p = w / name; p.write_text(text); return p


def ckpt_setup(kind):
    def setup(w):
        w.out.mkdir()
        if kind == 'garbage': (w.out / 'last.ckpt').write_bytes(b'\x00not a checkpoint' * 100)
        elif kind == 'truncated': (w.out / 'last.ckpt').write_bytes(w.ckpt.read_bytes()[:len(w.ckpt.read_bytes()) // 2])
        elif kind == 'empty': (w.out / 'last.ckpt').write_bytes(b'')
        elif kind == 'weights': shutil.copyfile(w.pt, w.out / 'last.ckpt')
        elif kind == 'no_arch':
            import torch
            ck = torch.load(w.ckpt, weights_only=True)
            torch.save({'params': ck['params'], 'step': 1}, w.out / 'last.ckpt')
        elif kind == 'folder': (w.out / 'last.ckpt').mkdir()
    return setup


CKPT_IN = lambda w: [w.hq, w.out / 'last.ckpt']


def train_ckpt_saved(w, r):
    return [] if (w.out / 'last.ckpt').is_file() else ['no last.ckpt was saved']


TRAIN = [
    # ---- impossible numbers ----
    C('iters_negative', 'numbers', tr('--iters', '-5'), TR_IN, mention=(F('iters'),)),
    C('iters_zero', 'numbers', tr('--iters', '0'), TR_IN, mention=(F('iters'),)),
    C('iters_nan', 'numbers', tr('--iters', 'nan'), TR_IN, mention=(F('iters'),)),
    C('batch_size_negative', 'numbers', tr('--batch-size', '-1'), TR_IN, mention=(F('batch_size'),)),
    C('batch_size_zero', 'numbers', tr('--batch-size', '0'), TR_IN, mention=(F('batch_size'),)),
    C('time_budget_negative', 'numbers', tr('--iters', 'none', '--time-budget-min', '-1'), TR_IN, mention=(F('time_budget_min'),)),
    C('time_budget_zero', 'numbers', tr('--iters', 'none', '--time-budget-min', '0'), TR_IN, mention=(F('time_budget_min'),)),
    C('time_budget_nan_alone', 'numbers', tr('--iters', 'none', '--time-budget-min', 'nan'), TR_IN, mention=(F('time_budget_min'),),
      timeout=45),
    C('time_budget_nan_with_iters', 'numbers', tr('--time-budget-min', 'nan'), TR_IN, mention=(F('time_budget_min'),)),
    C('time_budget_inf', 'numbers', tr('--time-budget-min', 'inf'), TR_IN, mention=(F('time_budget_min'),)),
    C('accum_zero', 'numbers', tr('--accum', '0'), TR_IN, mention=(F('accum'),)),
    C('accum_negative', 'numbers', tr('--accum', '-2'), TR_IN, mention=(F('accum'),)),
    C('val_every_zero', 'numbers', tr('--val-every', '0', *VALGT), TR_VAL_IN, mention=(F('val_every'),)),
    C('log_every_zero', 'numbers', tr('--log-every', '0'), TR_IN, mention=(F('log_every'),)),
    C('ckpt_every_zero', 'numbers', tr('--ckpt-every', '0'), TR_IN, mention=(F('ckpt_every'),)),
    C('workers_negative', 'numbers', tr('--workers', '-3', '--degrade-on', 'cpu'), TR_IN, mention=(F('workers'),)),
    C('lr_negative', 'numbers', tr('--lr', '-0.001'), TR_IN, mention=(F('lr'),)),
    C('lr_nan', 'numbers', tr('--lr', 'nan'), TR_IN, mention=(F('lr'),)),
    C('ema_above_one', 'numbers', tr('--ema', '1.5'), TR_IN, mention=(F('ema'),)),
    C('warmup_above_one', 'numbers', tr('--warmup', '2'), TR_IN, mention=(F('warmup'),)),
    C('mse_finish_negative', 'numbers', tr('--mse-finish', '-0.5'), TR_IN, mention=(F('mse_finish'),)),
    C('grad_clip_negative', 'numbers', tr('--grad-clip', '-1'), TR_IN, mention=(F('grad_clip'),)),
    C('seed_negative', 'numbers', tr('--seed', '-1'), TR_IN, mention=(F('seed'),)),
    C('val_holdout_negative', 'numbers', tr('--val-holdout', '-2'), TR_IN, mention=(F('val_holdout'),)),
    C('val_holdout_all_faces', 'numbers', tr('--val-holdout', '4'), TR_IN, mention=((*F('val_holdout'), 'hold out'),)),
    C('val_limit_zero', 'numbers', tr('--val-limit', '0', '--val-gt', lambda w: w.gt, '--val-lq', lambda w: w.lq),
      lambda w: [w.hq, w.gt, w.lq], mention=(F('val_limit'),)),
    C('val_limit_negative', 'numbers', tr('--val-limit', '-1', '--val-gt', lambda w: w.gt, '--val-lq', lambda w: w.lq),
      lambda w: [w.hq, w.gt, w.lq], mention=(F('val_limit'),)),
    C('val_every_min_negative', 'numbers', tr('--val-every-min', '-1', *VALGT), TR_VAL_IN, mention=(F('val_every_min'),)),
    C('degrade_group_negative', 'numbers', tr('--degrade-group', '-1'), TR_IN, mention=(F('degrade_group'),)),
    C('batch_not_divisible_by_accum', 'numbers', tr('--batch-size', '3', '--accum', '2'), TR_IN, mention=(F('accum'),)),
    # ---- generators and names: refused before any data work (one line) ----
    C('generator_typo', 'names', tr('--generator', 'msrresnett', *VALGT), TR_VAL_IN, mention=('msrresnett',), one_line=True,
      post=no_val_lq),
    C('generator_typo_before_decoding', 'names', tr('--generator', 'msrresnett'), TR_IN, one_line=True,
      setup=lambda w: add_bad(w.hq, 'garbage'), mention=('msrresnett',), post=decoded_first),
    C('generator_kwargs_wrong_key', 'names', tr('--generator-kwargs', '{"num_fet": 8}', *VALGT), TR_VAL_IN,
      mention=('num_fet',), one_line=True, post=no_val_lq),
    C('generator_kwargs_json_list', 'names', tr('--generator-kwargs', '[1, 2]', *VALGT), TR_VAL_IN,
      mention=('generator',), one_line=True, post=no_val_lq),
    C('generator_kwargs_string_value', 'names', tr('--generator-kwargs', '{"num_feat": "big"}', *VALGT), TR_VAL_IN,
      mention=('num_feat',), one_line=True, post=no_val_lq),
    C('generator_kwargs_negative', 'names', tr('--generator-kwargs', '{"num_feat": -4}', *VALGT), TR_VAL_IN,
      mention=('num_feat',), one_line=True, post=no_val_lq),
    C('generator_over_param_cap', 'names', tr('--generator-kwargs', '{"num_feat": 128}', *VALGT), TR_VAL_IN,
      mention=(('cap', '2,276,356'),), one_line=True, post=no_val_lq),
    C('generator_kwargs_not_json', 'names', tr('--generator-kwargs', '{num_feat: 8}'), TR_IN, mention=('generator',)),
    C('preset_typo', 'names', tr('--preset', 'ai6126_2042'), TR_IN, mention=('ai6126_2042',), one_line=True),
    C('loss_typo', 'names', tr('--loss', 'l3'), TR_IN, mention=(F('loss'),)),
    C('loss_terms_unknown_term', 'names', tr('--loss-terms', '{"l1": 1, "l2": 0.5}'), TR_IN, mention=('--loss-terms', "'l2'"),
      one_line=True),
    C('loss_terms_negative_weight', 'names', tr('--loss-terms', '{"l1": -1}'), TR_IN, mention=('--loss-terms', 'l1'), one_line=True),
    C('loss_terms_not_json', 'names', tr('--loss-terms', '{l1: 1}'), TR_IN, mention=('--loss-terms',)),
    C('gan_without_its_term', 'names', tr('--gan', '--loss-terms', '{"l1": 1}'), TR_IN, mention=('--gan', '"gan"'), one_line=True),
    C('preset_file_missing', 'names', tr('--preset', 'NOSUCHthing.json'), TR_IN, mention=('--preset', 'NOSUCHthing.json'),
      one_line=True),
    C('flag_abbreviation_accepted', 'usage', tr('--iter', '3'), TR_IN, expect='work'),     # argparse abbreviation of --iters
    C('unknown_flag', 'usage', tr('--epochs', '5'), TR_IN, mention=('--epochs',)),
    # ---- --config ----
    C('config_is_a_folder', 'config', tr('--config', lambda w: w.empty), TR_IN, mention=(('--config', 'EMPTYdir'),)),
    C('config_missing', 'config', tr('--config', lambda w: w.missing), TR_IN, mention=('NOSUCHthing',)),
    C('config_malformed_json', 'config', tr('--config', lambda w: write_config(w, '{"iters": 2,,}')), TR_IN,
      mention=('cfg.json',)),
    C('config_truncated_json', 'config', tr('--config', lambda w: write_config(w, '{"iters": 2, "lr"')), TR_IN,
      mention=('cfg.json',)),
    C('config_unknown_field', 'config', tr('--config', lambda w: write_config(w, '{"iterations": 2}')), TR_IN,
      mention=('iterations',)),
    C('config_is_a_json_list', 'config', tr('--config', lambda w: write_config(w, '[1, 2]')), TR_IN, mention=('cfg.json',)),
    C('config_wrong_type', 'config', tr('--config', lambda w: write_config(w, '{"batch_size": "big"}'), '--batch-size', '2'),
      TR_IN, expect='work'),    # the flag overrides the bad file value: fine
    C('config_wrong_type_used', 'config',
      lambda w: ['blindsr_train', '--config', write_config(w, json.dumps({'train_hq': str(w.hq), 'out_dir': str(w.out),
                 'iters': 'ten', 'batch_size': 2, 'generator_kwargs': json.loads(TINY_KW), 'device': 'cpu', 'progress': False,
                 'degrade_on': 'gpu'}))],
      TR_IN, mention=(F('iters'),)),
    # ---- paths ----
    C('train_hq_missing', 'paths', tr(hq=lambda w: w.missing), TR_IN, mention=('NOSUCHthing',)),
    C('train_hq_is_a_file', 'paths', tr(hq=lambda w: w.hq / '00000.png'), TR_IN, mention=('00000.png',)),
    C('train_hq_empty', 'paths', tr(hq=lambda w: w.empty), TR_IN, mention=('EMPTYdir',)),
    C('train_hq_garbage_png', 'images', tr(), TR_IN, setup=lambda w: add_bad(w.hq, 'garbage'), mention=('00002.png',)),
    C('train_hq_truncated_png', 'images', tr(), TR_IN, setup=lambda w: add_bad(w.hq, 'truncated', 64), mention=('00002.png',)),
    C('train_hq_mixed_sizes', 'images', tr(), TR_IN, setup=lambda w: add_bad(w.hq, 'othersize', 64), mention=('00002',)),
    C('train_hq_has_tif', 'images', tr(), TR_IN, setup=lambda w: add_bad(w.hq, 'tif', 64), mention=('00009.tif',)),
    C('val_lq_without_val_gt', 'paths', tr('--val-lq', lambda w: w.lq), lambda w: [w.hq, w.lq], mention=(F('val_gt'),)),
    C('val_gt_missing', 'paths', tr('--val-gt', lambda w: w.missing), TR_IN, mention=('NOSUCHthing',)),
    C('val_lq_not_quarter_size', 'images', tr('--val-gt', lambda w: w.gt, '--val-lq', lambda w: w.pred),
      lambda w: [w.hq, w.gt, w.pred], mention=(('PREDimgs', 'GTfaces'),)),
    C('val_gt_and_holdout', 'usage', tr('--val-gt', lambda w: w.gt, '--val-holdout', '2'), TR_VAL_IN, mention=(F('val_holdout'),)),
    # ---- output folder ----
    C('out_dir_is_train_hq', 'data-loss', tr(out=lambda w: w.hq), TR_IN, mention=('HQfaces',)),
    C('out_dir_inside_train_hq', 'data-loss', tr(out=lambda w: w.hq / 'run'), TR_IN, mention=('HQfaces',)),
    C('out_dir_contains_train_hq', 'data-loss', tr(out=lambda w: w.root), TR_IN, mention=(('HQfaces', 'input', 'contains'),)),
    C('out_dir_is_val_gt', 'data-loss', tr('--val-gt', lambda w: w.gt, '--val-lq', lambda w: w.lq, out=lambda w: w.gt),
      lambda w: [w.hq, w.gt, w.lq], mention=('GTfaces',)),
    C('out_dir_has_foreign_log_csv', 'data-loss', tr(), lambda w: [w.hq, w.out],
      setup=lambda w: (w.out.mkdir(), (w.out / 'log.csv').write_text('my,own,log\n1,2,3\n')), mention=(('OUTdir', 'log.csv'),)),
    C('out_dir_has_unrelated_files', 'data-loss', tr(), lambda w: [w.hq, w.out],
      setup=lambda w: (w.out.mkdir(), (w.out / 'thesis.tex').write_text('x')), mention=('OUTdir',)),
    C('out_dir_is_an_existing_file', 'paths', tr(out=lambda w: w.txt), lambda w: [w.hq, w.txt], mention=('notes.txt',)),
    C('out_dir_readonly', 'paths', tr(out=lambda w: w / 'RO'), TR_IN, setup=lambda w: w.readonly(w / 'RO'), mention=('RO',)),
    # ---- checkpoints ----
    C('last_ckpt_garbage', 'checkpoint', tr(), CKPT_IN, setup=ckpt_setup('garbage'), mention=('last.ckpt',)),
    C('last_ckpt_truncated', 'checkpoint', tr(), CKPT_IN, setup=ckpt_setup('truncated'), mention=('last.ckpt',)),
    C('last_ckpt_empty', 'checkpoint', tr(), CKPT_IN, setup=ckpt_setup('empty'), mention=('last.ckpt',)),
    C('last_ckpt_is_a_weights_file', 'checkpoint', tr(), CKPT_IN, setup=ckpt_setup('weights'), mention=('last.ckpt',)),
    C('last_ckpt_without_arch', 'checkpoint', tr(), CKPT_IN, setup=ckpt_setup('no_arch'), mention=('last.ckpt',)),
    C('last_ckpt_is_a_folder', 'checkpoint', tr(), CKPT_IN, setup=ckpt_setup('folder'), mention=('last.ckpt',)),
    C('last_ckpt_other_generator', 'checkpoint', tr('--generator-kwargs', '{"num_feat": 16, "num_block": 1}'), CKPT_IN,
      setup=lambda w: (w.out.mkdir(), shutil.copyfile(w.ckpt, w.out / 'last.ckpt')), mention=('last.ckpt',)),
    C('init_from_missing', 'checkpoint', tr('--init-from', lambda w: w.missing), TR_IN, mention=('NOSUCHthing',)),
    C('init_from_garbage', 'checkpoint', tr('--init-from', lambda w: w.garbage_ckpt()), TR_IN, mention=('garbage.pt',)),
    C('init_from_other_generator', 'checkpoint', tr('--init-from', lambda w: w.pt, '--generator-kwargs', '{"num_feat": 16}'),
      TR_IN, mention=('final.pt',)),
    # ---- device ----
    C('device_cuda_without_gpu', 'device', tr('--device', 'cuda'), TR_IN, mention=('cuda',), one_line=True, marks=(NO_GPU,)),
    C('device_cuda1_without_gpu', 'device', tr('--device', 'cuda:1'), TR_IN, mention=('cuda',), one_line=True, marks=(NO_GPU,)),
    C('device_typo', 'device', tr('--device', 'gpu'), TR_IN, mention=('gpu',), one_line=True),
]


TRAIN += [
    C('config_yaml_lr_without_dot', 'config', tr('--config', lambda w: write_config(w, 'lr: 4e-4\n', 'cfg.yaml')), TR_IN,
      expect='work', guard=('OUTdir',), round=24),
]
EXTENDED['blindsr_train'] |= {'config_yaml_lr_without_dot'}


@pytest.mark.parametrize('case', params('blindsr_train', TRAIN))
def test_train(case, ws): check(case, ws, 'blindsr_train')


# ==================================================================================================================
# blindsr_restore
# ==================================================================================================================
def rs(*extra, src=None, out=None):
    return lambda w: ['blindsr_restore', src(w) if src else w.lq, out(w) if out else w.out, '--ckpt', w.pt,
                      '--device', 'cpu', '--no-progress', *extra]


RS_IN = lambda w: [w.lq, w.pt]


def restore_jpg_name_post(w, r):
    "`blindsr_restore a.png result.jpg`: a PNG file named result.jpg, or a clear refusal; never a folder result.jpg/."
    p = w / 'result.jpg'
    if p.is_dir(): return ['created a FOLDER named result.jpg']
    if r.rc == 0:
        if not p.is_file(): return ['exit 0 but no result.jpg written']
        if p.read_bytes()[:8] != b'\x89PNG\r\n\x1a\n': return ['result.jpg is not the PNG asked for']
        return []
    if r.rc != 2: return [f'exit code {r.rc}, want 0 (a PNG written) or 2 (refused)']
    return [] if 'result.jpg' in r.stderr else ['refusal does not name result.jpg']


def jpg_inputs(w):
    shutil.rmtree(w.lq); images(w.lq, 3, 16, ext='jpg')


RESTORE = [
    C('input_missing', 'paths', rs(src=lambda w: w.missing), RS_IN, mention=('NOSUCHthing',)),
    C('input_empty_folder', 'paths', rs(src=lambda w: w.empty), RS_IN, mention=('EMPTYdir',)),
    C('input_text_file', 'paths', rs(src=lambda w: w.txt), RS_IN, mention=('notes.txt',)),
    C('input_tif_file', 'images', rs(src=lambda w: add_bad(w.root, 'tif')), RS_IN, mention=('00009.tif',)),
    C('input_garbage_png', 'images', rs(), RS_IN, setup=lambda w: add_bad(w.lq, 'garbage'), mention=('00002.png',)),
    C('input_truncated_png', 'images', rs(), RS_IN, setup=lambda w: add_bad(w.lq, 'truncated'), mention=('00002.png',)),
    C('input_folder_has_tif', 'images', rs(), RS_IN, setup=lambda w: add_bad(w.lq, 'tif'), mention=('00009.tif',)),
    C('input_folder_has_gif', 'images', rs(), RS_IN, setup=lambda w: add_bad(w.lq, 'gif'), mention=('00009.gif',)),
    C('input_duplicate_stems', 'images', rs(), RS_IN, setup=lambda w: add_bad(w.lq, 'dupjpg'), mention=('00002',)),
    C('out_is_input_folder', 'data-loss', rs(out=lambda w: w.lq), RS_IN, mention=('LQimgs',)),
    C('out_is_input_folder_of_jpgs', 'data-loss', rs(out=lambda w: w.lq), RS_IN, setup=jpg_inputs, mention=('LQimgs',)),
    C('out_inside_input', 'data-loss', rs(out=lambda w: w.lq / 'sr'), RS_IN, mention=('LQimgs',)),
    C('out_contains_input', 'data-loss', rs(out=lambda w: w.root), RS_IN, mention=(('LQimgs', 'input'),)),
    C('out_is_gt_folder', 'data-loss', rs(out=lambda w: w.gt), lambda w: [*RS_IN(w), w.gt], mention=(('GTfaces', '--overwrite'),)),
    C('out_has_unrelated_files', 'data-loss', rs(), lambda w: [*RS_IN(w), w.out],
      setup=lambda w: (w.out.mkdir(), (w.out / 'keep_me.txt').write_text('x')), mention=(('OUTdir', '--overwrite'),)),
    C('out_is_an_existing_file', 'paths', rs(out=lambda w: w.txt), lambda w: [*RS_IN(w), w.txt], mention=('notes.txt',)),
    C('single_png_to_result_jpg', 'paths', rs(src=lambda w: w.lq / '00000.png', out=lambda w: w / 'result.jpg'), RS_IN,
      expect='either', post=restore_jpg_name_post),
    C('single_png_to_tif_name', 'paths', rs(src=lambda w: w.lq / '00000.png', out=lambda w: w / 'result.tif'), RS_IN,
      mention=('result.tif',), post=no_path('result.tif')),
    C('out_png_is_a_users_file', 'data-loss', rs(src=lambda w: w.lq / '00000.png', out=lambda w: w / 'photo.png'),
      lambda w: [*RS_IN(w), w / 'photo.png'], setup=lambda w: users_photo(w, 'photo.png'), mention=(('photo.png', '--overwrite'),)),
    C('rerun_into_its_own_folder_works', 'data-loss', rs(), lambda w: [*RS_IN(w)], expect='work',
      setup=lambda w: subprocess.run([*command('blindsr_restore'), str(w.lq), str(w.out), '--ckpt', str(w.pt), '--device', 'cpu',
                                      '--no-progress'], capture_output=True, env=env_for(), check=True)),
    C('single_png_onto_itself', 'data-loss', rs(src=lambda w: w.lq / '00000.png', out=lambda w: w.lq / '00000.png'), RS_IN,
      mention=('00000.png',)),
    C('single_png_into_own_folder', 'data-loss', rs(src=lambda w: w.lq / '00000.png', out=lambda w: w.lq), RS_IN,
      mention=('00000.png',)),
    C('batch_zero', 'numbers', rs('--batch', '0'), RS_IN, mention=('--batch',)),
    C('batch_negative', 'numbers', rs('--batch', '-1'), RS_IN, mention=('--batch',)),
    C('tile_negative', 'numbers', rs('--tile', '-5'), RS_IN, mention=('--tile',)),
    C('tile_overlap_negative', 'numbers', rs('--tile-overlap', '-10', '--tile', '8'), RS_IN, mention=('--tile-overlap',)),
    C('workers_negative', 'numbers', rs('--workers', '-3'), RS_IN, mention=('--workers',)),
    C('workers_zero', 'numbers', rs('--workers', '0'), RS_IN, mention=('--workers',)),
    C('tta_typo', 'names', rs('--tta', 'flips'), RS_IN, mention=('--tta',)),
    C('arch_typo_for_basicsr_file', 'names',
      lambda w: ['blindsr_restore', w.lq, w.out, '--ckpt', w.pth, '--arch', 'msrresnett', '--device', 'cpu', '--no-progress'],
      lambda w: [w.lq, w.pth], mention=('msrresnett',), one_line=True),
    C('arch_kwargs_wrong_key', 'names',
      lambda w: ['blindsr_restore', w.lq, w.out, '--ckpt', w.pth, '--arch-kwargs', '{"num_fet": 8}', '--device', 'cpu', '--no-progress'],
      lambda w: [w.lq, w.pth], mention=('num_fet',), one_line=True),
    C('arch_kwargs_negative', 'names',
      lambda w: ['blindsr_restore', w.lq, w.out, '--ckpt', w.pth, '--arch-kwargs', '{"num_feat": -4}', '--device', 'cpu', '--no-progress'],
      lambda w: [w.lq, w.pth], mention=('num_feat',), one_line=True),
    C('arch_kwargs_json_list', 'names', rs('--arch-kwargs', '[1, 2]'), RS_IN, mention=('--arch-kwargs',), one_line=True),
    C('arch_kwargs_not_json', 'names', rs('--arch-kwargs', 'num_feat=8'), RS_IN, mention=('--arch-kwargs',)),
    C('arch_kwargs_over_cap', 'names', rs('--ckpt', lambda w: w.pth, '--arch-kwargs', '{"num_feat": 100000, "num_block": 1}'),
      lambda w: [w.lq, w.pth], mention=('--arch-kwargs', 'cap'), one_line=True, timeout=60),
    C('arch_kwargs_float', 'names', rs('--ckpt', lambda w: w.pth, '--arch-kwargs', '{"num_feat": 8.5, "num_block": 1}'),
      lambda w: [w.lq, w.pth], mention=('--arch-kwargs', 'num_feat'), one_line=True),
    C('arch_kwargs_nan', 'names', rs('--ckpt', lambda w: w.pth, '--arch-kwargs', '{"num_feat": NaN, "num_block": 1}'),
      lambda w: [w.lq, w.pth], mention=('--arch-kwargs', 'num_feat'), one_line=True),
    C('weights_nan', 'checkpoint', rs('--ckpt', lambda w: w.nan_weights()), RS_IN, mention=('diverged.pt', 'NaN'), one_line=True,
      post=no_png_in('OUTdir')),
    C('out_cannot_be_created', 'paths', rs(out=lambda w: '/proc/blindsr_out'), RS_IN, mention=('OUT', '/proc/blindsr_out'),
      one_line=True, marks=(PROC,)),
    C('workers_huge', 'numbers', rs('--workers', '100000'), RS_IN, mention=('--workers',)),
    C('weights_missing', 'checkpoint', rs('--ckpt', lambda w: w.missing), RS_IN, mention=('NOSUCHthing',)),
    C('weights_garbage', 'checkpoint', rs('--ckpt', lambda w: w.garbage_ckpt()), RS_IN, mention=('garbage.pt',)),
    C('weights_truncated', 'checkpoint', rs('--ckpt', lambda w: w.truncated_ckpt()), RS_IN, mention=('truncated.ckpt',)),
    C('weights_is_a_folder', 'checkpoint', rs('--ckpt', lambda w: w.run_dir), RS_IN, mention=(('RUNdir', 'folder'),)),
    C('weights_is_an_image', 'checkpoint', rs('--ckpt', lambda w: w.gt / '00000.png'), RS_IN, mention=('00000.png',)),
    C('weights_basicsr_wrong_arch_size', 'checkpoint',
      lambda w: ['blindsr_restore', w.lq, w.out, '--ckpt', w.pth, '--device', 'cpu', '--no-progress'],
      lambda w: [w.lq, w.pth], mention=(('net_g_basicsr.pth', '--arch'),)),
    C('training_ckpt_works', 'checkpoint', rs('--ckpt', lambda w: w.ckpt), RS_IN, expect='work'),
    C('device_cuda_without_gpu', 'device', rs('--device', 'cuda'), RS_IN, mention=('cuda',), one_line=True, marks=(NO_GPU,)),
    C('device_typo', 'device', rs('--device', 'gpu'), RS_IN, mention=('gpu',), one_line=True),
]


# issue 24: one generator check for every weights file, before any model is allocated
def hostile_weights(**over) -> Callable[[WS], Path]:
    "The tiny trained final.pt with some entries replaced (an arch_kwargs over the cap, an arch that is a list, …)."
    def make(w):
        import torch
        ck = torch.load(w.pt, weights_only=True)
        for k, v in over.items(): ck[k] = v(ck) if callable(v) else v
        p = w / 'hostile.pt'
        if not p.exists(): torch.save(ck, p)
        return p
    return make


def retyped(fn) -> Callable:
    return lambda ck: {k: fn(v) for k, v in ck['params'].items()}


HOSTILE_IN = lambda w: [w.lq, w / 'hostile.pt']
RESTORE += [
    C('weights_pt_names_over_cap_arch', 'checkpoint', rs('--ckpt', hostile_weights(arch_kwargs={'num_block': 40})), HOSTILE_IN,
      mention=('hostile.pt', '2,276,356'), one_line=True, post=no_png_in('OUTdir'), guard=('OUTdir',), round=24),
    C('weights_pt_asks_for_many_gb', 'checkpoint', rs('--ckpt', hostile_weights(arch_kwargs={'num_feat': 4096, 'num_block': 200})),
      HOSTILE_IN, mention=('hostile.pt', '2,276,356'), one_line=True, timeout=90, guard=('OUTdir',), round=24),
    C('weights_arch_is_a_list', 'checkpoint', rs('--ckpt', hostile_weights(arch=['msrresnet'])), HOSTILE_IN,
      mention=('hostile.pt', 'arch'), one_line=True, guard=('OUTdir',), round=24),
    C('weights_sparse', 'checkpoint', rs('--ckpt', hostile_weights(params=retyped(lambda v: v.float().to_sparse()))), HOSTILE_IN,
      mention=('hostile.pt', 'sparse'), one_line=True, guard=('OUTdir',), round=24),
    C('weights_complex', 'checkpoint', rs('--ckpt', hostile_weights(params=retyped(lambda v: v.float().to(__import__('torch').complex64)))),
      HOSTILE_IN, mention=('hostile.pt', 'complex'), one_line=True, guard=('OUTdir',), round=24),
    C('weights_integer', 'checkpoint', rs('--ckpt', hostile_weights(params=retyped(lambda v: v.long()))), HOSTILE_IN,
      mention=('hostile.pt', 'int64'), one_line=True, guard=('OUTdir',), round=24),
    C('single_png_to_trailing_slash_is_a_folder', 'paths', rs(src=lambda w: w.lq / '00000.png', out=lambda w: f'{w.out / "new.png"}/'),
      RS_IN, expect='work', post=exists('OUTdir', 'new.png', '00000.png'), guard=('OUTdir',), round=24),
]
EXTENDED['blindsr_restore'] |= {'weights_pt_asks_for_many_gb', 'weights_complex', 'weights_integer'}


@pytest.mark.parametrize('case', params('blindsr_restore', RESTORE))
def test_restore(case, ws): check(case, ws, 'blindsr_restore')


# ==================================================================================================================
# blindsr_val
# ==================================================================================================================
def vl(*extra, lq=None, gt=None, out=None):
    return lambda w: ['blindsr_val', lq(w) if lq else w.lq, gt(w) if gt else w.gt, out(w) if out else w.out, '--ckpt', w.pt,
                      '--device', 'cpu', '--no-progress', '--no-ssim', *extra]


VL_IN = lambda w: [w.lq, w.gt, w.pt]

VAL = [
    C('out_is_val_gt', 'data-loss', vl(out=lambda w: w.gt), VL_IN, mention=('GTfaces',)),
    C('out_is_val_lq', 'data-loss', vl(out=lambda w: w.lq), VL_IN, mention=('LQimgs',)),
    C('out_inside_val_gt', 'data-loss', vl(out=lambda w: w.gt / 'sr'), VL_IN, mention=('GTfaces',)),
    C('out_inside_val_lq', 'data-loss', vl(out=lambda w: w.lq / 'sr'), VL_IN, mention=('LQimgs',)),
    C('out_contains_inputs', 'data-loss', vl(out=lambda w: w.root), VL_IN, mention=(('GTfaces', 'LQimgs', 'input'),)),
    C('out_holds_foreign_pngs', 'data-loss', vl(out=lambda w: w.pred), lambda w: [*VL_IN(w), w.pred],
      mention=(('PREDimgs', '--overwrite'),)),
    C('csv_overwrites_a_gt_image', 'data-loss', vl('--csv', lambda w: w.gt / '00000.png'), VL_IN, mention=(('--csv', '00000.png'),)),
    C('csv_inside_val_lq', 'data-loss', vl('--csv', lambda w: w.lq / 'scores.csv'), VL_IN, mention=(('--csv', 'LQimgs'),)),
    C('csv_is_a_folder', 'paths', vl('--csv', lambda w: w.empty), lambda w: [*VL_IN(w), w.empty], mention=(('--csv', 'EMPTYdir'),)),
    C('csv_is_a_users_file', 'data-loss', vl('--csv', lambda w: w.txt), lambda w: [*VL_IN(w), w.txt], mention=(('--csv', 'notes.txt'),),
      post=no_png_in('OUTdir')),
    C('val_lq_missing', 'paths', vl(lq=lambda w: w.missing), VL_IN, mention=('NOSUCHthing',)),
    C('val_gt_missing', 'paths', vl(gt=lambda w: w.missing), VL_IN, mention=('NOSUCHthing',)),
    C('val_gt_empty', 'paths', vl(gt=lambda w: w.empty), VL_IN, mention=('EMPTYdir',)),
    C('val_gt_is_a_file', 'paths', vl(gt=lambda w: w.txt), VL_IN, mention=('notes.txt',)),
    C('val_lq_garbage_png', 'images', vl(), VL_IN, setup=lambda w: add_bad(w.lq, 'garbage'), mention=('00002.png',)),
    C('val_gt_truncated_png', 'images', vl(), VL_IN, setup=lambda w: add_bad(w.gt, 'truncated', 64), mention=('00002.png',),
      post=no_png_in('OUTdir', why='late check: the val LQ were restored before the GT was checked')),
    C('val_lq_has_tif', 'images', vl(), VL_IN, setup=lambda w: add_bad(w.lq, 'tif'), mention=('00009.tif',)),
    C('val_gt_has_gif', 'images', vl(), VL_IN, setup=lambda w: add_bad(w.gt, 'gif', 64), mention=('00009.gif',)),
    C('val_gt_wrong_size', 'images', vl(), VL_IN, setup=lambda w: add_bad(w.gt, 'othersize', 64), mention=(('GTfaces/00002',),),
      post=all_(no_png_in('OUTdir', why='late check: the val LQ were restored before the GT was checked'),
                says('VAL_GT', where='stderr'))),      # blamed on the GT, not on the prediction
    C('unpaired_stems', 'images', vl(), VL_IN, setup=lambda w: images(w.lq, 1, 16, start=7), mention=('00007',),
      post=no_png_in('OUTdir', why='late check: the val LQ were restored before the GT was checked')),
    C('lq_and_gt_swapped', 'usage', vl(lq=lambda w: w.gt, gt=lambda w: w.lq), VL_IN, mention=(('GTfaces', 'LQimgs', 'size'),)),
    C('batch_zero', 'numbers', vl('--batch', '0'), VL_IN, mention=('--batch',)),
    C('tile_overlap_negative', 'numbers', vl('--tile-overlap', '-10', '--tile', '8'), VL_IN, mention=('--tile-overlap',)),
    C('workers_negative', 'numbers', vl('--workers', '-3'), VL_IN, mention=('--workers',)),
    C('weights_garbage', 'checkpoint', vl('--ckpt', lambda w: w.garbage_ckpt()), VL_IN, mention=('garbage.pt',)),
    C('arch_kwargs_json_list', 'names', vl('--arch-kwargs', '[1, 2]'), VL_IN, mention=('--arch-kwargs',), one_line=True),
    C('device_cuda_without_gpu', 'device', vl('--device', 'cuda'), VL_IN, mention=('cuda',), one_line=True, marks=(NO_GPU,)),
    C('val_lq_is_a_zip', 'paths', vl(lq=lambda w: w.flat_zip(w.lq, 'lq.zip')), VL_IN, mention=('lq.zip', 'unzip'), one_line=True),
    C('csv_inside_out_rerun_works', 'data-loss', vl('--csv', lambda w: w.out / 's.csv'), VL_IN, expect='work',
      setup=lambda w: subprocess.run([*command('blindsr_val'), str(w.lq), str(w.gt), str(w.out), '--ckpt', str(w.pt), '--device',
                                      'cpu', '--no-progress', '--no-ssim', '--csv', str(w.out / 's.csv')],
                                     capture_output=True, env=env_for(), check=True)),
    C('ssim_on_gt_under_7px', 'images', lambda w: ['blindsr_val', w.lq, w.gt, w.out, '--ckpt', w.pt, '--device', 'cpu', '--no-progress'],
      VL_IN, setup=lambda w: (shutil.rmtree(w.lq), shutil.rmtree(w.gt), images(w.lq, 2, 1), images(w.gt, 2, 4)),
      mention=('00000.png', '--no-ssim'), one_line=True, post=no_png_in('OUTdir')),
    C('csv_empty_string', 'paths', vl('--csv', ''), VL_IN, mention=('--csv',), post=no_png_in('OUTdir')),
    C('out_cannot_be_created', 'paths', vl(out=lambda w: '/proc/blindsr_val_out'), VL_IN, mention=('OUT', '/proc/blindsr_val_out'),
      one_line=True, marks=(PROC,)),
    C('weights_nan', 'checkpoint', vl('--ckpt', lambda w: w.nan_weights()), VL_IN, mention=('diverged.pt', 'NaN'),
      post=no_png_in('OUTdir')),
    C('workers_huge', 'numbers', vl('--workers', '100000'), VL_IN, mention=('--workers',)),
]


@pytest.mark.parametrize('case', params('blindsr_val', VAL))
def test_val(case, ws): check(case, ws, 'blindsr_val')


# ==================================================================================================================
# blindsr_submit
# ==================================================================================================================
def sb(*extra, lq=None, zp=None):
    return lambda w: ['blindsr_submit', lq(w) if lq else w.lq, zp(w) if zp else w / 'submission.zip', '--ckpt', w.pt,
                      '--size', '64', '--device', 'cpu', '--no-progress', *extra]


SB_IN = lambda w: [w.lq, w.pt]


def sub_zip(w: WS, stems, name='check.zip', size=64, folder='results') -> Path:
    return make_zip(w / name, {f'{folder}/{s}.png': png_bytes(size, seed=int(s) if s.isdigit() else 0) for s in stems})


def check_cmd(*extra, lq=False):
    return lambda w: ['blindsr_submit', *([w.lq] if lq else []), '--check', w / 'check.zip', '--size', '64', *extra]


CHK_IN = lambda w: [w / 'check.zip', w.lq]


def states_assumed_count(w, r):
    "--check without --n-expected or TEST_LQ: refusing is fine; passing is fine only if it says what count it assumed."
    if r.rc == 0 and not re.search(r'assum|expect|not checked', r.stdout + r.stderr, re.I):
        return ['passed silently without saying which image count it assumed']
    if r.rc not in (0, 2): return [f'exit code {r.rc}']
    return []


SUBMIT = [
    C('check_zip_lacks_last_image_no_n', 'images', check_cmd(), CHK_IN, expect='either',
      setup=lambda w: sub_zip(w, ['00000', '00001', '00002']), post=states_assumed_count),
    C('check_zip_lacks_image_vs_test_lq', 'images', check_cmd(lq=True), CHK_IN,
      setup=lambda w: sub_zip(w, ['00000', '00001', '00002']), mention=('00003',)),
    C('check_zip_adds_image_vs_test_lq', 'images', check_cmd(lq=True), CHK_IN,
      setup=lambda w: sub_zip(w, ['00000', '00001', '00002', '00003', '00004']), mention=('00004',)),
    C('check_zip_adds_image_no_n', 'images', check_cmd(), CHK_IN, expect='either',
      setup=lambda w: sub_zip(w, ['00000', '00001', '00002', '00003', '00004']), post=states_assumed_count),
    C('check_zip_gap_detected', 'images', check_cmd(), CHK_IN, setup=lambda w: sub_zip(w, ['00000', '00002', '00003']),
      mention=('00001',)),
    C('check_n_expected_negative', 'numbers', check_cmd('--n-expected', '-1'), CHK_IN,
      setup=lambda w: sub_zip(w, ['00000', '00001', '00002', '00003']), mention=('--n-expected',)),
    C('check_n_expected_zero', 'numbers', check_cmd('--n-expected', '0'), CHK_IN,
      setup=lambda w: sub_zip(w, ['00000', '00001', '00002', '00003']), mention=('--n-expected',)),
    C('check_n_expected_disagrees_with_test_lq', 'usage', check_cmd('--n-expected', '5', lq=True), CHK_IN,
      setup=lambda w: sub_zip(w, ['00000', '00001', '00002', '00003']), mention=('--n-expected',)),
    C('check_and_out_zip_both', 'usage', lambda w: ['blindsr_submit', w.lq, w / 'out.zip', '--check', w / 'check.zip', '--size', '64'],
      CHK_IN, setup=lambda w: sub_zip(w, ['00000', '00001', '00002', '00003']), mention=('--check',), post=no_path('out.zip')),
    C('check_wrong_image_size', 'images', check_cmd(), CHK_IN,
      setup=lambda w: sub_zip(w, ['00000', '00001'], size=32), mention=('00000.png',)),
    C('check_corrupt_member', 'images', check_cmd(), CHK_IN,
      setup=lambda w: make_zip(w / 'check.zip', {'results/00000.png': b'garbage'}), mention=('00000.png',)),
    C('check_not_a_zip', 'paths', check_cmd(), CHK_IN, setup=lambda w: (w / 'check.zip').write_text('hello'),
      mention=('check.zip',)),
    C('check_truncated_zip', 'paths', check_cmd(), CHK_IN,
      setup=lambda w: (sub_zip(w, ['00000', '00001']), (w / 'check.zip').write_bytes((w / 'check.zip').read_bytes()[:300])),
      mention=('check.zip',)),
    C('check_zip_missing', 'paths', check_cmd(), CHK_IN, mention=('check.zip',)),
    C('check_a_folder', 'paths', lambda w: ['blindsr_submit', '--check', w.gt], lambda w: [w.gt], mention=('GTfaces',)),
    C('n_expected_without_check', 'usage', sb('--n-expected', '400'), SB_IN, mention=('--n-expected',)),
    C('zip_inside_test_lq', 'data-loss', sb(zp=lambda w: w.lq / 'submission.zip'), SB_IN, mention=('LQimgs',)),
    C('zip_overwrites_a_test_image', 'data-loss', sb(zp=lambda w: w.lq / '00000.png'), SB_IN, mention=('00000.png',)),
    C('zip_is_an_existing_folder', 'paths', sb(zp=lambda w: w.gt), lambda w: [*SB_IN(w), w.gt], mention=('GTfaces',)),
    C('zip_is_a_users_file', 'data-loss', sb(zp=lambda w: w / 'photos.zip'), lambda w: [*SB_IN(w), w / 'photos.zip'],
      setup=lambda w: make_zip(w / 'photos.zip', {'holiday/beach.jpg': b'not a submission'}), mention=('photos.zip',),
      post=no_submit_work),
    C('zip_name_without_zip_suffix', 'paths', sb(zp=lambda w: w / 'submission'), SB_IN, mention=('.zip',),
      post=no_path('submission')),
    C('keep_is_test_lq', 'data-loss', sb('--keep', lambda w: w.lq), SB_IN, mention=('LQimgs',)),
    C('keep_inside_test_lq', 'data-loss', sb('--keep', lambda w: w.lq / 'sr'), SB_IN, mention=('LQimgs',)),
    C('keep_holds_foreign_pngs', 'data-loss', sb('--keep', lambda w: w.gt), lambda w: [*SB_IN(w), w.gt],
      mention=(('GTfaces', '--keep'),)),
    C('keep_holds_unrelated_file', 'data-loss', sb('--keep', lambda w: w / 'KEEP'), lambda w: [*SB_IN(w), w / 'KEEP'],
      setup=lambda w: ((w / 'KEEP').mkdir(), (w / 'KEEP' / 'notes.md').write_text('x')), mention=(('KEEP', '--keep'),),
      post=all_(no_submit_work, no_png_in('KEEP'))),
    C('keep_rerun_works', 'data-loss', sb('--keep', lambda w: w / 'KEEP'), SB_IN, expect='work',
      setup=lambda w: subprocess.run([*command('blindsr_submit'), str(w.lq), str(w / 'first.zip'), '--keep', str(w / 'KEEP'),
                                      '--ckpt', str(w.pt), '--size', '64', '--device', 'cpu', '--no-progress'],
                                     capture_output=True, env=env_for(), check=True)),
    C('test_lq_missing', 'paths', sb(lq=lambda w: w.missing), SB_IN, mention=('NOSUCHthing',)),
    C('test_lq_empty', 'paths', sb(lq=lambda w: w.empty), SB_IN, mention=('EMPTYdir',)),
    C('test_lq_is_a_file', 'paths', sb(lq=lambda w: w.lq / '00000.png'), SB_IN, mention=('00000.png',)),
    C('test_lq_garbage_png', 'images', sb(), SB_IN, setup=lambda w: add_bad(w.lq, 'garbage'), mention=('00002.png',)),
    C('test_lq_has_tif', 'images', sb(), SB_IN, setup=lambda w: add_bad(w.lq, 'tif'), mention=('00009.tif',)),
    C('test_lq_badly_named', 'images', sb(), SB_IN,
      setup=lambda w: Image.fromarray(face(np.random.default_rng(0), 16, 16)).save(w.lq / 'face.png'), mention=('face.png',)),
    C('test_lq_mixed_sizes', 'images', sb(), SB_IN, setup=lambda w: add_bad(w.lq, 'othersize'), mention=('00002',),
      post=no_submit_work),                                # refused before restoring anything
    C('lq_wrong_size_for_size', 'images', sb('--size', '128'), SB_IN, mention=('--size',), post=no_submit_work),
    C('size_zero', 'numbers', sb('--size', '0'), SB_IN, mention=('--size',)),
    C('size_negative', 'numbers', sb('--size', '-512'), SB_IN, mention=('--size',)),
    C('size_not_multiple_of_4', 'numbers', sb('--size', '62'), SB_IN, mention=('--size',), post=no_submit_work),
    C('batch_zero', 'numbers', sb('--batch', '0'), SB_IN, mention=('--batch',)),
    C('workers_negative', 'numbers', sb('--workers', '-3'), SB_IN, mention=('--workers',)),
    C('folder_name_escapes', 'usage', sb('--folder-name', '../evil'), SB_IN, mention=(('--folder-name', 'folder_name', 'folder name'),)),
    C('weights_truncated', 'checkpoint', sb('--ckpt', lambda w: w.truncated_ckpt()), SB_IN, mention=('truncated.ckpt',)),
    C('device_cuda_without_gpu', 'device', sb('--device', 'cuda'), SB_IN, mention=('cuda',), one_line=True, marks=(NO_GPU,)),
    C('no_arguments', 'usage', lambda w: ['blindsr_submit'], mention=('TEST_LQ',)),
    C('zip_argument_missing', 'usage', lambda w: ['blindsr_submit', w.lq], lambda w: [w.lq], mention=('zip',)),
    C('keep_is_the_zip', 'data-loss', sb('--keep', lambda w: w / 'submission.zip'), SB_IN, mention=('--keep',), one_line=True,
      post=all_(no_submit_work, no_path('submission.zip'))),
    C('killed_run_work_is_removed', 'paths', sb(), SB_IN, expect='work', setup=killed_submit_left_work,
      post=all_(stale_work_removed, exists('submission.zip'))),
    C('zip_cannot_be_created', 'paths', sb(zp=lambda w: '/proc/blindsr_sub.zip'), SB_IN, mention=('ZIP', '/proc/blindsr_sub.zip'),
      one_line=True, marks=(PROC,)),
    C('check_test_lq_is_a_zip', 'paths', lambda w: ['blindsr_submit', w.flat_zip(w.lq, 'lq.zip'), '--check', w / 'check.zip',
                                                    '--size', '64'], CHK_IN,
      setup=lambda w: sub_zip(w, ['00000', '00001', '00002', '00003']), mention=('lq.zip', 'unzip'), one_line=True),
    C('weights_nan', 'checkpoint', sb('--ckpt', lambda w: w.nan_weights()), SB_IN, mention=('diverged.pt', 'NaN'),
      post=no_submit_work),
]


# issue 24: --check decodes every PNG, refuses a name stored twice, never reads a member past what a PNG can need
def corrupt_idat(data: bytes) -> bytes:
    "A PNG whose IDAT bytes are flipped in the middle and its CRC recomputed: the chunks check, the pixels do not decode."
    import struct, zlib
    i = data.index(b'IDAT'); n = struct.unpack('>I', data[i - 4:i])[0]
    body = bytearray(data[i + 4:i + 4 + n])
    for k in range(len(body) // 2, min(len(body) // 2 + 8, len(body))): body[k] ^= 0xFF
    return data[:i + 4] + bytes(body) + struct.pack('>I', zlib.crc32(b'IDAT' + bytes(body))) + data[i + 8 + n:]


def zip_entries(path: Path, entries: list, compression=zipfile.ZIP_STORED) -> Path:
    "A zip of (name, bytes) entries in order, a name possibly twice."
    import warnings
    with zipfile.ZipFile(path, 'w', compression) as zf, warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for n, b in entries: zf.writestr(n, b)
    return path


TWO = lambda w: [('results/00000.png', png_bytes(64)), ('results/00001.png', png_bytes(64, seed=1))]
SUBMIT += [
    C('check_corrupt_idat_crc_recomputed', 'images', check_cmd('--n-expected', '2'), CHK_IN,
      setup=lambda w: zip_entries(w / 'check.zip', [TWO(w)[0], ('results/00001.png', corrupt_idat(png_bytes(64, seed=1)))]),
      mention=('00001.png',), one_line=True, guard=(), round=24),
    C('check_duplicate_member', 'images', check_cmd('--n-expected', '2'), CHK_IN,
      setup=lambda w: zip_entries(w / 'check.zip', [*TWO(w), ('results/00001.png', png_bytes(64, seed=2))]),
      mention=('00001.png', 'twice'), one_line=True, guard=(), round=24),
    C('check_member_padded_with_zeros', 'images', check_cmd('--n-expected', '2'), CHK_IN,
      setup=lambda w: zip_entries(w / 'check.zip', [TWO(w)[0], ('results/00001.png', png_bytes(64, seed=1) + bytes(64 << 20))],
                                  zipfile.ZIP_DEFLATED),
      mention=('00001.png', 'not read'), one_line=True, guard=(), round=24),
    C('weights_pt_names_over_cap_arch', 'checkpoint', sb('--ckpt', hostile_weights(arch_kwargs={'num_block': 40})),
      lambda w: [w.lq, w / 'hostile.pt'], mention=('hostile.pt', '2,276,356'), one_line=True, post=no_submit_work,
      guard=(), round=24),
]
EXTENDED['blindsr_submit'] |= {'weights_pt_names_over_cap_arch'}


@pytest.mark.parametrize('case', params('blindsr_submit', SUBMIT))
def test_submit(case, ws): check(case, ws, 'blindsr_submit')


# ==================================================================================================================
# blindsr_demo
# ==================================================================================================================
def dm(*extra):
    return lambda w: ['blindsr_demo', '--out', w.out, '--weights', w.pt, '--device', 'cpu', *extra]


DM_IN = lambda w: [w.pt]
GAN_SHIPPED = (Path(__file__).resolve().parent.parent / 'blindsr' / 'weights' / 'blindsr_gan.pt').exists()


def demo_image_is_output(w):
    w.out.mkdir()
    Image.fromarray(face(np.random.default_rng(5), 96, 96)).save(w.out / 'demo.png')


DEMO = [
    C('weights_missing', 'checkpoint', dm('--weights', lambda w: w.missing), DM_IN, mention=('NOSUCHthing',)),
    C('weights_garbage', 'checkpoint', dm('--weights', lambda w: w.garbage_ckpt()), DM_IN, mention=('garbage.pt',)),
    C('weights_truncated', 'checkpoint', dm('--weights', lambda w: w.truncated_ckpt()), DM_IN, mention=('truncated.ckpt',)),
    C('weights_is_a_folder', 'checkpoint', dm('--weights', lambda w: w.run_dir), DM_IN, mention=(('RUNdir', 'folder'),)),
    C('image_missing', 'paths', dm('--image', lambda w: w.missing), DM_IN, mention=('NOSUCHthing',)),
    C('image_garbage', 'images', dm('--image', lambda w: add_bad(w.root, 'garbage')), DM_IN, mention=('00002.png',)),
    C('image_truncated', 'images', dm('--image', lambda w: add_bad(w.root, 'truncated', 64)), DM_IN, mention=('00002.png',)),
    C('image_is_a_folder', 'paths', dm('--image', lambda w: w.gt), lambda w: [w.pt, w.gt], mention=('GTfaces',)),
    C('image_is_the_output_demo_png', 'data-loss', dm('--image', lambda w: w.out / 'demo.png'),
      lambda w: [w.pt, w.out / 'demo.png'], setup=demo_image_is_output, mention=('demo.png',)),
    C('out_is_an_existing_file', 'paths', dm('--out', lambda w: w.txt), lambda w: [w.pt, w.txt], mention=('notes.txt',)),
    C('out_has_a_users_demo_png', 'data-loss', dm(), lambda w: [w.pt, w.out / 'demo.png'],
      setup=lambda w: users_photo(w, 'OUTdir', 'demo.png'), mention=('demo.png',)),
    C('out_readonly', 'paths', dm('--out', lambda w: w / 'RO'), DM_IN, setup=lambda w: w.readonly(w / 'RO'), mention=('RO',)),
    C('image_tif', 'images', dm('--image', lambda w: add_bad(w.root, 'tif', 64)), DM_IN, mention=('00009.tif',)),
    C('preset_typo', 'names', dm('--preset', 'ai6126_2042'), DM_IN, mention=('ai6126_2042',), one_line=True),
    C('gan_weights_not_shipped', 'checkpoint', lambda w: ['blindsr_demo', '--gan', '--out', w.out, '--device', 'cpu'],
      mention=('blindsr_bench report', 'blindsr_gan.pt'), one_line=True,
      marks=(pytest.mark.skipif(GAN_SHIPPED, reason='blindsr/weights/blindsr_gan.pt is shipped: --gan runs'),)),
    C('seed_negative', 'numbers', dm('--seed', '-1'), DM_IN, mention=('--seed',)),
    C('tta_typo', 'names', dm('--tta', 'x9'), DM_IN, mention=('--tta',)),
    C('device_cuda_without_gpu', 'device', dm('--device', 'cuda'), DM_IN, mention=('cuda',), one_line=True, marks=(NO_GPU,)),
    C('device_typo', 'device', dm('--device', 'gpu'), DM_IN, mention=('gpu',), one_line=True),
    # QA round 2: any matplotlib PNG counted as the demo's own; an output that cannot be created; a face too small
    C('out_has_a_users_matplotlib_figure', 'data-loss', dm(), lambda w: [w.pt, w.out / 'demo.png'],
      setup=lambda w: matplotlib_figure(w.out / 'demo.png'), mention=('demo.png', '--overwrite')),
    C('overwrite_replaces_a_users_demo_png', 'data-loss', dm('--overwrite'), DM_IN, expect='work',
      setup=lambda w: matplotlib_figure(w.out / 'demo.png'), post=exists('OUTdir', 'demo.png')),
    C('out_cannot_be_created', 'paths', dm('--out', '/proc/blindsr_demo'), DM_IN, mention=('--out', '/proc/blindsr_demo'),
      one_line=True),
    C('image_1px', 'images', dm('--image', lambda w: tiny_png(w, 'dot.png', 1, 1)), DM_IN, mention=('dot.png', '128')),
    C('image_flat', 'images', dm('--image', lambda w: tiny_png(w, 'flat.png', 160, 160)), DM_IN, mention=('flat.png',)),
    C('weights_nan', 'checkpoint', dm('--weights', lambda w: w.nan_weights()), DM_IN, mention=('diverged.pt', 'NaN'),
      post=no_png_in('OUTdir')),
]


def tiny_png(w: WS, name: str, h: int, wd: int) -> Path:
    "A one-colour h x wd PNG in the workspace (no face at all)."
    p = w / name
    Image.fromarray(np.full((h, wd, 3), 120, np.uint8)).save(p)
    return p


@pytest.mark.parametrize('case', params('blindsr_demo', DEMO))
def test_demo(case, ws): check(case, ws, 'blindsr_demo')


# ==================================================================================================================
# blindsr_bench
# ==================================================================================================================
TINY_SET = ['--set', f'generator_kwargs={TINY_KW}', '--set', 'batch_size=2']


def bn(*args):
    return lambda w: ['blindsr_bench', *args]


def rc_(*extra, faces=None):
    "blindsr_bench recipes on 6 tiny faces, tiny generator, 3-second runs, 2 held out."
    return lambda w: ['blindsr_bench', 'recipes', faces(w) if faces else w / 'FACES', '--minutes', '0.05', '--val-holdout', '2',
                      '--out-dir', w.out, '--device', 'cpu', '--recipes', 'blindsr_default', *TINY_SET, *extra]


def faces6(w): images(w / 'FACES', 6, 64, seed=21)


FACES_IN = lambda w: [w / 'FACES']

BENCH = [
    C('speed_parts_typo', 'names', bn('speed', '--smoke', '--device', 'cpu', '--parts', 'degradaton'),
      mention=('degradaton',)),
    C('speed_generators_typo', 'names', bn('speed', '--smoke', '--device', 'cpu', '--parts', 'generators', '--generators', 'msrresnett'),
      mention=('msrresnett',), one_line=True),
    C('speed_device_cuda_without_gpu', 'device', bn('speed', '--smoke', '--device', 'cuda', '--parts', 'generators'),
      mention=('cuda',), one_line=True, marks=(NO_GPU,)),
    C('speed_json_is_a_folder', 'paths', lambda w: ['blindsr_bench', 'speed', '--smoke', '--device', 'cpu', '--parts', 'generators',
                                                      '--json', w.empty], lambda w: [w.empty], mention=(('--json', 'EMPTYdir'),)),
    C('speed_faces_missing', 'paths', lambda w: ['blindsr_bench', 'speed', '--smoke', '--device', 'cpu', '--parts', 'training',
                                                   '--faces', w.missing], mention=('NOSUCHthing',)),
    C('speed_set_unknown_field', 'names', bn('speed', '--smoke', '--device', 'cpu', '--set', 'iterz=3'), mention=('iterz',)),
    C('speed_set_negative_batch', 'numbers', bn('speed', '--smoke', '--device', 'cpu', '--parts', 'training', '--set', 'batch_size=-2'),
      mention=('batch_size',), timeout=60),
    C('recipes_typo', 'names', lambda w: ['blindsr_bench', 'recipes', w / 'FACES', '--recipes', 'blindsr_defualt'], FACES_IN,
      setup=faces6, mention=('blindsr_defualt',)),
    C('recipes_minutes_negative', 'numbers', rc_('--minutes', '-1'), FACES_IN, setup=faces6, mention=('--minutes',)),
    C('recipes_minutes_zero', 'numbers', rc_('--minutes', '0'), FACES_IN, setup=faces6, mention=('--minutes',)),
    C('recipes_minutes_nan', 'numbers', rc_('--minutes', 'nan'), FACES_IN, setup=faces6, mention=('--minutes',), timeout=45),
    C('recipes_val_holdout_negative', 'numbers', rc_('--val-holdout', '-2'), FACES_IN, setup=faces6, mention=('--val-holdout',)),
    C('recipes_val_holdout_zero', 'numbers', rc_('--val-holdout', '0'), FACES_IN, setup=faces6, mention=('--val-holdout',)),
    C('recipes_val_every_min_negative', 'numbers', rc_('--val-every-min', '-1'), FACES_IN, setup=faces6, mention=('--val-every-min',)),
    C('recipes_faces_missing', 'paths', rc_(faces=lambda w: w.missing), mention=('NOSUCHthing',)),
    C('recipes_out_dir_is_faces', 'data-loss', rc_('--out-dir', lambda w: w / 'FACES'), FACES_IN, setup=faces6,
      mention=(('--out-dir', 'FACES'),)),
    C('recipes_set_generator_typo', 'names', rc_('--set', 'generator=msrresnett'), FACES_IN, setup=faces6,
      mention=('msrresnett',), one_line=True, post=no_path('OUTdir', 'blindsr_default', 'val_gt', why='late check: faces copied before the refusal')),
    C('recipes_device_cuda_without_gpu', 'device', rc_('--device', 'cuda'), FACES_IN, setup=faces6, mention=('cuda',),
      one_line=True, marks=(NO_GPU,)),
    C('breakdown_steps_zero', 'numbers', lambda w: ['blindsr_bench', 'breakdown', w / 'FACES', '--steps', '0', '--device', 'cpu', *TINY_SET],
      FACES_IN, setup=faces6, mention=('--steps',)),
    C('breakdown_steps_negative', 'numbers', lambda w: ['blindsr_bench', 'breakdown', w / 'FACES', '--steps', '-4', '--device', 'cpu',
                                                        *TINY_SET], FACES_IN, setup=faces6, mention=('--steps',)),
    C('breakdown_faces_missing', 'paths', lambda w: ['blindsr_bench', 'breakdown', w.missing, '--device', 'cpu', *TINY_SET],
      mention=('NOSUCHthing',)),
    C('cpu_lq_missing', 'paths', lambda w: ['blindsr_bench', 'cpu', w.missing], mention=('NOSUCHthing',)),
    C('cpu_faces_zero', 'numbers', lambda w: ['blindsr_bench', 'cpu', w / 'FACES', '--faces', '0'], FACES_IN, setup=faces6,
      mention=('--faces',)),
    C('cpu_ckpt_missing', 'paths', lambda w: ['blindsr_bench', 'cpu', w / 'FACES', '--ckpt', w.missing], FACES_IN, setup=faces6,
      mention=('--ckpt', 'NOSUCHthing')),
    C('cpu_parts_typo', 'names', lambda w: ['blindsr_bench', 'cpu', w / 'FACES', '--parts', 'restor'], FACES_IN, setup=faces6,
      mention=('restor',)),
    C('no_subcommand', 'usage', bn(), mention=(('speed', 'cmd'),)),
    # blindsr_bench report (issue 25): every mistake before any phase runs
    C('report_faces_missing', 'paths', bn('report', '--faces', lambda w: w.missing, '--device', 'cpu', '--out', lambda w: w.out),
      mention=('NOSUCHthing',), one_line=True),
    C('report_minutes_zero', 'numbers', bn('report', '--smoke', '--device', 'cpu', '--minutes', '0'), mention=('--minutes',)),
    C('report_phase_typo', 'names', bn('report', '--smoke', '--device', 'cpu', '--phases', 'gann'), mention=('gann',)),
    C('report_set_unknown_field', 'names', bn('report', '--smoke', '--device', 'cpu', '--set', 'iterz=3', '--out', lambda w: w.out),
      mention=('iterz',), one_line=True),
    C('report_out_is_faces', 'data-loss', bn('report', '--faces', lambda w: w / 'FACES', '--device', 'cpu', '--out', lambda w: w / 'FACES'),
      FACES_IN, setup=faces6, mention=(('--out', 'FACES'),), one_line=True),
    C('report_val_holdout_all_faces', 'numbers', bn('report', '--faces', lambda w: w / 'FACES', '--device', 'cpu', '--val-holdout', '6',
                                                   '--out', lambda w: w.out), FACES_IN, setup=faces6, mention=('--val-holdout',), one_line=True),
    C('report_device_cuda_without_gpu', 'device', bn('report', '--smoke', '--device', 'cuda', '--out', lambda w: w.out),
      mention=('cuda',), one_line=True, marks=(NO_GPU,)),
]


BENCH += [
    C('recipes_set_out_dir', 'names', rc_('--set', lambda w: f'out_dir={w / "ELSEWHERE"}'), FACES_IN, setup=faces6,
      mention=('out_dir', '--out-dir'), one_line=True, post=no_path('ELSEWHERE'), guard=(), round=24),
    C('recipes_set_train_hq', 'names', rc_('--set', lambda w: f'train_hq={w.hq}'), lambda w: [*FACES_IN(w), w.hq], setup=faces6,
      mention=('train_hq', 'FACES'), one_line=True, guard=(), round=24),
]
EXTENDED['blindsr_bench'] |= {'recipes_set_train_hq'}


@pytest.mark.parametrize('case', params('blindsr_bench', BENCH))
def test_bench(case, ws): check(case, ws, 'blindsr_bench')


# ==================================================================================================================
# blindsr_kaggle (always with --dir in the workspace and an empty HOME: the checkout's kaggle_kernel/ is never written,
# no credentials are ever found, nothing is ever sent)
# ==================================================================================================================
def _checkout() -> Path:
    import blindsr
    return Path(blindsr.__file__).resolve().parent.parent


def kb(*extra):
    return lambda w: ['blindsr_kaggle', 'build', '--dir', w / 'KDIR', '--root', _checkout(), '--user', 'alice',
                      '--dataset', 'ai6126-faces', *extra]


KG_IN = lambda w: [_checkout() / 'kaggle_kernel', _checkout() / 'nbs']
NO_KDIR = nothing_in('KDIR', why='late check: kernel files written although the build was refused')

KAGGLE = [
    C('build_hours_negative', 'numbers', kb('--hours', '-1'), KG_IN, mention=(('--hours', 'hours '),), home=True, post=NO_KDIR),
    C('build_hours_zero', 'numbers', kb('--hours', '0'), KG_IN, mention=(('--hours', 'hours '),), home=True, post=NO_KDIR),
    C('build_hours_nan', 'numbers', kb('--hours', 'nan'), KG_IN, mention=(('--hours', 'hours '),), home=True, post=NO_KDIR),
    C('build_hours_inf', 'numbers', kb('--hours', 'inf'), KG_IN, mention=(('--hours', 'hours '),), home=True, post=NO_KDIR),
    C('build_hours_over_limit', 'numbers', kb('--hours', '12'), KG_IN, mention=(('--hours', 'hours '),), home=True, post=NO_KDIR),
    C('build_hours_no_time_to_train', 'numbers', kb('--hours', '0.0001'), KG_IN, mention=(('--hours', 'hours '), 'at least 0.50 h'),
      one_line=True, home=True, post=NO_KDIR),
    C('build_trial_hours_too_short', 'numbers', kb('--trial', '--hours', '0.1'), KG_IN, mention=(('--hours', 'hours '), 'at least 0.22 h'),
      one_line=True, home=True, post=NO_KDIR),
    C('build_sessions_zero', 'numbers', kb('--sessions', '0'), KG_IN, mention=('--sessions',), home=True, post=NO_KDIR),
    C('build_continue_without_a_build', 'usage', kb('--continue'), KG_IN, mention=('--continue',), one_line=True, home=True,
      post=NO_KDIR),
    C('dataset_data_missing', 'paths', lambda w: ['blindsr_kaggle', 'dataset', '--user', 'alice', '--data', w.missing,
                                                  '--no-upload', '--path', w / 'DS', '--root', _checkout(), '--dir', w / 'KDIR'],
      KG_IN, mention=('NOSUCHthing',), one_line=True, home=True, post=nothing_in('DS', why='dataset folder made from no data')),
    C('dataset_slug_too_short', 'names', lambda w: ['blindsr_kaggle', 'dataset', '--user', 'alice', '--slug', 'faces',
                                                    '--no-upload', '--root', _checkout(), '--dir', w / 'KDIR'],
      KG_IN, mention=("'faces'", '6-50'), one_line=True, home=True),
    C('build_generator_typo', 'names', kb('--generator', 'msrresnett'), KG_IN, mention=('msrresnett',), one_line=True,
      home=True, post=NO_KDIR),
    C('build_kwargs_json_list', 'names', kb('--generator-kwargs', '[1, 2]'), KG_IN, mention=('generator',), one_line=True,
      home=True, post=NO_KDIR),
    C('build_kwargs_wrong_key', 'names', kb('--generator-kwargs', '{"num_fet": 8}'), KG_IN, mention=('num_fet',),
      one_line=True, home=True, post=NO_KDIR),
    C('build_kwargs_string_value', 'names', kb('--generator-kwargs', '{"num_feat": "big"}'), KG_IN, mention=('num_feat',),
      one_line=True, home=True, post=NO_KDIR),
    C('build_kwargs_negative', 'names', kb('--generator-kwargs', '{"num_feat": -4}'), KG_IN, mention=('num_feat',),
      one_line=True, home=True, post=NO_KDIR),
    C('build_generator_over_param_cap', 'names', kb('--generator', 'msrresnet', '--generator-kwargs', '{"num_feat": 128}'),
      KG_IN, mention=(('cap', '2,276,356'),), one_line=True, home=True, post=NO_KDIR),
    C('build_kwargs_not_json', 'names', kb('--generator-kwargs', '{num_feat: 8}'), KG_IN, mention=('--generator-kwargs',),
      home=True, post=NO_KDIR),
    C('build_user_invalid', 'names', kb('--user', 'alice smith!'), KG_IN, mention=(('--user', 'user '),), home=True, post=NO_KDIR),
    C('build_dataset_invalid', 'names', kb('--dataset', 'a/b/c'), KG_IN, mention=(('--dataset', 'dataset '),), home=True, post=NO_KDIR),
    C('build_machine_typo', 'names', kb('--machine', 'V100'), KG_IN, mention=('--machine',), home=True, post=NO_KDIR),
    C('build_without_user', 'usage', lambda w: ['blindsr_kaggle', 'build', '--dir', w / 'KDIR', '--root', _checkout(),
                                                 '--dataset', 'x'], KG_IN, mention=('--user',), home=True, post=NO_KDIR),
    C('build_dir_is_a_file', 'paths', kb('--dir', lambda w: w.txt), lambda w: [*KG_IN(w), w.txt], mention=('notes.txt',), home=True),
    C('build_dir_holds_foreign_kernel', 'data-loss', kb(), lambda w: [*KG_IN(w), w / 'KDIR'],
      setup=lambda w: ((w / 'KDIR').mkdir(), (w / 'KDIR' / 'kernel-metadata.json').write_text('{"id": "bob/other-kernel"}')),
      mention=(('KDIR', 'kernel-metadata.json'),), home=True),
    C('build_root_missing', 'paths', lambda w: ['blindsr_kaggle', 'build', '--dir', w / 'KDIR', '--root', w.missing,
                                                 '--user', 'alice', '--dataset', 'ai6126-faces'], KG_IN, mention=('NOSUCHthing',),
      home=True),
    C('push_dry_run_missing_dir', 'paths', lambda w: ['blindsr_kaggle', 'push', '--dry-run', '--dir', w.missing, '--root', _checkout()],
      KG_IN, mention=('NOSUCHthing',), home=True),
    C('push_dry_run_empty_dir', 'paths', lambda w: ['blindsr_kaggle', 'push', '--dry-run', '--dir', w.empty, '--root', _checkout()],
      KG_IN, mention=('EMPTYdir',), home=True),
    C('status_without_cli_or_credentials', 'usage', lambda w: ['blindsr_kaggle', 'status', 'alice/blindsr-train',
                                                                '--root', _checkout(), '--dir', w / 'KDIR'],
      KG_IN, mention=('kaggle',), home=True),
    C('output_without_cli_or_credentials', 'usage', lambda w: ['blindsr_kaggle', 'output', 'alice/blindsr-train', '-p', w.out,
                                                                '--root', _checkout(), '--dir', w / 'KDIR'],
      KG_IN, mention=('kaggle',), home=True, post=no_path('OUTdir', why='output folder made although nothing can be fetched')),
]


# issue 24: writes never follow a link at the target; the wheel packs what git tracks; malformed metadata named
def users_rc(w: WS) -> Path:
    p = w / 'bashrc'; p.write_text('# my shell setup\n'); return p


def kdir_with_links(w: WS):
    "KDIR built by blindsr before (build.json), its kernel-metadata.json and notebook now links to a user's file."
    from dataclasses import asdict
    from blindsr.kaggle_build import KernelSpec
    kd = w / 'KDIR'; kd.mkdir()
    (kd / 'build.json').write_text(json.dumps(asdict(KernelSpec(user='alice', dataset='ai6126-faces'))))
    target = users_rc(w)
    for n in ('kernel-metadata.json', 'blindsr-train.ipynb'): (kd / n).symlink_to(target)


def not_links(*parts) -> Callable:
    def post(w, r):
        p = w.root.joinpath(*parts)
        return [f'{p.relative_to(w.root)} is still a link'] if p.is_symlink() else ([] if p.is_file() else [f'{p.relative_to(w.root)} missing'])
    return post


def listing_ok(w, r):
    out = r.stdout
    return (['--list-files does not list blindsr/core.py'] if 'blindsr/core.py' not in out else []) + \
           (['the demo weights were packed'] if 'blindsr/weights/' in out else [])


KAGGLE += [
    C('output_kernel_without_owner', 'names', lambda w: ['blindsr_kaggle', 'output', 'foo', '-p', w.out, '--root', _checkout(),
                                                          '--dir', w / 'KDIR'], KG_IN, mention=('foo',), one_line=True, home=True,
      guard=(), round=24),
    C('build_json_is_a_list', 'names', kb(), lambda w: [*KG_IN(w), w / 'KDIR'],
      setup=lambda w: ((w / 'KDIR').mkdir(), (w / 'KDIR' / 'build.json').write_text('[1, 2]')), mention=('build.json',),
      one_line=True, home=True, guard=(), round=24),
    C('build_json_wrong_types', 'names', kb(), lambda w: [*KG_IN(w), w / 'KDIR'],
      setup=lambda w: ((w / 'KDIR').mkdir(), (w / 'KDIR' / 'build.json').write_text('{"user": 3, "dataset": ["x"]}')),
      mention=('build.json',), one_line=True, home=True, guard=(), round=24),
    C('push_metadata_is_a_list', 'names', lambda w: ['blindsr_kaggle', 'push', '--dry-run', '--dir', w / 'KDIR', '--root', _checkout()],
      lambda w: [*KG_IN(w), w / 'KDIR'], expect='work', ok_rc=(1,),
      setup=lambda w: ((w / 'KDIR').mkdir(), (w / 'KDIR' / 'kernel-metadata.json').write_text('[1]')),
      post=says('kernel-metadata.json holds a JSON list'), home=True, guard=(), round=24),
    C('build_replaces_links_never_follows', 'data-loss', kb(), lambda w: [*KG_IN(w), w / 'bashrc'], expect='work',
      setup=kdir_with_links, post=all_(not_links('KDIR', 'kernel-metadata.json'), not_links('KDIR', 'blindsr-train.ipynb')),
      home=True, guard=('KDIR',), round=24),
    C('build_lists_packed_files', 'paths', kb('--list-files'), KG_IN, expect='work', post=listing_ok, home=True,
      guard=('KDIR',), round=24),
    C('colab_build_replaces_link_never_follows', 'data-loss',
      lambda w: ['blindsr_colab', 'build', '--dir', w / 'CDIR', '--root', _checkout()], lambda w: [*KG_IN(w), w / 'bashrc'],
      expect='work', setup=lambda w: ((w / 'CDIR').mkdir(), (w / 'CDIR' / 'blindsr-colab.ipynb').symlink_to(users_rc(w))),
      post=not_links('CDIR', 'blindsr-colab.ipynb'), home=True, guard=('CDIR',), round=24),
]
EXTENDED['blindsr_kaggle'] |= {'build_json_wrong_types', 'push_metadata_is_a_list', 'colab_build_replaces_link_never_follows'}


@pytest.mark.parametrize('case', params('blindsr_kaggle', KAGGLE))
def test_kaggle(case, ws): check(case, ws, 'blindsr_kaggle')


# ==================================================================================================================
# Ctrl-C (SIGINT) in blindsr_train and blindsr_degrade: one line, no traceback, exit 130, resumable
# ==================================================================================================================
INTERRUPT_RC = 130     # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C


def interrupt(cmd, inputs, ready: Callable[[], bool], group: bool, timeout=120) -> tuple[Result, str]:
    "Start `cmd`, wait until ready(), send SIGINT (to the process group when `group`, as a terminal's Ctrl-C does)."
    cmd = [str(c) for c in cmd]; cmd = command(cmd[0]) + cmd[1:]
    before = snapshot(inputs)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_for(), start_new_session=True)
    note = ''
    deadline = time.time() + timeout
    while time.time() < deadline and p.poll() is None and not ready():
        time.sleep(0.2)
    if p.poll() is not None: note = 'finished before it could be interrupted'
    else:
        time.sleep(0.3)
        (os.killpg(p.pid, signal.SIGINT) if group else p.send_signal(signal.SIGINT))
    try:
        out, err = p.communicate(timeout=90)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL); out, err = p.communicate(); rc = None
        err += '\n[killed by the test: the command did not stop within 90 s of Ctrl-C]'
    return Result(cmd, rc, out, err, snapshot_diff(before, snapshot(inputs)), time.perf_counter() - t0), note


def interrupt_problems(r: Result, note: str, w: WS) -> list[str]:
    problems = [note] if note else []
    r = Result(r.cmd, r.rc, scrub(r.stdout, w), scrub(r.stderr, w), r.changed, r.seconds)
    if r.rc is None: problems.append('hang after SIGINT')
    if r.traceback: problems.append(f'traceback: {r.traceback}')
    if r.changed: problems.append(f'input changed: {"; ".join(r.changed)}')
    if r.rc is not None and r.rc != INTERRUPT_RC: problems.append(f'exit code {r.rc}, want {INTERRUPT_RC}')
    body = err_lines(r.stderr)
    if not any('interrupt' in l.lower() for l in body): problems.append('no "interrupted at …" line on stderr')
    if not re.search(r'rerun|run the same command|resume', r.stderr, re.I): problems.append('does not say to rerun the same command')
    if len(body) > 1: problems.append(f'{len(body)} lines on stderr, want one')
    return problems


def big_hq(w: WS, n=200, size=256) -> Path:
    return images(w / 'BIGhq', n, size, seed=31)


@pytest.mark.parametrize('group', [False, True], ids=['sigint_main_process', 'ctrl_c_process_group_with_pool'])
def test_degrade_ctrl_c(ws, group):
    hq = big_hq(ws)
    out = ws.out
    cmd = ['blindsr_degrade', hq, out, '--workers', '2' if group else '1']
    r, note = interrupt(cmd, [hq], lambda: out.is_dir() and len(list(out.glob('*.png'))) >= 3, group)
    problems = interrupt_problems(r, note, ws)
    if not group and r.rc is not None:       # the promise: rerun the same command to resume, and the set is complete
        r2 = run(cmd, [hq], timeout=180)
        if r2.rc != 0: problems.append(f'rerun exit code {r2.rc}: {r2.first_error()}')
        n = len(list(out.glob('*.png')))
        if r2.rc == 0 and n != 200: problems.append(f'rerun left {n} LQ images, want 200')
        left = [p.name for p in out.iterdir() if p.name.endswith('.tmp')]
        if left: problems.append(f'temporary files left behind: {left[:3]}')
    record('ctrl_c_' + ('process_group_with_pool' if group else 'main_process'), 'blindsr_degrade', 'interrupt', r, problems, note)
    assert not problems, '\n'.join(problems) + f'\n--- stderr:\n{r.stderr[-2500:]}'


def group_alive(pgid: int) -> bool:
    "Does any process of the process group `pgid` still run (a worker, a resource tracker)?"
    try: os.killpg(pgid, 0)
    except ProcessLookupError: return False
    except PermissionError: return True
    return True


def test_degrade_sigterm_ends_workers(ws):
    "`kill PID` (SIGTERM to the main process only) of blindsr_degrade --workers 2: as Ctrl-C, and no worker or resource tracker left."
    hq = big_hq(ws, n=120)
    out = ws.out
    cmd = [str(c) for c in ['blindsr_degrade', hq, out, '--workers', '2']]
    cmd = command(cmd[0]) + cmd[1:]
    before = snapshot([hq]); outside = tree(ws.root, ('OUTdir', 'home'))
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_for(), start_new_session=True)
    deadline, note = time.time() + 120, ''
    while time.time() < deadline and p.poll() is None and not (out.is_dir() and len(list(out.glob('*.png'))) >= 3): time.sleep(0.2)
    if p.poll() is not None: note = 'finished before it could be terminated'
    else: time.sleep(0.3); p.send_signal(signal.SIGTERM)
    try: o, e = p.communicate(timeout=90); rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL); o, e = p.communicate(); rc = None
        e += '\n[killed by the test: still running (or its pipes held) 90 s after SIGTERM]'
    left = group_alive(p.pid)
    for _ in range(50):                               # a worker may take a moment to notice its pool is gone
        if not left: break
        time.sleep(0.2); left = group_alive(p.pid)
    r = Result(cmd, rc, o, e, snapshot_diff(before, snapshot([hq])), time.perf_counter() - t0)
    problems = [note] if note else []
    if rc is None: problems.append('hang after SIGTERM')
    if r.traceback: problems.append(f'traceback: {r.traceback}')
    if r.changed: problems.append(f'input changed: {"; ".join(r.changed)}')
    if rc is not None and rc != 143: problems.append(f'exit code {rc}, want 143 (128 + SIGTERM)')
    if left:
        problems.append('processes of the command (workers, resource tracker) still run after it ended')
        os.killpg(p.pid, signal.SIGKILL)
    body = err_lines(scrub(e, ws))
    if len(body) > 1: problems.append(f'{len(body)} lines on stderr, want one')
    if not re.search(r'rerun|resume', e, re.I): problems.append('does not say to rerun the same command')
    moved = outside_changes(outside, tree(ws.root, ('OUTdir', 'home')))
    if moved: problems.append(f'changed outside the output: {"; ".join(moved)}')
    record('sigterm_ends_workers', 'blindsr_degrade', 'interrupt', r, problems, note, issue=24)
    assert not problems, '\n'.join(problems) + f'\n--- stderr:\n{e[-2500:]}'


@pytest.mark.parametrize('group', [False, True], ids=['sigint_main_process', 'ctrl_c_process_group_cpu_workers'])
def test_train_ctrl_c(ws, group):
    out = ws.out
    cmd = ['blindsr_train', '--train-hq', ws.hq, '--out-dir', out, '--iters', '100000', '--batch-size', '2',
           '--generator-kwargs', TINY_KW, '--device', 'cpu', '--no-progress', '--log-every', '1', '--val-every', '100000',
           '--ckpt-every', '100000', '--degrade-on', 'cpu' if group else 'gpu', '--workers', '1' if group else '0']
    log = out / 'log.csv'
    r, note = interrupt(cmd, [ws.hq], lambda: log.exists() and len(log.read_text().splitlines()) >= 4, group)
    problems = interrupt_problems(r, note, ws)
    if not (out / 'last.ckpt').is_file(): problems.append('no last.ckpt saved at the interrupt')
    if r.rc is not None and not re.search(r'step \d+', scrub(r.stderr, ws)): problems.append('the line does not say at which step it stopped')
    record('ctrl_c_' + ('process_group_cpu_workers' if group else 'main_process'), 'blindsr_train', 'interrupt', r, problems, note)
    assert not problems, '\n'.join(problems) + f'\n--- stderr:\n{r.stderr[-2500:]}'

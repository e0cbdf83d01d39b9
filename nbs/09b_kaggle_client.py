# %% [markdown]
# # Talking to Kaggle
# > `blindsr_kaggle build | push | status | output`: build the kernel, check it and the Kaggle CLI before a push, push it, follow it, fetch and check its submission — never reading your credentials.

# %%
#| default_exp kaggle_client

# %% [markdown]
# The Kaggle CLI (`pip install kaggle six`) does the talking; `blindsr_kaggle` adds what it lacks: the build, checks
# before a push (is the kernel what `nbs/` builds now, for a real user, and does the CLI run and find
# credentials), a dry run, exit codes for `status`, and a check of the downloaded submission. blindsr never
# imports the `kaggle` package: importing it authenticates (and, with a token, calls Kaggle's servers) as a side
# effect. It runs the `kaggle` command, and looks for credentials only by their presence.

# %%
#| export
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from blindsr.cli import (USER_ERRORS, HelpFormatter, UserError, check_output_dir, examples, json_object, positive_float, run_cli,
                         write_manifest)
from blindsr.kaggle_build import (BUILD_FILE, CODE_FILE, KERNEL_DIR, MACHINES, METADATA_FILE, PLACEHOLDER_USER, RUN_NOTEBOOK,
                                  KernelSpec, build_command, build_files, check_kernel_dir, check_metadata,
                                  generator_problem, kernel_stale_files, load_spec, machine_note, packed_wheel, repo_root,
                                  write_files)

# %%
#| hide
import tempfile
from contextlib import redirect_stdout, redirect_stderr
from io import StringIO
from unittest import mock
from fastcore.test import test_eq, test_fail

tmp = Path(tempfile.mkdtemp())


# %% [markdown]
# ## Credentials, where Kaggle CLI 2.2.5 looks
#
# `kaggle` 2.2.5 authenticates with the first of: an access token (inside a Kaggle notebook the file named by
# `KAGGLE_API_V1_TOKEN`; else `KAGGLE_API_TOKEN`, a token or a path to one; else `~/.kaggle/access_token`, then
# `~/.kaggle/access_token.txt`), a legacy user name and key (`KAGGLE_USERNAME` + `KAGGLE_KEY`, or `kaggle.json` in
# **one** configuration folder: `$KAGGLE_CONFIG_DIR`, else `~/.kaggle` if it exists, else
# `$XDG_CONFIG_HOME/kaggle` or `~/.config/kaggle`), then `~/.kaggle/credentials.json` (`kaggle auth login`).
# Tokens and `credentials.json` are only ever looked for in `~/.kaggle`. `kaggle_credential_sources` follows that
# order with the environment and `stat` alone — it never opens a file — and says "found", not "valid": only
# Kaggle's servers know whether a token has expired.

# %%
#| export
def kaggle_config_dir(env=None) -> Path:
    "The one folder kaggle 2.2.5 reads kaggle.json from: $KAGGLE_CONFIG_DIR, else ~/.kaggle if it exists, else XDG's kaggle/."
    env = os.environ if env is None else env
    d = env.get('KAGGLE_CONFIG_DIR') or ''
    if not d:
        home = env.get('HOME') or os.path.expanduser('~')
        d = os.path.join(home, '.kaggle')
        if sys.platform.startswith('linux') and not os.path.exists(d):
            d = os.path.join(env.get('XDG_CONFIG_HOME') or os.path.join(home, '.config'), 'kaggle')
    return Path(d)


def _nonempty(p) -> bool:
    try: return bool(p) and os.path.isfile(p) and os.path.getsize(p) > 0
    except OSError: return False


def kaggle_credential_sources(env=None) -> list[str]:
    "Where kaggle 2.2.5 would find credentials, in its order of preference; [] when nowhere. Presence only: nothing is read."
    env = os.environ if env is None else env
    kdir = os.path.join(env.get('HOME') or os.path.expanduser('~'), '.kaggle')
    found = []
    if env.get('KAGGLE_KERNEL_RUN_TYPE') is not None and env.get('KAGGLE_DATA_PROXY_URL') is not None \
            and _nonempty(env.get('KAGGLE_API_V1_TOKEN')):
        found.append('the KAGGLE_API_V1_TOKEN file (inside a Kaggle notebook)')
    tok = env.get('KAGGLE_API_TOKEN')
    if tok: found.append('the KAGGLE_API_TOKEN environment variable' + (' (a token file)' if os.path.exists(tok) else ''))
    for name in ('access_token', 'access_token.txt'):
        if _nonempty(os.path.join(kdir, name)): found.append(os.path.join(kdir, name))
    cfg = kaggle_config_dir(env) / 'kaggle.json'
    if env.get('KAGGLE_USERNAME') and env.get('KAGGLE_KEY'):
        found.append('the KAGGLE_USERNAME and KAGGLE_KEY environment variables')
    elif _nonempty(cfg): found.append(str(cfg))
    if _nonempty(os.path.join(kdir, 'credentials.json')): found.append(os.path.join(kdir, 'credentials.json') + ' (kaggle auth login)')
    return found


def kaggle_credentials(env=None) -> str | None:
    "Where the kaggle CLI will find credentials first (a description), or None. Presence only; never read."
    found = kaggle_credential_sources(env)
    return found[0] if found else None


CREDENTIALS_HELP = """no Kaggle credentials found where Kaggle CLI 2.2.5 looks. Create an API token on https://www.kaggle.com/settings (API), then either
  save the token in ~/.kaggle/access_token (or access_token.txt), or export KAGGLE_API_TOKEN=<the token>; or, for a legacy key,
  save kaggle.json as ~/.kaggle/kaggle.json (chmod 600; or in $KAGGLE_CONFIG_DIR if you set it), or export KAGGLE_USERNAME and KAGGLE_KEY.
blindsr never reads, stores or prints them: only the kaggle command does."""


# %% [markdown]
# The cases where a looser check goes wrong: a token under `~/.kaggle/access_token.txt` (found), `kaggle.json` in
# `~/.config/kaggle` while an empty `~/.kaggle` exists (not found: Kaggle uses `~/.kaggle`), an empty
# `$KAGGLE_CONFIG_DIR` beside `~/.kaggle/kaggle.json` (not found), a token in the config folder (not found: tokens are
# only read from `~/.kaggle`). `tests/test_kaggle_real.py` checks these against the real package.

# %%
def sandbox(files=(), dirs=(), **env):
    root = Path(tempfile.mkdtemp()); home = root/'home'; home.mkdir()
    for d in dirs: (root/d).mkdir(parents=True, exist_ok=True)
    for f in files: (root/f).parent.mkdir(parents=True, exist_ok=True); (root/f).write_text('x')
    return root, {'HOME': str(home), **{k: v.replace('$ROOT', str(root)) for k, v in env.items()}}

root_, env = sandbox(); test_eq(kaggle_credential_sources(env), [])
root_, env = sandbox(['home/.kaggle/access_token.txt']); test_eq(kaggle_credential_sources(env), [str(root_/'home/.kaggle/access_token.txt')])
root_, env = sandbox(['home/.config/kaggle/kaggle.json']); test_eq(kaggle_credentials(env), str(root_/'home/.config/kaggle/kaggle.json'))
root_, env = sandbox(['home/.config/kaggle/kaggle.json'], dirs=['home/.kaggle']); test_eq(kaggle_credentials(env), None)
root_, env = sandbox(['home/.kaggle/kaggle.json'], dirs=['cfg'], KAGGLE_CONFIG_DIR='$ROOT/cfg'); test_eq(kaggle_credentials(env), None)
root_, env = sandbox(['cfg/access_token'], KAGGLE_CONFIG_DIR='$ROOT/cfg'); test_eq(kaggle_credentials(env), None)
root_, env = sandbox(['home/.kaggle/kaggle.json'], KAGGLE_API_TOKEN='KGAT_x')
test_eq(kaggle_credential_sources(env), ['the KAGGLE_API_TOKEN environment variable', str(root_/'home/.kaggle/kaggle.json')])
root_, env = sandbox(['run/tok'], KAGGLE_KERNEL_RUN_TYPE='Batch', KAGGLE_DATA_PROXY_URL='x', KAGGLE_API_V1_TOKEN='$ROOT/run/tok')
assert 'inside a Kaggle notebook' in kaggle_credentials(env)

# %% [markdown]
# ## A CLI that runs
#
# `pip install kaggle` alone gives a `kaggle` that cannot start: 2.2.5 imports `six`, which none of its declared
# dependencies pulls in any more. So the checks *run* `kaggle --version` rather than only finding it on `PATH`, and
# a broken CLI is reported with its last error line and the fix. (Starting the CLI is also when it authenticates:
# with a token it asks Kaggle's server whether the token is valid.)

# %%
#| export
CLI_FIX = "pip install 'kaggle==2.2.5' six"


def kaggle_cli_check(exe: str = 'kaggle', timeout: float = 120) -> tuple[bool, str]:
    "(ok, message) from running `kaggle --version`: the version, or why it does not run and the fix."
    path = shutil.which(exe)
    if path is None: return False, f'the kaggle command is not on PATH: {CLI_FIX}'
    try: r = subprocess.run([path, '--version'], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as e: return False, f'{path} --version failed ({type(e).__name__}: {e}): {CLI_FIX}'
    m = re.search(r'Kaggle (?:CLI|API) (\S+)', r.stdout)
    if r.returncode == 0 and m: return True, f'kaggle CLI {m.group(1)} runs ({path})'
    last = (r.stderr.strip() or r.stdout.strip() or f'exit {r.returncode}').splitlines()[-1]
    return False, f'{path} --version fails: {last}; the fix: {CLI_FIX}'


# %%
bin_ = tmp/'bin'; bin_.mkdir()
def fake_cli(body):
    (bin_/'kaggle').write_text(f'#!{sys.executable}\nimport sys\n{body}\n'); (bin_/'kaggle').chmod(0o755); return str(bin_/'kaggle')
ok, msg = kaggle_cli_check(fake_cli('print("Kaggle CLI 2.2.5")')); test_eq(ok, True); assert '2.2.5 runs' in msg
ok, msg = kaggle_cli_check(fake_cli("sys.exit(\"Traceback (most recent call last):\\nModuleNotFoundError: No module named 'six'\")"))
print(msg); test_eq(ok, False); assert "No module named 'six'" in msg and CLI_FIX in msg
test_eq(kaggle_cli_check(str(tmp/'no-kaggle'))[0], False)


# %% [markdown]
# ## The commands blindsr_kaggle runs
#
# Four command lines, in one place so that `tests/test_kaggle_real.py` can parse each with the real CLI's own
# parser. `kaggle kernels status` exits 0 whatever the status, printing `USER/SLUG has status
# "KernelWorkerStatus.COMPLETE"` (older CLIs: `"complete"`); `parse_status` reads either, and `blindsr_kaggle status`
# turns it into an exit code: 0 complete, 3 still queued or running, 1 error or cancelled, 2 when there is no status.
# `kernels output` gets `--force`: a second fetch, after a continued version, must replace the files.

# %%
#| export
def push_args(kernel_dir) -> list[str]: return ['kernels', 'push', '-p', str(kernel_dir)]
def status_args(ref: str) -> list[str]: return ['kernels', 'status', ref]
def output_args(ref: str, dest) -> list[str]: return ['kernels', 'output', ref, '-p', str(dest), '--force']
VERSION_ARGS = ['--version']

STATUS_EXIT = {'complete': 0, 'queued': 3, 'running': 3, 'error': 1, 'cancelled': 1}
_STATUS_NAMES = {'complete': 'complete', 'running': 'running', 'queued': 'queued', 'newscript': 'queued', 'error': 'error',
                 'cancelrequested': 'cancelled', 'cancelacknowledged': 'cancelled', 'cancelled': 'cancelled'}


def parse_status(text: str) -> str | None:
    "complete / running / queued / error / cancelled from `kaggle kernels status` output; None if it holds no status."
    m = re.search(r'has status "([^"]+)"', text)
    if not m: return None
    raw = m.group(1).split('.')[-1].replace('_', '').lower()
    return _STATUS_NAMES.get(raw, raw)


# %%
test_eq(parse_status('alice/blindsr-train has status "KernelWorkerStatus.ERROR"\nFailure message: "..."'), 'error')
test_eq(parse_status('alice/blindsr-train has status "complete"'), 'complete')
test_eq(parse_status('alice/blindsr-train has status "KernelWorkerStatus.CANCEL_ACKNOWLEDGED"'), 'cancelled')
test_eq(parse_status('alice/blindsr-train has status "KernelWorkerStatus.NEW_SCRIPT"'), 'queued')
test_eq(parse_status('404 - Not Found'), None)


# %% [markdown]
# ## Checks before a push
#
# The kernel folder must be valid by Kaggle's rules and be what `nbs/` and `blindsr/` build now (a stale kernel
# would run yesterday's code), built for a real user (not the committed placeholder), and it must carry its wheel;
# the CLI must run and find credentials. A dry run prints the command, the metadata and every check, and sends nothing.

# %%
#| export
def push_checks(kernel_dir: Path, root: Path | str | None = None) -> list[tuple[str, bool, str]]:
    "[(kind, ok, message)]: kind 'kernel' checks stop a dry run too, kind 'tool' checks only a real push."
    out = []
    meta_path = kernel_dir / METADATA_FILE
    try: meta = json.loads(meta_path.read_text(encoding='utf-8'))
    except (OSError, ValueError) as e:
        return [('kernel', False, f'{meta_path}: {e}; build it with blindsr_kaggle build --user NAME --dataset SLUG')]
    probs = check_metadata(meta, kernel_dir)
    out.append(('kernel', not probs, f'{METADATA_FILE}: every field valid by Kaggle\'s rules; {CODE_FILE} a valid notebook '
                                     'that imports no torch before the CUDA guard' if not probs else '; '.join(probs)))
    try:
        name, data = packed_wheel(json.loads((kernel_dir / CODE_FILE).read_text(encoding='utf-8')))
        out.append(('kernel', True, f'carries {name} ({len(data) // 1024} KiB, sha256 checked)'))
    except (OSError, ValueError, KeyError, SyntaxError) as e: out.append(('kernel', False, str(e)))
    try:
        stale = kernel_stale_files(kernel_dir, root)
        out.append(('kernel', not stale, f'the kernel is what nbs/{RUN_NOTEBOOK} and blindsr/ build now' if not stale else
                    f'{", ".join(stale)} differ from a fresh build: run blindsr_kaggle build (it reuses {BUILD_FILE})'))
    except (OSError, ValueError) as e: out.append(('kernel', False, str(e)))
    try: problem = generator_problem(load_spec(kernel_dir))
    except (OSError, ValueError): problem = None             # no build.json: reported by the freshness check above
    if problem is not None: out.append(('kernel', False, problem))
    user = str(meta.get('id', '')).split('/')[0]
    out.append(('kernel', user != PLACEHOLDER_USER, f'built for Kaggle user {user!r}' if user != PLACEHOLDER_USER else
                f'built for the placeholder user {user!r}: blindsr_kaggle build --user <your Kaggle name> --dataset <your dataset>'))
    ok, msg = kaggle_cli_check()
    out.append(('tool', ok, msg))
    found = kaggle_credential_sources()
    out.append(('tool', bool(found), f'Kaggle credentials found (not read): {"; ".join(found)}' if found else
                'Kaggle credentials: none found (see below)'))
    return out


# %% [markdown]
# ## The command
#
# `blindsr_kaggle build` reuses `kaggle_kernel/build.json` for anything not given, so after editing `nbs/` a bare
# `blindsr_kaggle build` brings the kernel up to date; `--check` only compares. Every build says what Kaggle will
# run for the machine asked for.

# %%
#| export
def _shown(path: Path) -> str:
    "`path` relative to the current folder when it is inside it (shorter commands to read and copy)."
    try: return str(Path(path).resolve().relative_to(Path.cwd().resolve())) or '.'
    except ValueError: return str(path)


def _run_kaggle(args: list[str]) -> subprocess.CompletedProcess:
    r = subprocess.run(['kaggle', *args], capture_output=True, text=True)
    if r.stdout: print(r.stdout, end='' if r.stdout.endswith('\n') else '\n')
    if r.stderr: print(r.stderr, end='' if r.stderr.endswith('\n') else '\n', file=sys.stderr)
    return r


def _tools_ready(cmd: str) -> bool:
    ok, msg = kaggle_cli_check()
    if not ok: print(f'blindsr_kaggle {cmd}: {msg}', file=sys.stderr); return False
    if not kaggle_credential_sources(): print(f'blindsr_kaggle {cmd}: {CREDENTIALS_HELP}', file=sys.stderr); return False
    return True


def _kernel_ref(a) -> str:
    if a.kernel: return a.kernel
    return json.loads((Path(a.dir) / METADATA_FILE).read_text(encoding='utf-8'))['id']


def _cmd_build(a) -> int:
    kdir = Path(a.dir)
    given = {k: v for k, v in dict(user=a.user, dataset=a.dataset, val_datasets=a.val_dataset, machine=a.machine,
                                   hours=a.hours, generator=a.generator, generator_kwargs=a.generator_kwargs,
                                   previous=a.previous, slug=a.slug, title=a.title,
                                   private=False if a.public else None).items() if v is not None}
    if 'previous' in given and given['previous'].lower() in ('none', ''): given['previous'] = None
    base = asdict(load_spec(kdir)) if (kdir / BUILD_FILE).is_file() else {}
    if not base and not {'user', 'dataset'} <= set(given):
        print('blindsr_kaggle build: give --user (your Kaggle name) and --dataset (the faces dataset, OWNER/SLUG)', file=sys.stderr)
        return 2
    if 'user' in given and 'user' in base and given['user'] != base['user'] and 'dataset' not in given:
        base['dataset'] = base['dataset'].split('/', 1)[1]       # a new user's own dataset of the same name
    if 'slug' in given and 'title' not in given: base.pop('title', None)   # the title follows a new slug
    spec = KernelSpec(**{**base, **given})
    problem = generator_problem(spec)               # found here, not on Kaggle after the install and data steps
    if problem is not None: raise UserError(f'--generator {spec.generator} --generator-kwargs {json.dumps(spec.generator_kwargs)}: {problem}')
    if a.check:
        stale = kernel_stale_files(kdir, a.root)
        if stale:
            print(f'{kdir}: {", ".join(stale)} differ from a fresh build; run: {build_command(spec)}', file=sys.stderr); return 1
        print(f'{kdir}: up to date with nbs/{RUN_NOTEBOOK} and blindsr/'); return 0
    check_kernel_dir(kdir, repo_root(a.root), a.overwrite)
    files = build_files(spec, a.root)
    paths = write_files(files, kdir)
    name, data = packed_wheel(json.loads(files[CODE_FILE]))
    print(f'wrote {", ".join(str(p) for p in paths)}')
    print(f'kernel {spec.kernel} ({spec.title!r}) on {MACHINES[spec.machine]}, data {", ".join([spec.dataset, *spec.val_datasets])}'
          + (f', continuing {spec.previous}' if spec.previous else '') + f'; {spec.hours} h budget; '
          f'carries {name} ({len(data) // 1024} KiB; the notebook is {len(files[CODE_FILE]) // 1024} KiB)')
    print('note:', machine_note(spec.machine))
    print('next: blindsr_kaggle push --dry-run, then blindsr_kaggle push')
    return 0


def _cmd_push(a) -> int:
    kdir = Path(a.dir)
    if not kdir.is_dir():
        raise UserError(f'--dir {kdir}: no such folder; build the kernel into it first: blindsr_kaggle build --dir {kdir} '
                        '--user NAME --dataset SLUG')
    if not (kdir / METADATA_FILE).is_file():
        raise UserError(f'--dir {kdir} holds no kernel ({METADATA_FILE} is missing); build one into it first: '
                        f'blindsr_kaggle build --dir {kdir} --user NAME --dataset SLUG')
    checks = push_checks(kdir, a.root)
    cmd = 'kaggle ' + ' '.join(push_args(kdir))
    if a.dry_run:
        print(f'blindsr_kaggle push --dry-run: nothing is sent to Kaggle\nwould run: {cmd}')
        if (kdir / METADATA_FILE).is_file():
            print(f'{kdir / METADATA_FILE}:\n' + (kdir / METADATA_FILE).read_text(encoding='utf-8').rstrip())
    print('checks:')
    for kind, ok, msg in checks: print(f"  {'ok' if ok else 'FAIL' if kind == 'kernel' else 'MISSING':<7}  {msg}")
    if not kaggle_credential_sources(): print(CREDENTIALS_HELP)
    try: print('note:', machine_note({v: k for k, v in MACHINES.items()}[json.loads((kdir / METADATA_FILE).read_text())['machine_shape']]))
    except (OSError, ValueError, KeyError): pass
    kernel_ok = all(ok for kind, ok, _ in checks if kind == 'kernel')
    if a.dry_run: return 0 if kernel_ok else 1
    if not kernel_ok:
        print('blindsr_kaggle push: not pushed, fix the checks above', file=sys.stderr); return 1
    if not _tools_ready('push'): return 2
    print(f'running: {cmd}', flush=True)
    r = _run_kaggle(push_args(kdir))
    if r.returncode != 0 or re.search(r'push error|not valid', r.stdout + r.stderr, re.I):
        print('blindsr_kaggle push: the kaggle CLI reported a problem (above)', file=sys.stderr); return 1
    ref = json.loads((kdir / METADATA_FILE).read_text())['id']
    print(f'pushed; follow it with: blindsr_kaggle status (or kaggle kernels status {ref}), then blindsr_kaggle output')
    return 0


def _cmd_status(a) -> int:
    if not _tools_ready('status'): return 2
    ref = _kernel_ref(a)
    r = subprocess.run(['kaggle', *status_args(ref)], capture_output=True, text=True)
    text = r.stdout + r.stderr
    status = parse_status(text)
    if status is None:
        print(text.rstrip(), file=sys.stderr)
        print(f'blindsr_kaggle status: no status for {ref} in the kaggle CLI output (exit {r.returncode})', file=sys.stderr)
        return 2
    print(f'{ref}: {status}')
    extra = [l for l in text.splitlines() if l.strip() and 'has status' not in l]
    if extra: print('\n'.join(extra))
    if status == 'error': print('see the log: blindsr_kaggle output (the .log file), or the kernel page on kaggle.com')
    return STATUS_EXIT.get(status, 2)


def _cmd_output(a) -> int:
    ref = _kernel_ref(a)
    dest = Path(a.path or Path('runs') / 'kaggle' / ref.split('/')[1])
    check_output_dir(dest, [Path(a.dir)], command='kaggle-output', overwrite=a.overwrite, flag='-p/--path')
    if not _tools_ready('output'): return 2
    dest.mkdir(parents=True, exist_ok=True)
    r = _run_kaggle(output_args(ref, dest))
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob('*') if p.is_file())
    write_manifest(dest, 'kaggle-output', [f for f in files if '/' not in f] + [f.split('/')[0] for f in files if '/' in f],
                   kernel=ref)
    if r.returncode != 0: return 1
    files = [f for f in files if not f.startswith('.blindsr-')]
    print(f'{dest}: {len(files)} file(s): {", ".join(files[:12])}{" …" if len(files) > 12 else ""}')
    rec = dest / 'kaggle_summary.json'
    if rec.is_file():
        s = json.loads(rec.read_text())
        b = s.get('blindsr') or {}
        print(f"val PSNR {s.get('val_psnr')} dB (bicubic {s.get('bicubic_psnr')}), {s.get('kernel_minutes', 0):.0f} min"
              + (f" on {s['machine']}" if s.get('machine') else '') + (f", blindsr {b['version']}" if b.get('version') else '')
              + (' [SMOKE MODE]' if s.get('smoke') else ''))
    zp = dest / 'submission.zip'
    if not zp.is_file():
        print(f'no submission.zip in the output of {ref} (still running, or it failed: blindsr_kaggle status)', file=sys.stderr)
        return 1
    from blindsr.submission import SubmissionError, check_submission
    try: n = len(check_submission(zp))
    except SubmissionError as e:
        print(f'blindsr_kaggle output: {e}', file=sys.stderr); return 1
    print(f'{zp}: a valid submission of {n} images; upload it to CodaLab')
    return 0


KAGGLE_EXAMPLES = {
    'build': [('a kernel for you, training on your faces dataset', 'blindsr_kaggle build --user alice --dataset alice/ai6126-faces'),
              ('the same kernel, 6 hours, a 20-block generator (the rest from its build.json)',
               'blindsr_kaggle build --hours 6 --generator msrresnet --generator-kwargs \'{"num_block": 20}\''),
              ("continue the kernel's previous run in the next version", 'blindsr_kaggle build --previous alice/blindsr-train')],
    'push': [('every check and the command; nothing is sent', 'blindsr_kaggle push --dry-run'),
             ('push it (needs the kaggle CLI and your credentials)', 'blindsr_kaggle push')],
    'status': [('the status of the kernel in kaggle_kernel/', 'blindsr_kaggle status'),
               ('of any kernel', 'blindsr_kaggle status alice/blindsr-train')],
    'output': [('download into runs/kaggle/blindsr-train and check its submission.zip', 'blindsr_kaggle output'),
               ('a kernel into a folder of your choice', 'blindsr_kaggle output alice/blindsr-train -p runs/kaggle/v3')],
}


def kaggle_parser() -> argparse.ArgumentParser:
    "The argument parser of blindsr_kaggle."
    ap = argparse.ArgumentParser(prog='blindsr_kaggle', formatter_class=HelpFormatter,
                                 description='The Kaggle kernel that trains blindsr: build it from nbs/, check and push it,\n'
                                             'follow it, fetch its output. `blindsr_kaggle SUBCOMMAND --help` explains each.',
                                 epilog=examples(*[ex for v in KAGGLE_EXAMPLES.values() for ex in v[:1]]))
    sub = ap.add_subparsers(dest='cmd', required=True, metavar='SUBCOMMAND', title='subcommands')
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group('where')
    g.add_argument('--dir', default=None, metavar='DIR', help=f'the kernel folder (default: <checkout>/{KERNEL_DIR})')
    g.add_argument('--root', default=None, metavar='DIR', help='the blindsr checkout (default: found from here or the package)')
    def parser(name, text, description=None):
        return sub.add_parser(name, parents=[common], help=text, description=description or text,
                              epilog=examples(*KAGGLE_EXAMPLES[name]), formatter_class=HelpFormatter)
    b = parser('build', 'write kernel-metadata.json and the kernel notebook from nbs/',
               f'Build the kernel folder from nbs/{RUN_NOTEBOOK} and blindsr/; arguments not given come from its\n'
               f'{BUILD_FILE}, so a bare rebuild brings it up to date. The generator is built (on no device) and\n'
               'its parameters counted now, not on Kaggle after the install and data steps.')
    g = b.add_argument_group('the kernel')
    g.add_argument('--user', help='your Kaggle user name: the kernel is USER/SLUG (default: from build.json; needed the first time)')
    g.add_argument('--dataset', help='the Kaggle dataset with the faces: OWNER/SLUG, OWNER/SLUG/N (version N), or SLUG for '
                                     'yours (default: from build.json; needed the first time)')
    g.add_argument('--val-dataset', action='append', default=None, metavar='DATASET',
                   help='another dataset to attach, e.g. the val/test faces uploaded apart (repeatable; default: none)')
    g.add_argument('--machine', type=str.upper, choices=list(MACHINES),
                   help='P100 (as designed; Kaggle runs P100 requests on T4 x2) or T4 (T4 x2, DDP) (default: P100)')
    g.add_argument('--hours', type=positive_float, help='wall-clock budget of the whole kernel in hours, at most 11.5 (default: 11)')
    g.add_argument('--previous', help="a kernel USER/SLUG whose output run/last.ckpt to continue, or 'none' (default: none)")
    g.add_argument('--slug', help='the kernel name on Kaggle: lower-case words joined by single hyphens (default: blindsr-train)')
    g.add_argument('--title', help='the kernel title; Kaggle derives the slug from it, so it must give --slug (default: the slug with spaces)')
    g.add_argument('--public', action='store_true', default=None, help='make the kernel public (default: private)')
    g = b.add_argument_group('the model')
    g.add_argument('--generator', help='the network to train, a key of blindsr.models.GENERATORS (default: msrresnet_deep)')
    g.add_argument('--generator-kwargs', type=json_object, metavar='JSON',
                   help='its constructor overrides as a JSON object, e.g. \'{"num_block": 24}\' (default: none)')
    g = b.add_argument_group('what to do')
    g.add_argument('--check', action='store_true', help='only check that the kernel folder equals a fresh build; write nothing (default: build)')
    g.add_argument('--overwrite', action='store_true',
                   help='build into a --dir that holds files other than a blindsr kernel build, e.g. another kernel (default: refuse)')
    p = parser('push', 'kaggle kernels push, after checks (the kernel is what nbs/ builds now, for a real user; the CLI runs '
               'and finds credentials)')
    g = p.add_argument_group('what to do')
    g.add_argument('--dry-run', action='store_true', help='print the command, the metadata and the checks; send nothing (default: push)')
    for name, desc in (('status', 'the kernel status; exit 0 complete, 3 queued/running, 1 error/cancelled, 2 unknown'),
                       ('output', 'download the kernel output and check its submission.zip')):
        s = parser(name, desc)
        g = s.add_argument_group('the kernel')
        g.add_argument('kernel', nargs='?', help='USER/SLUG (default: the id in kernel-metadata.json)')
        if name == 'output':
            g.add_argument('-p', '--path', default=None, metavar='DIR', help='where to download (default: runs/kaggle/SLUG)')
            g.add_argument('--overwrite', action='store_true',
                           help='download into a folder that holds files this command did not write (default: refuse)')
    return ap


def kaggle_cli(argv: list[str] | None = None) -> int:
    "blindsr_kaggle build | push | status | output: the Kaggle kernel that trains blindsr."
    a = kaggle_parser().parse_args(argv)
    def body():
        if a.dir is None: a.dir = _shown(repo_root(a.root) / KERNEL_DIR)
        return {'build': _cmd_build, 'push': _cmd_push, 'status': _cmd_status, 'output': _cmd_output}[a.cmd](a)
    return run_cli(f'blindsr_kaggle {a.cmd}', body, USER_ERRORS, resume_hint='nothing was sent unless it said so; rerun the same command')


# %% [markdown]
# The whole path with a stand-in `kaggle` command (a script that answers like the CLI): build for a user, a dry
# run, a status in each state. `tests/test_kaggle_cli.py` does more of this; `tests/test_kaggle_real.py` runs the
# real `kaggle` 2.2.5 code offline on what the build writes.

# %%
fake_cli('import os\n'
         'if sys.argv[1:] == ["--version"]: print("Kaggle CLI 2.2.5")\n'
         'elif sys.argv[1:3] == ["kernels", "status"]: print(f\'{sys.argv[3]} has status "{os.environ["FAKE_STATUS"]}"\')\n'
         'else: print("Kernel version 1 successfully pushed.")')
kd = tmp/'kk'
with redirect_stdout(StringIO()) as out: test_eq(kaggle_cli(['build', '--dir', str(kd), '--user', 'alice', '--dataset', 'ai6126-faces']), 0)
print(out.getvalue())
assert 'runs P100 requests on T4 x2' in out.getvalue()
clean = {k: '' for k in ('KAGGLE_API_TOKEN', 'KAGGLE_USERNAME', 'KAGGLE_KEY', 'KAGGLE_CONFIG_DIR')}
env = {**clean, 'PATH': f"{bin_}{os.pathsep}{os.environ['PATH']}", 'HOME': str(tmp/'nohome'), 'XDG_CONFIG_HOME': ''}
with mock.patch.dict(os.environ, env):
    buf = StringIO()
    with redirect_stdout(buf): test_eq(kaggle_cli(['push', '--dry-run', '--dir', str(kd)]), 0)
    print(buf.getvalue())
    with mock.patch.dict(os.environ, KAGGLE_USERNAME='alice', KAGGLE_KEY='not-a-key'):
        for st, rc in (('KernelWorkerStatus.COMPLETE', 0), ('KernelWorkerStatus.RUNNING', 3), ('KernelWorkerStatus.ERROR', 1)):
            with mock.patch.dict(os.environ, FAKE_STATUS=st), redirect_stdout(StringIO()):
                test_eq(kaggle_cli(['status', '--dir', str(kd)]), rc)
for frag in ('would run: kaggle kernels push -p', 'kaggle CLI 2.2.5 runs', 'carries blindsr-0.1.0+g', 'MISSING  Kaggle credentials'):
    assert frag in buf.getvalue(), frag
assert 'not-a-key' not in buf.getvalue()
with redirect_stderr(StringIO()) as err: test_eq(kaggle_cli(['build', '--dir', str(kd), '--slug', 'blindsr_train']), 2)
assert 'no "_"' in err.getvalue()

"""Fresh-process checks of the installed package: runtime imports and the generated files."""
import json
import subprocess
import sys


def run(code: str) -> str:
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout


def test_runtime_needs_no_dev_stack():
    "`import blindsr.*` must not pull in nbdev or fastcore: the GPU machines and Kaggle do not have them."
    out = run('import sys, pkgutil, importlib, blindsr\n'
              'for m in pkgutil.iter_modules(blindsr.__path__): importlib.import_module("blindsr." + m.name)\n'
              'print(sorted(k for k in sys.modules if k.split(".")[0] in ("fastcore", "nbdev", "execnb")))')
    assert out.strip() == '[]', out


def test_console_scripts_are_installed(root):
    "Every console script named in settings.ini resolves to a function of the package."
    import configparser, importlib
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(root / 'settings.ini')
    for entry in cfg['DEFAULT']['console_scripts'].split():
        name, target = entry.split('=')
        mod, fn = target.split(':')
        assert callable(getattr(importlib.import_module(mod), fn)), entry


def test_readme_test_command_is_what_ci_runs(root):
    "The README's test command and .ci/run must not drift apart."
    readme = (root / 'README.md').read_text()
    ci = (root / '.ci' / 'run').read_text()
    cmd = 'pip install -e ".[dev]" && nbdev_test --n_workers 2 && pytest tests -n 2'
    assert cmd in readme
    for step in cmd.split(' && '): assert step in ci, step

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
    "The README's test command is .ci/test, and .ci/run installs as the README says and then runs exactly .ci/test."
    readme = (root / 'README.md').read_text()
    ci = (root / '.ci' / 'run').read_text()
    assert 'pip install -e ".[dev]" && .ci/test' in readme
    assert 'pip install -q -e ".[dev]"' in ci and '\nbash .ci/test\n' in ci
    test = (root / '.ci' / 'test').read_text()
    assert 'OMP_NUM_THREADS' in test and 'nbdev_test' in test and 'pytest tests' in test


def test_import_from_the_folder_that_holds_the_clone(tmp_path):
    """Colab's layout: the clone in /content/blindsr (with the course data in its data/), the notebook in /content.
    The folder `blindsr/` in the working directory must not shadow the installed package as a namespace package."""
    (tmp_path / 'blindsr' / 'data' / 'train' / 'GT').mkdir(parents=True)
    (tmp_path / 'blindsr' / 'nbs').mkdir()
    code = 'import blindsr, blindsr.data; print(blindsr.__file__); print(blindsr.data.HQFaces.__name__)'
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    file, cls = r.stdout.split()
    assert cls == 'HQFaces' and file.endswith('__init__.py') and not file.startswith(str(tmp_path)), r.stdout



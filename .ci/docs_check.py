"""nbdev's documentation processing (what `nbdev_docs`/`nbdev_preview` run before Quarto), offline, notebook by notebook.

  python .ci/docs_check.py             # every notebook in nbs/ but the PENDING ones; exit 1 if one fails
  python .ci/docs_check.py 01_degradation 05_train   # only these (PENDING or not)
  python .ci/docs_check.py --pending   # every notebook, PENDING ones too; a PENDING one may fail
  python .ci/docs_check.py --strict    # with --pending or names: also fail when a PENDING notebook passes
  python .ci/docs_check.py --keep 12_guide   # keep _proc/ to look at what the docs would show
  python .ci/docs_check.py --verbose   # also list the cells that mix imports with other code (they run out of context)

Each notebook goes through `nbdev.serve_drv.main(src, _proc/…, FilterDefaults)`: exactly what
`nbdev.serve.proc_nbs` (and so `nbdev_docs`) does to it, in a spawned worker with IN_TEST=1. The processor that fails is
`exec_show_docs`: it executes every `#| export`/`#| exec_doc` cell, every `show_doc(...)` cell, and *every cell that
contains an import* — out of context, without the test cells before it. So a notebook passes when its imports sit in
the top `#| export`/`#| hide` cells, and its `#| exec_doc` cells need only what those cells and other exec_doc cells
define. Unlike `proc_nbs`, which stops at the first failing notebook, this lists all of them. Not the `nbdev_proc_nbs`
CLI: without quarto on PATH it tries to install Quarto with sudo, then runs `pip install -e .[dev]`.
Output goes to `_proc/` (git-ignored), removed at the end.
"""
import os
import shutil
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Notebooks whose docs processing fails, or runs far too long for CI, until they are fixed (issue 17.2, round 2):
# name -> what is wrong and what to do. CI skips them; `--pending` (or naming one) processes them, and a notebook
# leaves this list as soon as it passes quickly. Keep it shrinking: never add a notebook to it.
PENDING: dict[str, str] = {}


def process(src: str) -> tuple:
    "Run nbdev's docs processors on one notebook: (name, error or None, 'imports and other code' cells, seconds)."
    from nbdev.processors import FilterDefaults
    from nbdev.serve_drv import main
    src = Path(src)
    dst = ROOT / '_proc' / src.relative_to(ROOT / 'nbs')
    dst.parent.mkdir(parents=True, exist_ok=True)
    t0, err = time.time(), None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try: main((src, dst, FilterDefaults))
        except Exception as e:
            cause = f'\n  caused by {type(e.__cause__).__name__}: {e.__cause__}' if e.__cause__ else ''
            err = f'{e}{cause}'
    mixed = [str(w.message).split('\n---\n')[1].splitlines()[0] for w in caught
             if 'imports and other code' in str(w.message) and '\n---\n' in str(w.message)]
    return src.stem, err, mixed, time.time() - t0


def main(argv: list) -> int:
    strict, keep, verbose, pending = '--strict' in argv, '--keep' in argv, '--verbose' in argv, '--pending' in argv
    names = [a.removesuffix('.ipynb') for a in argv if not a.startswith('--')]
    every = sorted((ROOT / 'nbs').glob('*.ipynb'))
    nbs = [p for p in every if p.stem in names] if names else [p for p in every if pending or p.stem not in PENDING]
    skipped = [] if names or pending else [p.stem for p in every if p.stem in PENDING]
    unknown = sorted(set(names) - {p.stem for p in nbs})
    if unknown: print(f'docs_check: no notebook nbs/{unknown[0]}.ipynb'); return 2
    stale = sorted(set(PENDING) - {p.stem for p in (ROOT / 'nbs').glob('*.ipynb')})
    if stale: print(f'docs_check: PENDING names notebooks that do not exist: {stale}'); return 2
    os.environ.setdefault('OMP_NUM_THREADS', '1')      # spawned workers inherit it: one torch thread per notebook
    os.chdir(ROOT)                                     # where nbdev_docs runs (the cwd of executed cells)
    shutil.rmtree(ROOT / '_proc', ignore_errors=True)
    # The workers must find `process` in a module they can import: executing a notebook replaces the worker's __main__
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from docs_check import process as worker
    t0 = time.time()
    try:
        with ProcessPoolExecutor(int(os.environ.get('DOCS_CHECK_WORKERS', 2)), mp_context=get_context('spawn')) as ex:
            results = list(ex.map(worker, [str(p) for p in nbs]))
    finally:
        if not keep: shutil.rmtree(ROOT / '_proc', ignore_errors=True)
    failed, pending_failed, pending_passed = [], [], []
    for name, err, mixed, dt in results:
        state = 'ok' if err is None else 'PENDING' if name in PENDING else 'FAIL'
        print(f'{state:8} {name} ({dt:.1f} s)')
        for first_line in mixed if verbose else []:
            print(f'         note: a cell mixes imports and other code, run out of context: {first_line!r}')
        if err is not None: print('         ' + err.replace('\n', '\n         '))
        if name in PENDING: print(f'         PENDING: {PENDING[name]}')
        if err is None and name in PENDING: pending_passed.append(f'{name} ({dt:.0f} s)')
        elif err is not None: (pending_failed if name in PENDING else failed).append(name)
    print(f'docs_check: {len(results) - len(failed) - len(pending_failed)} passed, {len(failed)} failed, '
          f'{len(pending_failed)} pending failed in {time.time() - t0:.1f} s' +
          (f'; skipped as PENDING: {", ".join(skipped)} (run with --pending)' if skipped else ''))
    if pending_passed:
        print(f'docs_check: PENDING notebooks that pass now: {", ".join(pending_passed)}; remove each from PENDING in '
              '.ci/docs_check.py once it takes seconds')
    if failed:
        print(f'docs_check: nbdev docs processing fails for {", ".join(failed)}: move every import into the notebook\'s '
              'top #| export or #| hide cell, and make #| exec_doc cells use only what export, hidden-import and other '
              'exec_doc cells define (details: the docstring of .ci/docs_check.py)')
    return 1 if failed or (strict and pending_passed) else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

"""Keep every nbs/*.ipynb and its py:percent twin in sync (jupytext pairing, settings in jupytext.toml).

  python .ci/nbsync.py               # the .py is the source: each .ipynb that differs is rebuilt from its .py
  python .ci/nbsync.py --from-ipynb  # after editing notebooks in Jupyter: each .py that differs is rewritten from its .ipynb
  python .ci/nbsync.py --check       # exit 1 (listing the pairs) if any pair differs or a twin is missing

Deterministic: a pair already in sync is never touched, so a clean clone plus a sync changes nothing. A rebuilt
notebook keeps the id and the outputs of every cell whose source it already had; a new cell's id is a hash of the
notebook's name, the cell's position and its source (the ids appear in the exported package, so they must not be random).
"""
import hashlib
import sys
from pathlib import Path

import jupytext
from jupytext.config import load_jupytext_configuration_file

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / 'nbs'
CFG = load_jupytext_configuration_file(str(ROOT / 'jupytext.toml'))
FMT = 'py:percent'


def canonical_py(ipynb: Path) -> str:
    "The py:percent text jupytext writes for `ipynb` under the project's configuration."
    return jupytext.writes(jupytext.read(ipynb), fmt=FMT, config=CFG)


def pairs():
    out = []
    for p in NBS.rglob('*'):
        if p.suffix in ('.ipynb', '.py') and '.ipynb_checkpoints' not in p.parts:
            out.append(p.with_suffix(''))
    return sorted(set(out))


def check() -> int:
    bad = []
    for base in pairs():
        nb, py = base.with_suffix('.ipynb'), base.with_suffix('.py')
        if not nb.exists(): bad.append(f'{py.relative_to(ROOT)}: no paired .ipynb')
        elif not py.exists(): bad.append(f'{nb.relative_to(ROOT)}: no paired .py')
        elif canonical_py(nb) != py.read_text(encoding='utf-8'):
            bad.append(f'{nb.relative_to(ROOT)} and {py.name} differ')
    if bad:
        print('jupytext pairs out of sync (run python .ci/nbsync.py):\n  ' + '\n  '.join(bad))
        return 1
    print(f'jupytext pairs in sync: {len(pairs())} notebooks')
    return 0


def _rebuild_from_py(nb: Path, py: Path) -> None:
    "Write `nb` from `py`, keeping the ids and outputs of unchanged cells, hashing ids for new ones."
    new = jupytext.read(py, fmt=FMT)
    old_cells = jupytext.read(nb).cells if nb.exists() else []
    unused: dict = {}
    for c in old_cells: unused.setdefault((c.cell_type, c.source), []).append(c)
    taken = set()
    for i, c in enumerate(new.cells):
        c.metadata = {}                                   # as nbdev_clean leaves them
        match = unused.get((c.cell_type, c.source))
        if match:
            old = match.pop(0)
            c.id = old.get('id') or c.get('id')
            if c.cell_type == 'code': c.outputs, c.execution_count = old.get('outputs', []), old.get('execution_count')
        else:
            c.id = hashlib.sha1(f'{nb.stem}:{i}:{c.source}'.encode()).hexdigest()[:8]
            if c.cell_type == 'code': c.outputs, c.execution_count = [], None
        while c.id in taken: c.id = hashlib.sha1(c.id.encode()).hexdigest()[:8]
        taken.add(c.id)
    new.metadata = {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}}
    jupytext.write(new, nb, fmt='ipynb')


def sync(from_ipynb: bool = False) -> int:
    for base in pairs():
        nb, py = base.with_suffix('.ipynb'), base.with_suffix('.py')
        if nb.exists() and py.exists() and canonical_py(nb) == py.read_text(encoding='utf-8'): continue   # in sync
        if py.exists() and (not nb.exists() or not from_ipynb):
            _rebuild_from_py(nb, py)
            print(f'{py.name} -> {nb.name}')
        text = canonical_py(nb)
        if not py.exists() or py.read_text(encoding='utf-8') != text:
            py.write_text(text, encoding='utf-8')
            print(f'{nb.name} -> {py.name}')
    return 0


if __name__ == '__main__':
    sys.exit(check() if '--check' in sys.argv[1:] else sync(from_ipynb='--from-ipynb' in sys.argv[1:]))

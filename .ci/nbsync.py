"""Keep every nbs/*.ipynb and its py:percent twin in sync (jupytext pairing, settings in jupytext.toml).

  python .ci/nbsync.py          # the newer of each pair wins; then every .py is rewritten in canonical form
  python .ci/nbsync.py --check  # exit 1 (listing the pairs) if any pair differs or a twin is missing
"""
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


def sync() -> int:
    for base in pairs():
        nb, py = base.with_suffix('.ipynb'), base.with_suffix('.py')
        if py.exists() and (not nb.exists() or py.stat().st_mtime > nb.stat().st_mtime):
            new = jupytext.read(py, fmt=FMT)
            for c in new.cells: c.metadata = {}          # as nbdev_clean leaves them
            if nb.exists():   # keep outputs of cells whose source did not change
                old = jupytext.read(nb)
                outs = {c.source: c for c in old.cells if c.cell_type == 'code'}
                for c in new.cells:
                    if c.cell_type == 'code' and c.source in outs:
                        c.outputs = outs[c.source].get('outputs', [])
            new.metadata = {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}}
            jupytext.write(new, nb, fmt='ipynb')
            print(f'{py.name} -> {nb.name}')
        text = canonical_py(nb)
        if not py.exists() or py.read_text(encoding='utf-8') != text:
            py.write_text(text, encoding='utf-8')
            print(f'{nb.name} -> {py.name}')
    return 0


if __name__ == '__main__':
    sys.exit(check() if '--check' in sys.argv[1:] else sync())

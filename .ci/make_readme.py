"""README.md from nbs/index.ipynb: markdown cells as they are, code cells (not `#| hide`) as python blocks.

  python .ci/make_readme.py          # write README.md
  python .ci/make_readme.py --check  # exit 1 if README.md is not what index.ipynb gives

Links and pictures in index.ipynb are written relative to nbs/ (`images/demo.jpg`, `12_guide.ipynb`), which is where
they resolve in Jupyter and in the docs site nbdev builds from nbs/; README.md sits one folder up, so its copies get
`nbs/` in front (`../docs/x.png` becomes `docs/x.png`). Every relative target must exist: a broken picture fails.
"""
import json
import posixpath
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r'(\]\()([^)\s]+)')          # the target of a markdown link or picture: [text](target) / ![alt](target)


def from_root(target: str) -> str:
    "A link target written relative to nbs/, made relative to the repository root (absolute URLs and anchors kept)."
    if re.match(r'[a-z][a-z0-9+.-]*:|#|/', target): return target
    return posixpath.normpath(posixpath.join('nbs', target))


def broken_links(markdown: str) -> list[str]:
    "Relative link targets of README.md's markdown (relative to the root) that name no file or folder."
    targets = [m.group(2) for m in LINK.finditer(markdown)]
    return [t for t in targets if not re.match(r'[a-z][a-z0-9+.-]*:|#|/', t) and not (ROOT / t.split('#')[0]).exists()]


def render(nb_path: Path) -> str:
    cells = json.loads(nb_path.read_text(encoding='utf-8'))['cells']
    parts = ['<!-- generated from nbs/index.ipynb by .ci/make_readme.py: edit the notebook, not this file -->']
    for c in cells:
        src = ''.join(c['source']).strip('\n')
        if not src: continue
        if c['cell_type'] == 'markdown':
            parts.append(LINK.sub(lambda m: m.group(1) + from_root(m.group(2)), src))
            continue
        lines = src.splitlines()
        directives = [l.replace(' ', '') for l in lines if l.startswith('#|')]
        if any(d.startswith('#|hide') or d.startswith('#|export') or d.startswith('#|default_exp') for d in directives):
            continue
        code = '\n'.join(l for l in lines if not l.startswith('#|')).strip('\n')
        parts.append(f'```python\n{code}\n```')
        for o in c.get('outputs', []):
            if o.get('output_type') == 'stream':
                parts.append('```\n' + ''.join(o['text']).rstrip('\n') + '\n```')
    return '\n\n'.join(parts) + '\n'


if __name__ == '__main__':
    text = render(ROOT / 'nbs' / 'index.ipynb')
    readme = ROOT / 'README.md'
    broken = broken_links(text)
    if broken:
        print(f'nbs/index.ipynb links to what does not exist (targets are relative to nbs/): {", ".join(broken)}')
        sys.exit(1)
    if '--check' in sys.argv[1:]:
        if not readme.exists() or readme.read_text(encoding='utf-8') != text:
            print('README.md is not what nbs/index.ipynb gives: run python .ci/make_readme.py (or .ci/sync)')
            sys.exit(1)
        print('README.md matches nbs/index.ipynb')
    else:
        readme.write_text(text, encoding='utf-8')

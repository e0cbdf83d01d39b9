"""README.md from nbs/index.ipynb: markdown cells as they are, code cells (not `#| hide`) as python blocks.

  python .ci/make_readme.py          # write README.md
  python .ci/make_readme.py --check  # exit 1 if README.md is not what index.ipynb gives
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def render(nb_path: Path) -> str:
    cells = json.loads(nb_path.read_text(encoding='utf-8'))['cells']
    parts = ['<!-- generated from nbs/index.ipynb by .ci/make_readme.py: edit the notebook, not this file -->']
    for c in cells:
        src = ''.join(c['source']).strip('\n')
        if not src: continue
        if c['cell_type'] == 'markdown':
            parts.append(src)
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
    if '--check' in sys.argv[1:]:
        if not readme.exists() or readme.read_text(encoding='utf-8') != text:
            print('README.md is not what nbs/index.ipynb gives: run python .ci/make_readme.py (or .ci/sync)')
            sys.exit(1)
        print('README.md matches nbs/index.ipynb')
    else:
        readme.write_text(text, encoding='utf-8')

"""Run the notebooks and keep the outputs that teach, so a notebook shows its examples on GitHub, in Jupyter and in Colab
without being run first.

  python .ci/outputs.py                      # every notebook in nbs/ (about as long as nbdev_test), 2 at a time
  python .ci/outputs.py nbs/06b_demo.ipynb   # some notebooks
  python .ci/outputs.py --check              # CI: the kept outputs are within the budget and machine-neutral

Cells run as nbdev_test runs them (the same skip flags from settings.ini, `eval: false` skipped, IN_TEST set, in the
notebook's folder). What is kept, of each cell a reader sees (not `#| export`, `#| hide` or skipped cells):
- printed text (stdout; not stderr: warnings and progress bars), values, tables, pictures;
- never a machine's own facts: absolute paths become relative (the checkout) or `…` (temporary folders), and a line
  that reports a time (`0.42 s`, `12 ms`, `3.1 min`, `images/s`) is dropped;
- pictures larger than PNG_MAX are scaled down; the whole of nbs/ stays within BUDGET bytes of outputs;
- a benchmark notebook (NO_OUTPUTS) keeps none: its figures are stated in its prose, with the machine.
A cell that is skipped keeps the outputs it had.
"""
import base64
import io
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from configparser import ConfigParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / 'nbs'
BUDGET = 3_000_000                  # bytes of outputs (as stored in the .ipynb files) for all notebooks together
PNG_MAX = 120_000                   # bytes of one kept picture (larger ones are scaled down)
NO_OUTPUTS = {'08_bench.ipynb'}   # measurements: their numbers belong to the machine that ran them (the prose has the
                                  # figures, with the machine named)
HIDDEN = ('export', 'exports', 'exporti', 'hide', 'hide_output')
TIMING = re.compile(r'\d\s?(s|ms|µs|us|min|sec|seconds|minutes)\b(?!/)|\b(images|img|it|steps)/s\b|\bs/it\b')
TMP = re.compile(r'(/private)?(/tmp|/var/folders/[^\s\'"]+?/T)/[^\s/\'"]+')
ABSOLUTE = re.compile(r'(?<![\w.~])/(tmp|root|home|Users|work|content|kaggle)/')


def directives(source: str) -> dict:
    "nbdev's `#| name args` lines at the top of a cell: {name: args}."
    out = {}
    for line in source.splitlines():
        m = re.match(r'\s*#\s*\|\s*([\w-]+:?)\s*(.*)', line)
        if not m:
            if line.strip(): break
            continue
        out[m.group(1).rstrip(':')] = m.group(2).strip()
    return out


def skip_flags() -> set:
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT / 'settings.ini')
    return set(cfg['DEFAULT'].get('tst_flags', '').split())


def shown(cell: dict) -> bool:
    "Is `cell` a code cell whose outputs a reader sees (and that nbdev_test runs)?"
    if cell['cell_type'] != 'code': return False
    d = directives(''.join(cell['source']))
    return not (set(d) & set(HIDDEN) or set(d) & skip_flags() or d.get('eval', '').lower() == 'false')


def neutral(text: str) -> str:
    "Text with the checkout's path made relative, temporary folders as `…`, and lines that report a time dropped."
    text = text.replace(str(NBS) + os.sep, '').replace(str(ROOT) + os.sep, '').replace(str(ROOT), '.')
    text = TMP.sub('…', text)
    return '\n'.join(l for l in text.split('\n') if not TIMING.search(l))


def small_png(b64: str) -> str:
    "A PNG (base64) scaled down until it is at most PNG_MAX bytes."
    from PIL import Image
    data = base64.b64decode(b64)
    if len(data) <= PNG_MAX: return b64
    img = Image.open(io.BytesIO(data))
    img = img.convert('RGBA' if img.mode in ('RGBA', 'LA', 'P') else 'RGB')
    while len(data) > PNG_MAX and min(img.size) > 64:
        img = img.resize((img.width * 3 // 4, img.height * 3 // 4), Image.LANCZOS)
        buf = io.BytesIO(); img.quantize(256).save(buf, format='PNG', optimize=True); data = buf.getvalue()
    return base64.b64encode(data).decode()


def keep(outputs: list) -> list:
    "The outputs worth committing, made machine-neutral."
    kept = []
    for o in outputs:
        kind = o.get('output_type')
        if kind == 'stream' and o.get('name') == 'stdout':
            text = neutral(''.join(o['text']) if isinstance(o['text'], list) else o['text'])
            if text.strip(): kept.append({'name': 'stdout', 'output_type': 'stream', 'text': text.splitlines(keepends=True)})
        elif kind in ('execute_result', 'display_data'):
            data = {}
            for mime, v in o.get('data', {}).items():
                v = ''.join(v) if isinstance(v, list) else v
                if mime == 'image/png': data[mime] = small_png(v)
                elif mime in ('text/plain', 'text/markdown', 'text/html'):
                    v = neutral(v)
                    if v.strip(): data[mime] = v.splitlines(keepends=True)
            if 'text/plain' in data and len(data) == 1 and re.fullmatch(r'<.* at 0x[0-9a-f]+>\s*', ''.join(data['text/plain'])):
                continue                                            # an object's address tells nothing
            if data:
                out = {'data': data, 'metadata': {}, 'output_type': kind}
                if kind == 'execute_result': out['execution_count'] = None
                kept.append(out)
    return kept


def run(nb_path: str) -> tuple:
    "Execute one notebook (in a fresh process) and write its kept outputs; (name, cells with output, bytes)."
    from execnb.nbio import read_nb
    from execnb.shell import CaptureShell
    nb_path = Path(nb_path).resolve()
    os.environ['IN_TEST'] = '1'
    raw = json.loads(nb_path.read_text(encoding='utf-8'))
    if nb_path.name in NO_OUTPUTS:
        for c in raw['cells']:
            if c['cell_type'] == 'code': c['outputs'], c['execution_count'] = [], None
        nb_path.write_text(json.dumps(raw, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
        return nb_path.name, 0, 0
    nb = read_nb(nb_path)
    flags = skip_flags()
    ran = set()

    def no_eval(cell):
        if cell.cell_type != 'code': return True
        d = directives(cell.source)
        if set(d) & flags or d.get('eval', '').lower() == 'false': return True
        ran.add(cell.get('id'))
        return False

    here = os.getcwd()
    os.chdir(nb_path.parent)
    try: CaptureShell(str(nb_path)).run_all(nb, exc_stop=True, preproc=no_eval)
    finally: os.chdir(here)
    outputs = {c.get('id'): c.get('outputs', []) for c in nb.cells}
    for c in raw['cells']:
        if c['cell_type'] != 'code' or c.get('id') not in ran: continue
        c['outputs'] = keep(json.loads(json.dumps(outputs.get(c['id'], [])))) if shown(c) else []
        c['execution_count'] = None
    nb_path.write_text(json.dumps(raw, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
    return nb_path.name, sum(bool(c.get('outputs')) for c in raw['cells']), output_bytes(raw)


def output_bytes(raw: dict) -> int:
    return sum(len(json.dumps(c.get('outputs', []), indent=1, ensure_ascii=False)) for c in raw['cells'])


def notebooks() -> list:
    return sorted(p for p in NBS.glob('*.ipynb') if not p.name.startswith('_'))


def check() -> int:
    "CI: the outputs of all notebooks fit the budget, and no kept output holds a machine's absolute path."
    total, bad = 0, []
    for p in notebooks():
        raw = json.loads(p.read_text(encoding='utf-8'))
        total += output_bytes(raw)
        for i, c in enumerate(raw['cells']):
            for o in c.get('outputs', []):
                texts = [o.get('text', '')] + [v for m, v in o.get('data', {}).items() if m.startswith('text/')]
                text = ''.join(''.join(t) if isinstance(t, list) else t for t in texts)
                if ABSOLUTE.search(text): bad.append(f'{p.name} cell {i}: an absolute path in an output')
                if o.get('output_type') == 'error': bad.append(f'{p.name} cell {i}: an error output')
    if total > BUDGET: bad.append(f'outputs take {total:,} bytes, over the budget of {BUDGET:,}')
    for b in bad: print(b)
    print(f'notebook outputs: {total / 1e6:.2f} MB in {len(notebooks())} notebooks (budget {BUDGET / 1e6:.1f} MB)')
    return 1 if bad else 0


def run_one(path: str) -> str:
    "Run one notebook in a fresh Python (a notebook's IPython shell takes over its process's __main__)."
    r = subprocess.run([sys.executable, __file__, '--one', path], cwd=ROOT, capture_output=True, text=True)
    if r.returncode: raise RuntimeError((r.stderr.strip().splitlines() or ['no output'])[-1][:300])
    return r.stdout.strip()


def main(argv: list) -> int:
    if '--check' in argv: return check()
    if '--one' in argv:
        name, cells, size = run(argv[argv.index('--one') + 1])
        print(f'{name}: {cells} cells with output, {size / 1e3:.0f} kB')
        return 0
    paths = [str(Path(a).resolve()) for a in argv] or [str(p) for p in notebooks()]
    failed = []
    with ThreadPoolExecutor(int(os.environ.get('BLINDSR_OUTPUT_WORKERS', 2))) as pool:
        futures = {pool.submit(run_one, p): p for p in paths}
        for f, p in futures.items():
            try: print(f.result(), flush=True)
            except Exception as e:
                failed.append(p); print(f'{Path(p).name}: FAILED ({e})', flush=True)
    subprocess.run(['nbdev_clean'], cwd=ROOT, check=True)
    return check() or (1 if failed else 0)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

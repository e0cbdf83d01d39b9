# %% [markdown]
# # Command lines
# > What every `blindsr_*` command shares: flags built from a dataclass whose field comments are their help, number types that refuse impossible values, an output folder that can never overwrite an input, and one way to turn a user's mistake into one clear line instead of a traceback.

# %% [markdown]
# Use it when you write a `blindsr_*` command (or wonder why one answered as it did): `add_config_args` makes the
# flags of a config dataclass, with help from its field comments; `positive_int` and friends refuse impossible
# numbers at the flag; `check_output_dir` keeps outputs away from inputs and from files the command did not write;
# `run_cli` turns a user's mistake into one line and exit status 2.

# %%
#| default_exp cli

# %%
#| export
from __future__ import annotations

import argparse
import ast
import inspect
import io
import json
import linecache
import math
import os
import shutil
import sys
import tempfile
import textwrap
import tokenize
from dataclasses import MISSING, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, Union

PathLike = Union[str, os.PathLike]   # as blindsr.core's: this module imports no torch, so blindsr_kaggle starts in a second

# %%
#| hide
import subprocess
import tempfile
from contextlib import redirect_stderr

from fastcore.test import test_eq, test_fail
from matplotlib.figure import Figure
from PIL import Image

tmp = Path(tempfile.mkdtemp())

# the example configs below, in a module of their own: field_docs reads a class's source from its module file
example_src = """
from dataclasses import dataclass

@dataclass
class Example:
    "A config to read back."
    # data
    faces: str | None = None   # folder of HQ faces
    size: int = 512            # side of a face, pixels;
                               # must be divisible by 4
    # optimisation
    lr: float = 4e-4           # peak learning rate (Adam)
    quiet: bool = False

@dataclass
class Example2:
    "A config with choices."
    CHOICES = {'loss': ('l1', 'mse')}
    # optimisation
    lr: float = 4e-4           # peak learning rate (Adam)
    loss: str = 'l1'           # the pixel loss
    betas: tuple = (0.9, 0.99) # Adam's betas
    limit: int | None = None   # use only the first N faces
    # output
    progress: bool = True      # show a progress bar
"""
(tmp/'example_cfg.py').write_text(example_src)
sys.path.insert(0, str(tmp))
from example_cfg import Example, Example2



# %% [markdown]
# Ten commands face users who type fast. They share four things, written once here:
#
# 1. **Help from the one place a setting is documented.** Configs are dataclasses with a comment on each field
#    (STYLE.md); `field_docs` reads those comments back from the source, so `--help` and the code cannot drift.
# 2. **Numbers that refuse the impossible**: `--iters -5` or `--batch 0` stop at the flag, naming it.
# 3. **Outputs that cannot destroy inputs**: an output folder that is, contains or lies inside an input is
#    refused, and so is one holding files the command did not write, unless `--overwrite` says so.
# 4. **One line per mistake**: `run_cli` turns the errors a user can cause into `prog: error: …` and exit code 2,
#    and Ctrl-C into one line saying how to resume (exit code 130) — no traceback.
#
# A mistake a user can make is a `UserError`: its message names the flag or file and says what to do.

# %%
#| export
class UserError(ValueError):
    "A mistake in what the user asked for; the message names the flag or file and says what to do."


# %% [markdown]
# ## Help from field comments
#
# A config dataclass documents each field with a comment on its line (continued on comment-only lines below it),
# and groups fields under comment-only headings:
#
# ```python
# @dataclass
# class Example:
#     # data
#     faces: str | None = None   # folder of HQ faces
#     # optimisation
#     lr: float = 4e-4           # peak learning rate (Adam)
# ```

# %%
#| export
@dataclass(frozen=True)
class FieldDoc:
    "What a config field's source says about it."
    name: str           # the field
    help: str           # its comment (continuation lines joined), '' if none
    group: str          # the comment-only heading above it ('' before the first heading)


def _class_source(cls: type) -> str:
    "The source of a class; for one defined in a notebook cell, found through a method's code (raises OSError if none)."
    try: return inspect.getsource(cls)
    except (OSError, TypeError): pass
    for v in vars(cls).values():
        f = getattr(v, '__func__', v)
        if not (inspect.isfunction(f) and f.__qualname__.startswith(cls.__qualname__ + '.')): continue
        lines = linecache.getlines(f.__code__.co_filename)
        try: tree = ast.parse(''.join(lines))
        except SyntaxError: continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                return ''.join(lines[first - 1:node.end_lineno])
    raise OSError(f'no source found for {cls.__name__}')


def field_docs(cls: type) -> dict[str, FieldDoc]:
    "The comment and heading of every field of a dataclass, read from its source ({} when the source is unavailable)."
    try: src = textwrap.dedent(_class_source(cls))
    except OSError: return {}
    comments = {tok.start[0]: (tok.start[1], tok.string[1:].strip())          # line -> (column of '#', text)
                for tok in tokenize.generate_tokens(io.StringIO(src).readline) if tok.type == tokenize.COMMENT}
    spans = {n.lineno: (n.target.id, n.end_lineno or n.lineno) for n in ast.parse(src).body[0].body
             if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    lines, names = src.splitlines(), {f.name for f in fields(cls)}
    out, group, last, ln = {}, '', None, 1           # last: (field, column of its comment) that a comment line may continue
    while ln <= len(lines):
        if ln in spans:
            name, end = spans[ln]
            own = [comments[i] for i in range(ln, end + 1) if i in comments]
            if name in names: out[name] = FieldDoc(name, ' '.join(t for _, t in own if t), group)
            last, ln = ((name, own[-1][0]) if own else None), end + 1
            continue
        if ln in comments and lines[ln - 1].lstrip().startswith('#'):
            col, text = comments[ln]
            if last and col >= last[1] and last[0] in out:                # lined up under the field's comment: more of it
                d = out[last[0]]
                out[last[0]] = FieldDoc(d.name, f'{d.help} {text}'.strip(), d.group)
            else: group, last = text, None                                  # a heading
        else: last = None
        ln += 1
    return out


# %% [markdown]
# `field_docs` on that `Example` with two more fields (defined in the hidden set-up cell): `size`, whose comment goes
# on over a second line, and `quiet`, which has none:

# %%
#| exec_doc
docs = field_docs(Example)
for d in docs.values(): print(d)


# %%
#| hide
@dataclass
class InCell:
    "A config defined in a notebook cell (no source file): its docs are found through a method's code."
    # data
    faces: str | None = None   # folder of HQ faces
    def describe(self): return self.faces
test_eq(field_docs(InCell)['faces'], FieldDoc('faces', 'folder of HQ faces', 'data'))
test_eq(docs['faces'], FieldDoc('faces', 'folder of HQ faces', 'data'))
test_eq(docs['size'].help, 'side of a face, pixels; must be divisible by 4')
test_eq((docs['lr'].group, docs['quiet'].help, docs['quiet'].group), ('optimisation', '', 'optimisation'))


# %% [markdown]
# ## Numbers that refuse the impossible
#
# argparse's `type=int` takes `-5` and `0` and `nan` as happily as `16`. These types take what a count, a size or
# a duration can be, and say what they expected; argparse turns the message into `prog: error: argument --iters: …`.

# %%
#| export
def _number(kind: type, lo: float | None, lo_open: bool, what: str, allow_none: bool = False) -> Callable[[str], Any]:
    def parse(text: str):
        if allow_none and text.strip().lower() in ('none', 'null'): return None
        try: v = kind(text)
        except ValueError: raise argparse.ArgumentTypeError(f'expected {what}, got {text!r}') from None
        if isinstance(v, float) and not math.isfinite(v): raise argparse.ArgumentTypeError(f'expected {what}, got {text!r}')
        if lo is not None and (v <= lo if lo_open else v < lo): raise argparse.ArgumentTypeError(f'expected {what}, got {text!r}')
        return v
    parse.__name__ = what                     # argparse names the type in some messages
    return parse


positive_int = _number(int, 0, True, 'a whole number > 0')
non_negative_int = _number(int, 0, False, 'a whole number >= 0')
positive_float = _number(float, 0, True, 'a number > 0')
non_negative_float = _number(float, 0, False, 'a number >= 0')
finite_float = _number(float, None, False, 'a finite number')


def worker_count(text: str) -> int:
    "An argparse type for --workers: a whole number from 1 to 4 x the cores (more only starts processes that wait)."
    n = positive_int(text)
    most = 4 * (os.cpu_count() or 1)
    if n > most:
        raise argparse.ArgumentTypeError(f'expected a number of workers from 1 to {most} (4 x the {os.cpu_count() or 1} '
                                         f'cores of this machine), got {text!r}')
    return n


# %%
test_eq((positive_int('3'), non_negative_int('0'), positive_float('0.5'), finite_float('-2')), (3, 0, 0.5, -2.0))
for t, bad in ((positive_int, '0'), (positive_int, '-5'), (positive_int, '1.5'), (non_negative_int, '-1'),
               (positive_float, '0'), (positive_float, 'nan'), (finite_float, 'inf'), (non_negative_float, '-0.1')):
    test_fail(lambda: t(bad), contains=repr(bad))
test_eq(worker_count('2'), 2)
for bad in ('0', '-3', '100000', 'two'): test_fail(lambda: worker_count(bad), contains=repr(bad))


# %% [markdown]
# A flag that takes a list of names (`--parts`, `--recipes`) must refuse a typo instead of ignoring it:

# %%
#| export
def names_in(valid: Iterable[str],  # the names the flag accepts
             what: str = 'name',  # what a name is, for the message
            ) -> Callable[[str], list[str]]:  # parses 'a,b' (or one name) into a checked list
    "An argparse type for comma-separated names from `valid`; an unknown one is an error that lists the valid ones."
    valid = list(valid)
    def parse(text: str) -> list[str]:
        names = [t.strip() for t in text.split(',') if t.strip()]
        bad = [n for n in names if n not in valid]
        if bad or not names:
            raise argparse.ArgumentTypeError(f'unknown {what} {", ".join(map(repr, bad)) or repr(text)}; choose from {", ".join(valid)}')
        return names
    return parse


# %%
test_eq(names_in(['a', 'b'])('a,b'), ['a', 'b'])
test_fail(lambda: names_in(['degradation', 'training'], 'part')('degradaton'), contains="unknown part 'degradaton'; choose from degradation, training")


# %% [markdown]
# ## Configs that refuse the impossible
#
# A config dataclass is filled from flags, from a JSON/YAML file and from Python, so its own `__post_init__` is
# the one place its values are checked. `check_config` does the part every config shares, from three class
# attributes: each field's annotation (`int | None` takes a whole number or None, never `"ten"` or `True`),
# `CHOICES` (a field's allowed values) and `RANGES` (a field's allowed interval, a `Range`). The same maps give
# `--help` its choices and ranges, so the documentation and the check cannot disagree.

# %%
#| export
@dataclass(frozen=True)
class Range:
    "The numbers a field may take: from `lo` to `hi` (None: unbounded), each end closed unless said open."
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False   # lo itself is excluded
    hi_open: bool = False   # hi itself is excluded

    def __contains__(self, v) -> bool:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v): return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo): return False
        if self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi): return False
        return True

    def __str__(self) -> str:
        num = lambda x: str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f'{x:g}'
        if self.hi is None: return f'{">" if self.lo_open else ">="} {num(self.lo)}'
        if self.lo is None: return f'{"<" if self.hi_open else "<="} {num(self.hi)}'
        return f'in {"(" if self.lo_open else "["}{num(self.lo)}, {num(self.hi)}{")" if self.hi_open else "]"}'


class ConfigError(UserError):
    "A config field with a value it cannot take; `field` names it (a command turns it into its flag or file)."
    def __init__(self, msg: str, field: str):
        super().__init__(msg)
        self.field = field


def _annotation_text(t) -> str:
    "A field's annotation as text ('float', 'int | None'), whether or not its module postpones annotations."
    return t if isinstance(t, str) else t.__name__ if isinstance(t, type) else str(t).replace('typing.', '')


_KIND = {'int': 'a whole number', 'float': 'a finite number', 'str': 'text', 'bool': 'true or false',
         'dict': 'a JSON object like {"num_block": 24}', 'tuple': 'a list like [0.9, 0.99]', 'list': 'a list'}


def _typed(annotation: str, v):
    "`v` as the annotation's type (int for float, list for tuple), or raise TypeError."
    base = annotation.split('|')[0].strip()
    if v is None:
        if 'None' in annotation: return None
        raise TypeError
    ok = {'bool': isinstance(v, bool), 'int': isinstance(v, int) and not isinstance(v, bool),
          'float': isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
          'str': isinstance(v, str), 'dict': isinstance(v, dict), 'tuple': isinstance(v, (list, tuple)),
          'list': isinstance(v, (list, tuple))}.get(base, True)
    if not ok: raise TypeError
    return float(v) if base == 'float' else tuple(v) if base == 'tuple' else list(v) if base == 'list' else v


def check_config(cfg) -> None:
    "Check (and normalise) every field of the dataclass instance `cfg` by its annotation, `CHOICES` and `RANGES`."
    cls = type(cfg)
    name, choices, ranges = cls.__name__, getattr(cls, 'CHOICES', {}), getattr(cls, 'RANGES', {})
    for f in fields(cfg):
        v, ann = getattr(cfg, f.name), _annotation_text(f.type)
        try: v = _typed(ann, v)
        except TypeError:
            what = _KIND.get(ann.split('|')[0].strip(), ann) + (' or null' if 'None' in ann else '')
            raise ConfigError(f'{name}.{f.name} must be {what}, got {v!r}', f.name) from None
        setattr(cfg, f.name, v)
        if v is None: continue
        if f.name in choices and v not in choices[f.name]:
            raise ConfigError(f'{name}.{f.name} must be one of {", ".join(map(str, choices[f.name]))}, got {v!r}', f.name)
        if f.name in ranges and v not in ranges[f.name]:
            raise ConfigError(f'{name}.{f.name} must be {ranges[f.name]}' + (' (or null)' if 'None' in ann else '') +
                              f', got {v!r}', f.name)


# %%
test_eq([str(r) for r in (Range(1), Range(0, lo_open=True), Range(0, 1, hi_open=True), Range(hi=5))],
        ['>= 1', '> 0', 'in [0, 1)', '<= 5'])
test_eq((1 in Range(1), 0 in Range(1), 0.5 in Range(0, 1, hi_open=True), 1 in Range(0, 1, hi_open=True),
         float('nan') in Range(0), True in Range(0)), (True, False, True, False, False, False))

@dataclass
class Limits:
    CHOICES = {'loss': ('l1', 'mse')}
    RANGES = {'iters': Range(1), 'ema': Range(0, 1, hi_open=True)}
    iters: int | None = None
    ema: float = 0.9
    loss: str = 'l1'
    betas: tuple = (0.9, 0.99)

c = Limits(iters=3, ema=0, betas=[0.5, 0.9]); check_config(c)
test_eq((c.ema, c.betas), (0.0, (0.5, 0.9)))                  # an int is a float; a JSON list a tuple
for kw, msg in (({'iters': 0}, 'Limits.iters must be >= 1 (or null), got 0'), ({'iters': 'ten'}, "iters must be a whole number or null, got 'ten'"),
                ({'iters': True}, 'iters must be a whole number'), ({'ema': 1.0}, 'ema must be in [0, 1), got 1.0'),
                ({'ema': float('nan')}, 'ema must be a finite number'), ({'loss': 'l3'}, "loss must be one of l1, mse, got 'l3'")):
    test_fail(lambda: check_config(Limits(**kw)), contains=msg)
try: check_config(Limits(loss='l3'))
except ConfigError as e: test_eq(e.field, 'loss')


# %% [markdown]
# ## Flags from a config dataclass
#
# `add_config_args` adds one flag per field (`--batch-size` for `batch_size`), grouped under the field headings,
# each with its comment, its choices, its range and its default (and, from a `METAVARS` map, the name of its
# value, e.g. `DIR`). Values are parsed by the field's annotation (`int | None` accepts `none`; dicts, lists and
# tuples are JSON); choices and ranges come from the dataclass's `CHOICES` and `RANGES`, so the config's own
# validation and the flag's help use one list. Defaults are left unset (`SUPPRESS`), so that a config file can
# fill what the command line does not say.

# %%
#| export
def parse_value(annotation: str,  # a field's annotation as text: 'int', 'float | None', 'dict', 'tuple', 'bool', 'str'
                text: str,  # what the user typed
               ):
    "Parse a flag's text by its field's annotation; a wrong value raises ValueError saying what was expected."
    base = annotation.split('|')[0].strip()
    if text.strip().lower() in ('none', 'null') and 'None' in annotation: return None
    if base == 'bool':
        if text.lower() not in ('true', 'false', '1', '0', 'on', 'off', 'yes', 'no'):
            raise ValueError(f'expected true or false, got {text!r}')
        return text.lower() in ('true', '1', 'on', 'yes')
    if base in ('dict', 'tuple', 'list'):
        try: v = json.loads(text)
        except ValueError: raise ValueError(f'expected JSON ({"an object" if base == "dict" else "a list"}), got {text!r}') from None
        if base == 'dict' and not isinstance(v, dict): raise ValueError(f'expected a JSON object like {{"num_block": 24}}, got {text!r}')
        if base in ('tuple', 'list') and not isinstance(v, list): raise ValueError(f'expected a JSON list like [0.9, 0.99], got {text!r}')
        return tuple(v) if base == 'tuple' else v
    if base == 'int':
        try: return int(text)
        except ValueError: raise ValueError(f'expected a whole number, got {text!r}') from None
    if base == 'float':
        try: v = float(text)
        except ValueError: raise ValueError(f'expected a number, got {text!r}') from None
        if not math.isfinite(v): raise ValueError(f'expected a finite number, got {text!r}')
        return v
    return text


def _flag_type(annotation: str):
    def parse(text: str):
        try: return parse_value(annotation, text)
        except ValueError as e: raise argparse.ArgumentTypeError(str(e)) from None
    parse.__name__ = annotation.split('|')[0].strip()
    return parse


def _default_of(f) -> Any:
    if f.default is not MISSING: return f.default
    if f.default_factory is not MISSING: return f.default_factory()
    return None


def add_config_args(parser: argparse.ArgumentParser,
                    cls: type,  # a config dataclass with field comments
                    skip: Sequence[str] = (),  # fields not to offer as flags
                   ) -> dict[str, argparse._ArgumentGroup]:  # the argument groups, by heading
    "One flag per field of `cls`, in groups by the field headings, each with its comment, choices, range and default."
    docs, choices, ranges = field_docs(cls), getattr(cls, 'CHOICES', {}), getattr(cls, 'RANGES', {})
    metavars = getattr(cls, 'METAVARS', {})
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in fields(cls):
        if f.name in skip: continue
        doc = docs.get(f.name, FieldDoc(f.name, '', ''))
        g = groups.get(doc.group) or groups.setdefault(doc.group, parser.add_argument_group(doc.group or 'other'))
        default = _default_of(f)
        ann = _annotation_text(f.type)
        text = doc.help.replace('%', '%%')
        if f.name in choices: text += f" [choices: {', '.join(map(str, choices[f.name]))}]"
        if f.name in ranges: text += f' [{ranges[f.name]}]'
        text += f' (default: {json.dumps(default) if isinstance(default, (dict, list, tuple)) else default})'
        flag = '--' + f.name.replace('_', '-')
        if isinstance(default, bool):
            g.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=text)
        else:
            g.add_argument(flag, dest=f.name, type=_flag_type(ann), default=argparse.SUPPRESS, help=text,
                           metavar=metavars.get(f.name, ann.split('|')[0].strip().upper()))
    return groups


# %% [markdown]
# The help `add_config_args` makes for `Example2` (defined in this notebook's hidden set-up cell like `Example`
# above, with a `CHOICES` map and one more group):

# %%
#| exec_doc
ap = argparse.ArgumentParser(prog='example')
add_config_args(ap, Example2)
print(ap.format_help())

# %%
#| hide
test_eq(vars(ap.parse_args(['--lr', '1e-3', '--betas', '[0.9, 0.999]', '--limit', 'none', '--no-progress'])),
        {'lr': 1e-3, 'betas': (0.9, 0.999), 'limit': None, 'progress': False})
assert '[choices: l1, mse] (default: l1)' in ap.format_help() and 'optimisation:' in ap.format_help()
with redirect_stderr(io.StringIO()) as err:
    try: ap.parse_args(['--limit', 'ten']); raise AssertionError('accepted')
    except SystemExit as e: test_eq(e.code, 2)
assert "argument --limit: expected a whole number, got 'ten'" in err.getvalue(), err.getvalue()
test_fail(lambda: parse_value('dict', '[1, 2]'), contains='expected a JSON object')


# %% [markdown]
# ## Outputs that cannot destroy inputs
#
# The rule for every command that writes a folder: the output may not be an input, contain one, or lie inside one
# (restoring `val/LQ` into `val/GT` would overwrite the ground truth and score it against itself), and an output
# folder that already holds files the command did not write is refused unless the user passes `--overwrite` — and
# then only the names the command writes are replaced; nothing else in the folder is touched.
#
# Which files did the command write? Each command that writes a folder leaves a small manifest in it,
# `.blindsr-<command>.json`, listing the files it wrote (and whatever it needs to know on a rerun). Files listed
# there are its own: a rerun may replace them without `--overwrite`. Any other file makes the folder "not ours".

# %%
#| export
def _inside(a: Path, b: Path) -> bool:
    "Is `a` the path `b` or inside it?"
    try: a.relative_to(b); return True
    except ValueError: return False


def manifest_path(out: PathLike, command: str) -> Path:
    "Where `command` keeps the list of the files it wrote in the folder `out`."
    return Path(out) / f'.blindsr-{command}.json'


def read_manifest(out: PathLike, command: str) -> dict:
    "The manifest `command` left in `out` ({'files': []} when there is none or it is unreadable)."
    try: m = json.loads(manifest_path(out, command).read_text(encoding='utf-8'))
    except (OSError, ValueError): return {'files': []}
    return m if isinstance(m, dict) and isinstance(m.get('files'), list) else {'files': []}


def write_manifest(out: PathLike, command: str, files: Iterable[str], **info) -> Path:
    "Record (atomically) that `command` wrote `files` (names inside `out`), with any extra JSON-able `info`."
    path = manifest_path(out, command)
    data = {**read_manifest(out, command), **info}
    data['files'] = sorted(set(data['files']) | {Path(f).name for f in files})
    tmp_path = path.with_name(path.name + f'.{os.getpid()}.tmp')
    tmp_path.write_text(json.dumps(data, indent=1), encoding='utf-8')
    os.replace(tmp_path, path)
    return path


def check_writable(folder: PathLike,  # a folder the command will create files in (it may not exist yet)
                   flag: str = 'OUT',  # how the command names the output, for the message
                   shown: PathLike | None = None,  # the path as the user gave it, for the message (default `folder`)
                  ) -> Path:  # `folder`, absolute
    "Refuse an output folder that cannot be created or written; the check creates the missing folders and removes them."
    p = Path(folder).expanduser().absolute()
    shown = folder if shown is None else shown
    q = p
    while not q.exists() and q.parent != q: q = q.parent
    if not q.is_dir():
        raise UserError(f'{flag} {shown}: {q} is a file, not a folder; choose another place for the output')
    if not os.access(q, os.W_OK | os.X_OK):
        raise UserError(f'{flag} {shown} cannot be written ({q} is read-only for this user); choose a folder you can '
                        'write to (on Kaggle: under /kaggle/working)')
    # root passes os.access everywhere, and /proc or a full disk say no only when asked: try it, leave nothing behind
    top = q / p.relative_to(q).parts[0] if p != q else None               # the first folder the probe creates
    try:
        p.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=p).close()
    except OSError as e:
        raise UserError(f'{flag} {shown} cannot be created: {e.strerror or e}; choose a writable folder '
                        '(on Kaggle: under /kaggle/working)') from None
    finally:
        if top is not None: shutil.rmtree(top, ignore_errors=True)
    return p


def check_output_path(out: PathLike,  # an output file or folder (it may not exist yet)
                      inputs: Sequence[PathLike],  # the command's input files and folders
                      flag: str = 'OUT',  # how the command names the output, for the message
                     ) -> Path:  # `out`, resolved
    "Refuse an empty output path, and an output that is an input, contains one or lies inside an input folder."
    if not str(out).strip(): raise UserError(f'{flag} is empty; give a path (or leave {flag} out for the default)')
    out_r = Path(out).expanduser().resolve()
    for i in inputs:
        i_r = Path(i).expanduser().resolve()
        if out_r == i_r: what = 'is'
        elif i_r.is_dir() and _inside(out_r, i_r): what = 'lies inside'
        elif _inside(i_r, out_r): what = 'contains'
        else: continue
        raise UserError(f'{flag} {out} {what} the input {i}: the outputs would overwrite or mix with the inputs; '
                        'choose an output outside the inputs')
    return out_r


def check_output_dir(out: PathLike,  # the output folder (it may not exist yet)
                     inputs: Sequence[PathLike],  # the command's input files and folders
                     command: str | None = None,  # the command's manifest name: files it lists are its own
                     own: Callable[[Path], bool] | None = None,  # or: is an existing file the command's own?
                     overwrite: bool = False,  # the user passed --overwrite
                     flag: str = 'OUT',  # how the command names the output, for the message
                    ) -> Path:  # `out`, resolved
    "Refuse an output folder that is/contains/lies inside an input, is a file, or holds files the command did not write."
    out_r = check_output_path(out, inputs, flag)
    if out_r.exists() and not out_r.is_dir():
        raise UserError(f'{flag} {out} is a file, not a folder; give a folder (it is created if missing)')
    if out_r.is_dir() and not overwrite:
        listed = set(read_manifest(out_r, command)['files']) if command else set()
        mine = {manifest_path(out_r, command).name} if command else set()
        foreign = sorted(p.name for p in out_r.iterdir() if p.name not in listed | mine and not (own and own(p)))
        if foreign:
            raise UserError(f'{flag} {out} already holds {len(foreign)} file(s) this command did not write '
                            f'({", ".join(foreign[:5])}{" …" if len(foreign) > 5 else ""}); choose an empty or new '
                            'folder, or pass --overwrite to write into it (only the names it writes are replaced)')
    check_writable(out_r, flag, shown=out)
    return out_r


# %%
#| hide
for d in ('lq', 'gt', 'out'): (tmp/d).mkdir(parents=True, exist_ok=True)
(tmp/'gt'/'00000.png').write_bytes(b'gt'); (tmp/'out'/'00000.png').write_bytes(b'old')
test_fail(lambda: check_output_dir(tmp/'gt', [tmp/'lq', tmp/'gt']), contains='is the input')
test_fail(lambda: check_output_dir(tmp/'gt'/'sr', [tmp/'lq', tmp/'gt']), contains='lies inside the input')
test_fail(lambda: check_output_dir(tmp, [tmp/'lq']), contains='contains the input')
test_fail(lambda: check_output_dir(tmp/'gt'/'00000.png', [tmp/'lq']), contains='is a file, not a folder')
test_fail(lambda: check_output_dir(tmp/'out', [tmp/'lq'], 'restore'), contains='did not write (00000.png)')
test_eq(check_output_dir(tmp/'out', [tmp/'lq'], 'restore', overwrite=True), (tmp/'out').resolve())
write_manifest(tmp/'out', 'restore', ['00000.png'], weights='w.pt')           # what a run of the command leaves
test_eq(check_output_dir(tmp/'out', [tmp/'lq'], 'restore'), (tmp/'out').resolve())   # a rerun may replace its own
test_eq(read_manifest(tmp/'out', 'restore'), {'files': ['00000.png'], 'weights': 'w.pt'})
(tmp/'out'/'notes.txt').write_text('mine')
test_fail(lambda: check_output_dir(tmp/'out', [tmp/'lq'], 'restore'), contains='notes.txt')
test_eq(check_output_dir(tmp/'new', [tmp/'lq'], 'restore'), (tmp/'new').resolve())
test_fail(lambda: check_output_path(tmp/'lq'/'scores.csv', [tmp/'lq']), contains='lies inside the input')
test_eq((tmp/'gt'/'00000.png').read_bytes(), b'gt')                                  # nothing was touched

# %% [markdown]
# ## One line per mistake
#
# `run_cli` runs a command's body and maps what a user can cause to one line on stderr: `UserError`, missing
# files, unreadable images or checkpoints, bad values (`ValueError`, `KeyError` from a registry lookup) and
# permissions, with exit code 2. Ctrl-C prints where to pick up again and exits with 130, the shell's code for it.
# Anything else is a bug in blindsr and keeps its traceback, so it can be reported.

# %%
#| export
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, ValueError, KeyError, FileNotFoundError, FileExistsError,
                                                 NotADirectoryError, IsADirectoryError, PermissionError, OSError)


def error_line(e: BaseException) -> str:
    "The message of a user error on one line (a KeyError's repr quotes are dropped)."
    msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    if isinstance(e, OSError) and e.filename and str(e.filename) not in str(msg):
        msg = f'{e.filename}: {e.strerror or msg}'
    return str(msg).strip()


def run_cli(prog: str,  # the command's name, e.g. 'blindsr_train'
            body: Callable[[], int | None],  # the command (after argument parsing); returns its exit code
            errors: tuple[type[BaseException], ...] = USER_ERRORS,  # what counts as a user's mistake
            resume_hint: str | Callable[[], str] = 'rerun the same command to resume',  # or a function saying where
                                                                                      # it stopped, asked at Ctrl-C
           ) -> int:
    "Run `body`; a user error is one line on stderr and exit code 2, Ctrl-C one line and 130."
    try:
        rc = body()
        return 0 if rc is None else int(rc)
    except KeyboardInterrupt:
        hint = resume_hint() if callable(resume_hint) else resume_hint
        print(f'\n{prog}: interrupted{" " if hint.startswith("at ") else "; "}{hint}', file=sys.stderr)   # 'interrupted at step 7; …'
        return 130
    except errors as e:
        print(f'{prog}: error: {error_line(e)}', file=sys.stderr)
        return 2


# %%
def boom(e):
    def body(): raise e
    return body
with redirect_stderr(io.StringIO()) as err:                          # a command that knows where it stopped says so
    test_eq(run_cli('demo', boom(KeyboardInterrupt()), resume_hint=lambda: 'at step 7; rerun the same command to resume'), 130)
test_eq(err.getvalue().strip(), 'demo: interrupted at step 7; rerun the same command to resume')
with redirect_stderr(io.StringIO()) as err:
    test_eq(run_cli('demo', boom(UserError('--iters must be > 0'))), 2)
    test_eq(run_cli('demo', boom(KeyError("unknown generator 'x'"))), 2)
    test_eq(run_cli('demo', boom(KeyboardInterrupt())), 130)
    test_eq(run_cli('demo', lambda: None), 0)
test_eq(err.getvalue().splitlines(), ['demo: error: --iters must be > 0', "demo: error: unknown generator 'x'", '',
                                      'demo: interrupted; rerun the same command to resume'])
test_fail(lambda: run_cli('demo', boom(ZeroDivisionError())))       # a bug keeps its traceback


# %% [markdown]
# ## Output files, writable folders and help that teaches
#
# The same rules hold for an output *file* (`--csv`, `--json`, `--plot`, a zip): it may not be an input, lie inside
# an input folder or contain one; it may not be a folder; its folder must be writable — checked before any work, so
# that a read-only mount (`/kaggle/input/…`) is found before the scoring, not after; and an existing file there is
# replaced only when it is one this command wrote (`own`), never a user's file of the same name.

# %%
#| export
def check_output_file(out: PathLike,  # an output file (it may not exist yet)
                      inputs: Sequence[PathLike],  # the command's input files and folders
                      flag: str = 'OUT',  # how the command names the output, for the message
                      own: Callable[[Path], bool] | None = None,  # is an existing file at `out` one this command wrote?
                      overwrite: bool | None = None,  # the user passed --overwrite (None: the command has no such flag)
                     ) -> Path:  # `out`, resolved
    "Refuse an output file that is/contains/lies inside an input, is a folder, cannot be written, or is a user's file."
    out_r = check_output_path(out, inputs, flag)
    if out_r.is_dir(): raise UserError(f'{flag} {out} is a folder; give a file name (e.g. {Path(out) / "out"}…)')
    check_writable(out_r.parent, flag, shown=out)
    if out_r.exists() and own is not None and not overwrite and not own(out_r):
        how = 'pass --overwrite to replace it' if overwrite is not None else 'delete it first'
        raise UserError(f'{flag} {out} already exists and was not written by this command; choose another name, or {how}')
    return out_r


# %%
#| hide
(tmp/'ro').mkdir(); (tmp/'notes.csv').write_text('my notes')
test_fail(lambda: check_output_file(tmp/'gt'/'scores.csv', [tmp/'gt'], '--csv'), contains='--csv')
test_fail(lambda: check_output_file(tmp/'out', [tmp/'gt'], '--csv'), contains='is a folder')
test_fail(lambda: check_output_file(tmp/'notes.csv'/'x.csv', [tmp/'gt'], '--csv'), contains='is a file, not a folder')
is_scores = lambda p: p.read_text().startswith('stem,')
test_fail(lambda: check_output_file(tmp/'notes.csv', [tmp/'gt'], '--csv', own=is_scores), contains='delete it first')
test_eq(check_output_file(tmp/'new'/'deeper'/'s.csv', [tmp/'gt'], '--csv'), (tmp/'new'/'deeper'/'s.csv').resolve())
test_eq((tmp/'new'/'deeper').exists(), False)                                        # nothing is created by a check
test_eq(check_output_dir(tmp/'made'/'here', [tmp/'gt']), (tmp/'made'/'here').resolve())
test_eq((tmp/'made').exists(), False)                                                 # … not even by the probe
test_eq((tmp/'gt'/'00000.png').read_bytes(), b'gt')                                  # and it removes only what it made
if Path('/proc/self').is_dir():                                                      # a folder no one can create
    test_fail(lambda: check_output_dir('/proc/blindsr_out', [tmp/'gt']), contains='OUT /proc/blindsr_out cannot be created')
    test_fail(lambda: check_output_file('/proc/x.csv', [tmp/'gt'], '--csv'), contains='--csv /proc/x.csv cannot be created')
test_fail(lambda: check_output_file('', [tmp/'gt'], '--csv'), contains='--csv is empty')
if os.geteuid() != 0:                                                                 # root may write anywhere
    os.chmod(tmp/'ro', 0o555)
    test_fail(lambda: check_output_file(tmp/'ro'/'s.csv', [tmp/'gt'], '--csv'), contains='read-only')
    os.chmod(tmp/'ro', 0o755)


# %% [markdown]
# Two more argparse types: a level or fraction strictly between 0 and 1 (`--alpha`), and a JSON object
# (`--arch-kwargs '{"num_block": 24}'`), each refusing anything else with a message naming what it expected.

# %%
#| export
def _open_unit(text: str) -> float:
    try: v = float(text)
    except ValueError: v = math.nan
    if not 0 < v < 1: raise argparse.ArgumentTypeError(f'expected a number between 0 and 1 (exclusive), got {text!r}')
    return v


probability = _open_unit               # argparse type: a float in (0, 1)
probability.__name__ = 'a number between 0 and 1'
json_object = _flag_type('dict')       # argparse type: a JSON object, e.g. '{"num_block": 24}'
json_object.__name__ = 'JSON object'

# %%
test_eq((probability('0.05'), json_object('{"num_block": 2}')), (0.05, {'num_block': 2}))
for bad in ('0', '1', '1.5', '-0.5', 'nan', 'inf', 'x'): test_fail(lambda: probability(bad), contains=repr(bad))
test_fail(lambda: json_object('[1, 2]'), contains='expected a JSON object')


# %% [markdown]
# Help that teaches: every command's `--help` keeps the line breaks of its description and its epilog (the
# examples stay one per line), and `examples` writes that epilog the same way everywhere — what each example does,
# then the command.

# %%
#| export
class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    "argparse help that keeps the description's and epilog's line breaks, with room for long flag names."
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 30, width: int | None = None):
        super().__init__(prog, indent_increment, max_help_position, width or min(110, max(60, _columns())))


def _columns() -> int:
    import shutil
    return shutil.get_terminal_size((100, 24)).columns


def examples(*items: tuple[str, str],  # (what it does, the command line)
             note: str = '',  # a paragraph before the examples
            ) -> str:  # an argparse epilog (use with HelpFormatter)
    "An epilog listing examples: what each does, then the command, indented."
    lines = [textwrap.fill(note, 100), ''] if note else []
    lines.append('examples:')
    for what, cmd in items: lines += [f'  # {what}', f'  {cmd}']
    return '\n'.join(lines)


# %%
ap = argparse.ArgumentParser(prog='blindsr_x', formatter_class=HelpFormatter,
                             epilog=examples(('score a folder', 'blindsr_x PRED GT'), note='Exit status 0 or 2.'))
test_eq(ap.format_help().endswith('examples:\n  # score a folder\n  blindsr_x PRED GT\n'), True)


# %% [markdown]
# A figure a command saved (`--plot`, `demo.png`) may be replaced by its rerun, but a photo, or another program's
# figure, that happens to carry the same name may not. A command stamps its pictures with its name in the PNG's
# `Software` text (`fig.savefig(path, metadata={'Software': 'blindsr_demo …'})`), and that is how it recognises them:
# matplotlib's own stamp (`Software: Matplotlib …`) is on every figure anyone saves, so it proves nothing.

# %%
#| export
def png_made_by(path: PathLike,  # an existing output file
                software: str,  # the start of the `Software` text the command writes, e.g. 'blindsr_demo'
               ) -> bool:
    "Is `path` a PNG whose `Software` text says `software` drew it (a command's own picture, which its rerun may replace)?"
    from PIL import Image
    try:
        with Image.open(path) as im: return im.format == 'PNG' and str(im.info.get('Software', '')).startswith(software)
    except Exception: return False


# %%
#| hide
Figure(figsize=(1, 1)).savefig(tmp/'ours.png', metadata={'Software': 'blindsr_x (matplotlib)'})
Figure(figsize=(1, 1)).savefig(tmp/'fig.png')
Image.new('RGB', (4, 4)).save(tmp/'photo.png')
test_eq([png_made_by(tmp/f, 'blindsr_x') for f in ('ours.png', 'fig.png', 'photo.png', 'nope.png')], [True, False, False, False])

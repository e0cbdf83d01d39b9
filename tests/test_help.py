"""`--help` that explains (issue 17.1): every blindsr_* command's help runs and exits 0, every flag has a help text that
gives its default (and its choices, where argparse does not list them), flags sit in argument groups, and the help ends
with real examples of the command.

The parsers are inspected as objects: each command exposes a function that builds its ArgumentParser (COMMANDS).
To add a command, add its name and that function below; `test_every_command_is_covered` fails for a console script in
settings.ini that is in neither COMMANDS nor PENDING."""
from __future__ import annotations

import argparse
import configparser
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

# console script -> 'module:function' building its argparse.ArgumentParser
COMMANDS = {
    # the data commands
    'blindsr_degrade': 'blindsr.lqset:degrade_parser',
    'blindsr_compare_lq': 'blindsr.compare_lq:compare_lq_parser',
    'blindsr_evaluate': 'blindsr.metrics:evaluate_parser',
    'blindsr_restore': 'blindsr.inference:restore_parser',
    'blindsr_val': 'blindsr.inference:val_parser',
    'blindsr_submit': 'blindsr.submission:submit_parser',
    'blindsr_demo': 'blindsr.demo:demo_parser',
    # the training commands
    'blindsr_train': 'blindsr.train:config_parser',
    'blindsr_bench': 'blindsr.bench:bench_parser',
    'blindsr_kaggle': 'blindsr.kaggle_client:kaggle_parser',
    'blindsr_colab': 'blindsr.kaggle_build:colab_parser',
}

PENDING: set[str] = set()   # commands not yet held to these rules

ROOT = Path(__file__).resolve().parent.parent


def console_scripts() -> dict[str, str]:
    "console script -> 'module:function' from settings.ini."
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(ROOT / 'settings.ini')
    return dict(e.split('=', 1) for e in cfg['DEFAULT']['console_scripts'].split())


def load(target: str):
    mod, fn = target.split(':')
    return getattr(importlib.import_module(mod), fn)


def parsers(ap: argparse.ArgumentParser, name: str):
    "(name, parser) for `ap` and, recursively, each of its subcommands."
    yield name, ap
    for act in ap._actions:
        if isinstance(act, argparse._SubParsersAction):
            for sub, sp in act.choices.items(): yield from parsers(sp, f'{name} {sub}')


def flag_problems(ap: argparse.ArgumentParser, name: str) -> list[str]:
    "Every way a parser's flags fall short: no help, no default stated, hidden choices, no argument group."
    probs = []
    in_group = {id(a) for g in ap._action_groups if g.title not in ('positional arguments', 'options', 'optional arguments')
                for a in g._group_actions}
    for act in ap._actions:
        if isinstance(act, (argparse._HelpAction, argparse._VersionAction)): continue
        label = '/'.join(act.option_strings) or act.dest
        text = act.help or ''
        if isinstance(act, argparse._SubParsersAction):             # each subcommand: a one-line help in the list
            probs += [f'{name} {c.dest}: the subcommand has no help' for c in act._choices_actions if not (c.help or '').strip()]
            continue
        if not text.strip() or text == argparse.SUPPRESS: probs.append(f'{name} {label}: no help text'); continue
        if act.option_strings and 'default' not in text.lower(): probs.append(f'{name} {label}: the help does not give the default')
        if act.choices is not None and act.metavar is not None:      # argparse shows {a,b,c} only without a metavar
            hidden = [str(c) for c in act.choices if str(c) not in text]
            if hidden: probs.append(f'{name} {label}: the help does not list the choices {hidden}')
        if id(act) not in in_group: probs.append(f'{name} {label}: not in an argument group')
    return probs


@pytest.fixture(scope='module', params=sorted(COMMANDS))
def command(request):
    return request.param, load(COMMANDS[request.param])()


def test_every_command_is_covered():
    missing = set(console_scripts()) - set(COMMANDS) - PENDING
    assert not missing, f'console scripts with no --help test: {sorted(missing)}; add them to COMMANDS'
    assert not set(COMMANDS) & PENDING, f'{sorted(set(COMMANDS) & PENDING)} are covered now: remove them from PENDING'


def test_help_runs_and_exits_0(command, capsys):
    "The console script's own function, as `NAME --help` calls it."
    name, _ = command
    with pytest.raises(SystemExit) as e: load(console_scripts()[name])(['--help'])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith('usage:') and 'examples:' in out, out[:500]


def test_every_flag_is_explained(command):
    name, ap = command
    probs = [p for n, sp in parsers(ap, name) for p in flag_problems(sp, n)]
    assert not probs, '\n'.join(probs)


def test_help_ends_with_real_examples(command):
    "The epilog lists examples, each a line that runs the command (every subcommand has one)."
    name, ap = command
    subs = [n for n, _ in parsers(ap, name)]
    text = '\n'.join((sp.epilog or '') for _, sp in parsers(ap, name))
    assert 'examples:' in (ap.epilog or ''), f'{name}: the help has no examples'
    lines = [l.strip() for l in text.splitlines()]
    for sub in subs:
        assert any(l.startswith(sub + ' ') or l == sub for l in lines), f'no example runs `{sub}`'
    assert ap.format_help().rstrip().endswith(ap.epilog.rstrip().splitlines()[-1].strip()), 'the examples are not at the end'


def test_submit_help_from_the_console_script():
    "One real subprocess: the installed script prints the help and exits 0."
    exe = Path(sys.executable).parent / 'blindsr_submit'
    r = subprocess.run([str(exe) if exe.exists() else 'blindsr_submit', '--help'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and 'blindsr_submit data/test/LQ submission.zip' in r.stdout, r.stderr


def test_train_help_from_the_console_script():
    "One real subprocess: the installed script prints the help, every TrainConfig field a flag in its group, and exits 0."
    exe = Path(sys.executable).parent / 'blindsr_train'
    r = subprocess.run([str(exe) if exe.exists() else 'blindsr_train', '--help'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and 'blindsr_train --train-hq data/train/GT' in r.stdout, r.stderr
    for group in ('data:', 'model:', 'optimisation:', 'schedule and budget:', 'GAN:', 'output:'):
        assert f'\n{group}\n' in r.stdout, group

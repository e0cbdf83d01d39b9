"""Shared fixtures: the repository root and, when present, the FFHQ sample faces beside the checkout."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def find_ffhq200() -> Path | None:
    "../shared/data/ffhq200 (or $BLINDSR_FFHQ200) if it exists; these faces are never part of the repo."
    env = os.environ.get('BLINDSR_FFHQ200')
    for cand in ([Path(env)] if env else []) + [ROOT.parent / 'shared' / 'data' / 'ffhq200']:
        if (cand / 'gt').is_dir(): return cand
    return None


@pytest.fixture(scope='session')
def root() -> Path:
    return ROOT


@pytest.fixture(scope='session')
def ffhq200() -> Path:
    d = find_ffhq200()
    if d is None: pytest.skip('../shared/data/ffhq200 is not present on this machine')
    return d

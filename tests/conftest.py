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


@pytest.fixture(scope='session')
def tiny_weights(tmp_path_factory) -> Path:
    "A tiny MSRResNet (8 features, 1 block), random weights, stored in fp16 as the shipped file is: for the commands that restore."
    import torch
    from blindsr.checkpoint import export_weights
    from blindsr.models import build_generator
    torch.manual_seed(0)
    net = build_generator('msrresnet', num_feat=8, num_block=1)
    return export_weights(tmp_path_factory.mktemp('w') / 'tiny.pt', net, 'msrresnet', {'num_feat': 8, 'num_block': 1},
                          {'val_psnr': 12.34, 'step': 10}, half=True)

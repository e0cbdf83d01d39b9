# %% [markdown]
# # Checkpoints and weights
# > The one owner of blindsr's files of weights: their names and formats, atomic writes, safe reads, the generator held by any accepted file (ours, BasicSR's, a bare state dict), the "same architecture?" check, and the record of how a model was trained.

# %%
#| default_exp checkpoint

# %%
#| export
from __future__ import annotations

import errno
import math
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

import blindsr
from blindsr.core import PathLike
from blindsr.device import usable_device
from blindsr.models import GENERATORS, build_generator, check_generator

# %%
#| hide
import tempfile
import warnings
from unittest import mock

from fastcore.test import test_eq, test_fail, test_close

tmp = Path(tempfile.mkdtemp())

def tiny_net(seed=0, **kw):
    "A tiny MSRResNet (8 features, 1 block) with random weights."
    torch.manual_seed(seed)
    return build_generator('msrresnet', **{'num_feat': 8, 'num_block': 1, **kw}).eval().requires_grad_(False)


# %% [markdown]
# The trainer writes these files, inference and the Kaggle kernel read them, and a user may bring one from BasicSR.
# Every write and every read goes through this notebook, so the format is defined once.
#
# ## The files -
#
# | file | written by | keys | which weights a reader takes |
# |---|---|---|---|
# | weights (`best.pt`, `final.pt`, the shipped `blindsr_default.pt`) | `export_weights` | `format: blindsr-weights`, `arch`, `arch_kwargs`, `params` (fp32 or fp16), `meta` | `params` (already the EMA when training had one) |
# | training checkpoint (`last.ckpt`) | the trainer, through `save_checkpoint` | `format: blindsr-checkpoint`, `arch`, `arch_kwargs`, `params`, `params_ema` (None without EMA), optimiser and scaler states, `step`, `elapsed`, `best_psnr`, `cfg` … | `params_ema` if present, else `params` |
# | BasicSR (`net_g_300000.pth`, the organisers' baseline) | BasicSR | `params`, `params_ema` | `params_ema` if present, else `params`; architecture from the caller (default `msrresnet`) |
# | a bare state dict (`torch.save(model.state_dict())`) | anyone | the network's own keys | itself; architecture from the caller |
#
# Every file is read with `torch.load(weights_only=True)` (no code runs from a file), fp16 weights load into a
# float32 model, and every failure names the file and says what to do.

# %%
#| export
WEIGHTS_FORMAT = 'blindsr-weights'        # `format` of a weights file (export_weights)
CHECKPOINT_FORMAT = 'blindsr-checkpoint'  # `format` of a training checkpoint (save_checkpoint)
LAST_CHECKPOINT = 'last.ckpt'             # the trainer's checkpoint in its out_dir (what a rerun resumes)
PREVIOUS_CHECKPOINT = 'previous.ckpt'     # the checkpoint before it, kept whole while the next one is written
BEST_WEIGHTS = 'best.pt'                  # the trainer's best validated weights
FINAL_WEIGHTS = 'final.pt'                # the trainer's weights at the end of the run

WEIGHTS_DIR = Path(blindsr.__file__).resolve().parent / 'weights'
DEFAULT_WEIGHTS = WEIGHTS_DIR / 'blindsr_default.pt'     # pretrained weights shipped with the package
DEFAULT_RECORD = WEIGHTS_DIR / 'blindsr_default.json'    # how they were trained, human-readable


class CheckpointError(RuntimeError):
    "A checkpoint or weights file that cannot be used; the message names it and says what to do."


class UnreadableCheckpointError(CheckpointError):
    "A file that does not load at all (empty, cut short, not a torch file); the message says which."


class DiskFullError(OSError):
    "The disk filled up while a file was written; the file it was to replace is left whole. The message says what to free."
    def __init__(self, msg: str):
        super().__init__(errno.ENOSPC, msg)

    def __str__(self) -> str: return self.strerror


class WeightsNotFoundError(FileNotFoundError):
    "No weights file where one was expected; the message says what to pass instead."


def default_weights() -> Path:
    "The pretrained weights shipped in the package, or WeightsNotFoundError saying what to do without them."
    if DEFAULT_WEIGHTS.is_file(): return DEFAULT_WEIGHTS
    raise WeightsNotFoundError(
        f'this installation of blindsr has no pretrained weights ({DEFAULT_WEIGHTS} is missing; blindsr never '
        'ships stand-in weights). Pass a generator you trained instead, e.g. --weights runs/blindsr/best.pt '
        '(blindsr_train writes best.pt, final.pt and last.ckpt; --ckpt is the same flag), or a BasicSR net_g_*.pth.')


# %%
test_eq(DEFAULT_WEIGHTS.name, 'blindsr_default.pt')
if not DEFAULT_WEIGHTS.exists(): test_fail(default_weights, contains='never ships stand-in weights')


# %% [markdown]
# ## Writing: atomic, or not at all -
#
# A checkpoint is written to a temporary file beside its destination, flushed to the disk, and renamed over the
# old one: a crash or a kill in the middle leaves the previous file whole, never half a file under the real name.
# A training checkpoint keeps one more: the file it replaces stays as `previous` (a hard link made before the
# rename, so at every moment both names hold a whole checkpoint; a rename where links are not allowed), and a
# reader falls back to it when the newer one turns out unreadable. A full disk is an error that says how much the
# file needed, how much is free, and that the old file is untouched.

# %%
#| export
def _tensor_bytes(obj) -> int:
    "Bytes of the tensors in a nested dict/list: roughly what torch.save writes."
    if isinstance(obj, torch.Tensor): return obj.numel() * obj.element_size()
    if isinstance(obj, Mapping): return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)): return sum(_tensor_bytes(v) for v in obj)
    return 0


def _keep_as(path: Path, previous: Path) -> None:
    "Make `previous` the file now at `path` (a hard link, atomically renamed into place; else a rename)."
    link = previous.with_name(f'.{previous.name}.{os.getpid()}.tmp')
    try:
        if link.exists(): link.unlink()
        os.link(path, link)
        os.replace(link, previous)
    except OSError:
        if link.exists(): link.unlink()
        os.replace(path, previous)


def _sync_folder(folder: Path) -> None:
    "fsync a folder, so that renames in it survive a power cut (where the platform allows it)."
    try:
        fd = os.open(folder, os.O_RDONLY)
        try: os.fsync(fd)
        finally: os.close(fd)
    except OSError: pass


def atomic_save(obj: Any,  # what torch.save can write (tensors, dicts, numbers, strings)
                path: PathLike,  # the destination; its folder is created
                previous: PathLike | None = None,  # keep the file `path` replaces under this name (None: drop it)
               ) -> Path:
    "torch.save to a temporary file beside `path`, fsync, then rename over it (the old file survives any failure)."
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    try:
        with open(tmp_path, 'wb') as f:
            torch.save(obj, f)
            f.flush(); os.fsync(f.fileno())
        if previous is not None and path.exists(): _keep_as(path, Path(previous))
        os.replace(tmp_path, path)
        _sync_folder(path.parent)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT): raise
        if tmp_path.exists(): tmp_path.unlink()
        free = shutil.disk_usage(path.parent).free
        raise DiskFullError(f'no space left on the disk of {path.parent} to write {path.name} (it needs about '
                            f'{_tensor_bytes(obj) / 1e6:.0f} MB, {free / 1e6:.0f} MB are free); '
                            f'{path.name if path.exists() else "nothing"} was left as it was. Free space on that disk '
                            '(e.g. old runs and their .ckpt / .pt files) and try again') from e
    finally:
        if tmp_path.exists(): tmp_path.unlink()
    return path


# %%
atomic_save({'params': {'w': torch.ones(2)}}, tmp/'a'/'x.pt')
test_eq(torch.load(tmp/'a'/'x.pt', weights_only=True)['params']['w'], torch.ones(2))
test_eq(sorted(p.name for p in (tmp/'a').iterdir()), ['x.pt'])               # no temporary file left behind
test_fail(lambda: atomic_save({'x': lambda: 0}, tmp/'a'/'x.pt'))             # a failed write (a lambda does not pickle) …
test_eq(torch.load(tmp/'a'/'x.pt', weights_only=True)['params']['w'], torch.ones(2))   # … leaves the old file
test_eq(sorted(p.name for p in (tmp/'a').iterdir()), ['x.pt'])

# %% [markdown]
# With `previous`, the replaced file is kept; a full disk (simulated: the write raises `ENOSPC` half-way) leaves
# both files as they were and says what to free:

# %%
atomic_save({'params': {'w': torch.full((2,), 2.0)}}, tmp/'a'/'x.pt', previous=tmp/'a'/'x.prev')
test_eq([torch.load(tmp/'a'/n, weights_only=True)['params']['w'][0].item() for n in ('x.pt', 'x.prev')], [2.0, 1.0])
def full_disk(obj, f):
    f.write(b'half a checkpoint'); raise OSError(errno.ENOSPC, 'No space left on device')
with mock.patch('torch.save', full_disk):
    test_fail(lambda: atomic_save({'params': {'w': torch.zeros(10**6)}}, tmp/'a'/'x.pt', previous=tmp/'a'/'x.prev'),
              contains='no space left on the disk of')
    try: atomic_save({'params': {'w': torch.zeros(10**6)}}, tmp/'a'/'x.pt')
    except DiskFullError as e: print(e); assert 'needs about 4 MB' in str(e) and 'x.pt was left as it was' in str(e)
test_eq([torch.load(tmp/'a'/n, weights_only=True)['params']['w'][0].item() for n in ('x.pt', 'x.prev')], [2.0, 1.0])
test_eq(sorted(p.name for p in (tmp/'a').iterdir()), ['x.prev', 'x.pt'])    # no temporary file left behind


# %% [markdown]
# ## Reading: any accepted file -
#
# `load_checkpoint` reads a file safely and checks that it holds generator weights in one of the accepted layouts;
# a bare state dict (every value a tensor) is read as `{'params': state_dict}`, so it is handled like a BasicSR
# file without EMA.

# %%
#| export
def _is_state_dict(obj) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def unreadable_reason(path: Path,  # a file torch.load failed on
                      e: Exception,  # what it raised
                     ) -> str:
    "What is wrong with a file torch cannot load, as far as its bytes tell: empty, cut short, not a torch file, …"
    size = path.stat().st_size
    if size == 0: return 'it is empty (0 bytes), as a save or a copy that never wrote anything leaves it'
    with open(path, 'rb') as f: head = f.read(8)
    msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
    if head.startswith(b'PK\x03\x04'):
        if not zipfile.is_zipfile(path):
            return (f'it is cut short: a torch file of {size:,} bytes without its end, as a crash during the save or '
                    'an interrupted copy leaves it')
        if 'weights only' in str(e).lower():
            return 'it holds Python objects other than tensors and plain values, which blindsr does not load (weights_only)'
        return f'a torch file that does not load ({type(e).__name__}: {msg})'
    if head[:1] == b'\x80':
        return f'an old-style torch (pickle) file that does not load, probably cut short ({type(e).__name__}: {msg})'
    return f'it is not a torch file (it begins with {head!r}; {type(e).__name__})'


def load_checkpoint(path: PathLike,  # a weights file, a training checkpoint, a BasicSR .pth or a bare state dict
                    map_location='cpu',
                   ) -> dict:  # the file's dict; a bare state dict comes back as {'params': state_dict}
    "Load a checkpoint or weights file safely (weights_only); a missing or unusable file raises CheckpointError naming it."
    path = Path(path)
    if path.is_dir(): raise CheckpointError(f'{path} is a folder, not a checkpoint or weights file')
    if not path.is_file(): raise CheckpointError(f'checkpoint not found: {path}')
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise UnreadableCheckpointError(f'{path} is not a readable checkpoint: {unreadable_reason(path, e)}') from e
    if _is_state_dict(ck): return {'params': ck}
    if not isinstance(ck, dict) or not any(isinstance(ck.get(k), Mapping) for k in ('params', 'params_ema')):
        keys = ', '.join(map(str, ck))[:200] if isinstance(ck, dict) else type(ck).__name__
        raise CheckpointError(f'{path} holds no generator weights (expected keys params / params_ema, or a bare '
                              f'state dict; found {keys})')
    return ck


# %% [markdown]
# BasicSR's loader, with its two conveniences: DataParallel's `module.` prefix is stripped, and Real-ESRGAN's
# old-style spectral-norm keys (`weight_orig`, `weight_u`, `weight_v`) are renamed to the parametrization layout
# our discriminator uses. Loading is strict, and a mismatch names the keys.

# %%
#| export
def _spectral_norm_key(key: str, target_keys: set[str]) -> str:
    "Map an old `torch.nn.utils.spectral_norm` key to the parametrizations layout when the model has that key."
    for old, new in (('.weight_orig', '.parametrizations.weight.original'),
                     ('.weight_u', '.parametrizations.weight.0._u'),
                     ('.weight_v', '.parametrizations.weight.0._v')):
        if key.endswith(old) and key not in target_keys:
            cand = key[:-len(old)] + new
            if cand in target_keys: return cand
    return key


def load_basicsr_weights(model: nn.Module,  # the network to fill, e.g. MSRResNet()
                         path_or_dict: PathLike | Mapping,  # a .pth path, a loaded checkpoint, or a state dict
                         key: str | None = None,  # 'params_ema', 'params', or None: params_ema, else params, else bare
                        ) -> nn.Module:  # `model`, with the weights loaded (strict)
    """Load a BasicSR / Real-ESRGAN checkpoint into `model` with strict key matching.

    Files are read with `torch.load(..., map_location='cpu', weights_only=True)`. Missing or unexpected keys and
    shape mismatches raise ValueError listing them."""
    src = str(path_or_dict) if not isinstance(path_or_dict, Mapping) else '<dict>'
    ckpt = (torch.load(path_or_dict, map_location='cpu', weights_only=True)
            if not isinstance(path_or_dict, Mapping) else path_or_dict)
    if key is not None:
        if key not in ckpt:
            raise KeyError(f'{src} has no {key!r} entry; its top-level keys are: {", ".join(map(str, ckpt))[:300]}')
        sd = ckpt[key]
    else:
        sd = next((ckpt[k] for k in ('params_ema', 'params') if k in ckpt), ckpt)
    target = model.state_dict()
    tkeys = set(target)
    sd = {_spectral_norm_key(k[7:] if k.startswith('module.') else k, tkeys): v for k, v in sd.items()}
    missing = [k for k in target if k not in sd]
    unexpected = [k for k in sd if k not in tkeys]
    shapes = [f'{k}: checkpoint {tuple(v.shape)}, model {tuple(target[k].shape)}'
              for k, v in sd.items() if k in tkeys and tuple(v.shape) != tuple(target[k].shape)]
    if missing or unexpected or shapes:
        def short(xs, n=8): return ', '.join(xs[:n]) + (f' … ({len(xs)} in all)' if len(xs) > n else '')
        parts = ([f'missing keys: {short(missing)}'] if missing else []) + \
                ([f'unexpected keys: {short(unexpected)}'] if unexpected else []) + \
                ([f'shape mismatches: {short(shapes, 4)}'] if shapes else [])
        raise ValueError(f'{src} does not fit {type(model).__name__}: ' + '; '.join(parts) +
                         '. Build the model with the num_feat/num_block/upscale the checkpoint was trained with.')
    model.load_state_dict(sd, strict=True)
    return model


# %% [markdown]
# The test builds a checkpoint from BasicSR's key layout written out by hand — not from our model — saves it the
# way BasicSR does, and loads it:

# %%
from blindsr.models import MSRResNet, UNetDiscriminatorSN

def basicsr_msrresnet_shapes(nf=8, nb=2, cin=3, cout=3):
    "Key -> shape of BasicSR's MSRResNet (x4), written from BasicSR's module names."
    s = {'conv_first.weight': (nf, cin, 3, 3), 'conv_first.bias': (nf,)}
    for i in range(nb):
        for c in ('conv1', 'conv2'): s[f'body.{i}.{c}.weight'], s[f'body.{i}.{c}.bias'] = (nf, nf, 3, 3), (nf,)
    for c in ('upconv1', 'upconv2'): s[f'{c}.weight'], s[f'{c}.bias'] = (4 * nf, nf, 3, 3), (4 * nf,)
    s['conv_hr.weight'], s['conv_hr.bias'] = (nf, nf, 3, 3), (nf,)
    s['conv_last.weight'], s['conv_last.bias'] = (cout, nf, 3, 3), (cout,)
    return s

shapes = basicsr_msrresnet_shapes()
g = torch.Generator().manual_seed(0)
sd_plain = {k: torch.randn(s, generator=g) for k, s in shapes.items()}
sd_ema = {k: torch.randn(s, generator=g) for k, s in shapes.items()}
torch.save({'params': sd_plain, 'params_ema': sd_ema}, tmp/'net_g_300000.pth')

net = load_basicsr_weights(MSRResNet(num_feat=8, num_block=2), tmp/'net_g_300000.pth')
for k, v in net.state_dict().items(): test_eq(v, sd_ema[k])               # params_ema first
net = load_basicsr_weights(MSRResNet(num_feat=8, num_block=2), tmp/'net_g_300000.pth', key='params')
for k, v in net.state_dict().items(): test_eq(v, sd_plain[k])
torch.save({'params': sd_plain}, tmp/'net_g_noema.pth')
net = load_basicsr_weights(MSRResNet(num_feat=8, num_block=2), tmp/'net_g_noema.pth')
test_eq(net.state_dict()['conv_hr.weight'], sd_plain['conv_hr.weight'])
net = load_basicsr_weights(MSRResNet(num_feat=8, num_block=2), {'module.' + k: v for k, v in sd_plain.items()})
test_eq(net.state_dict()['conv_first.bias'], sd_plain['conv_first.bias'])                  # bare dict, DataParallel prefix

# %% [markdown]
# Mismatches say which keys and what to do:

# %%
test_fail(lambda: load_basicsr_weights(MSRResNet(num_feat=8, num_block=3), tmp/'net_g_300000.pth'),
          contains='missing keys: body.2.conv1.weight')
test_fail(lambda: load_basicsr_weights(MSRResNet(num_feat=8, num_block=1), tmp/'net_g_300000.pth'),
          contains='unexpected keys: body.1.conv1.weight')
test_fail(lambda: load_basicsr_weights(MSRResNet(num_feat=16, num_block=2), tmp/'net_g_300000.pth'),
          contains='conv_first.weight: checkpoint (8, 3, 3, 3), model (16, 3, 3, 3)')
test_fail(lambda: load_basicsr_weights(MSRResNet(num_feat=8, num_block=2), tmp/'net_g_noema.pth', key='params_ema'),
          contains="no 'params_ema' entry")

# %% [markdown]
# A Real-ESRGAN discriminator checkpoint (old `torch.nn.utils.spectral_norm` keys) loads into ours; in eval
# mode the normalised weight is W / (uᵀ W v) with the checkpoint's W, u, v:

# %%
sn_old = torch.nn.utils.spectral_norm
class OldUNetD(nn.Module):          # Real-ESRGAN's module layout, old spectral-norm API (test-only)
    def __init__(self, f=4):
        super().__init__()
        self.conv0 = nn.Conv2d(3, f, 3, 1, 1)
        chans = [(f, 2 * f, 4), (2 * f, 4 * f, 4), (4 * f, 8 * f, 4), (8 * f, 4 * f, 3), (4 * f, 2 * f, 3),
                 (2 * f, f, 3), (f, f, 3), (f, f, 3)]
        for i, (ci, co, k) in enumerate(chans, 1):
            setattr(self, f'conv{i}', sn_old(nn.Conv2d(ci, co, k, 2 if k == 4 else 1, 1, bias=False)))
        self.conv9 = nn.Conv2d(f, 1, 3, 1, 1)
with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    old_sd = OldUNetD().state_dict()
test_eq('conv3.weight_orig' in old_sd, True)
d = load_basicsr_weights(UNetDiscriminatorSN(num_feat=4), {'params': old_sd}).eval()
W, u, v = old_sd['conv3.weight_orig'], old_sd['conv3.weight_u'], old_sd['conv3.weight_v']
test_close(d.conv3.weight.detach(), W / torch.dot(u, W.flatten(1) @ v), eps=1e-6)


# %% [markdown]
# ## The same architecture? -
#
# Resuming a run, continuing a Kaggle kernel's previous version and loading weights into a generator that a
# caller names all ask one question of a file: does it hold this generator, built with these arguments? One check,
# one message, which says what the file holds and what to do.

# %%
#| export
def check_same_arch(path: PathLike,  # the file, for the message
                    ck: Mapping,  # its loaded dict (load_checkpoint)
                    arch: str,  # the generator the caller expects
                    arch_kwargs: Mapping | None,  # and its constructor overrides (None: not checked)
                    fix: str = 'pass the architecture the file holds, or another file',  # what to do about a mismatch
                   ) -> None:
    "Raise CheckpointError when a file that names its generator holds another one than (arch, arch_kwargs)."
    name, kw = ck.get('arch'), dict(ck.get('arch_kwargs') or {})
    if name is None: return                               # BasicSR / bare files do not say; loading will tell
    if name != arch or (arch_kwargs is not None and kw != dict(arch_kwargs)):
        want = f'{arch} {dict(arch_kwargs)}' if arch_kwargs is not None else arch
        raise CheckpointError(f'{path} holds the generator {name} {kw}, not {want}; {fix}')


# %%
ck_ = {'arch': 'msrresnet', 'arch_kwargs': {'num_block': 24}}
check_same_arch('x.ckpt', ck_, 'msrresnet', {'num_block': 24})
check_same_arch('x.ckpt', ck_, 'msrresnet', None)
check_same_arch('net_g.pth', {'params': {}}, 'plksr', {})                               # BasicSR files name nothing
test_fail(lambda: check_same_arch('x.ckpt', ck_, 'msrresnet', {}), contains="x.ckpt holds the generator msrresnet {'num_block': 24}, not msrresnet {}")
test_fail(lambda: check_same_arch('x.ckpt', ck_, 'plksr', None, fix='use another out_dir'), contains='not plksr; use another out_dir')


# %% [markdown]
# ## The generator in a file -
#
# `load_generator` builds the network a file describes (or the one the caller names, for files that do not say)
# and fills it, strictly. `weights_info` says what a file holds without building anything.

# %%
#| export
def _file_kind(ck: Mapping) -> str:
    return {WEIGHTS_FORMAT: 'blindsr weights', CHECKPOINT_FORMAT: 'blindsr training checkpoint'}.get(
        ck.get('format'), 'BasicSR checkpoint or state dict')


def _select_params(ck: Mapping, path: Path, use_ema: bool) -> str:
    "The key of the state dict to load from a checkpoint dict."
    if ck.get('format') == WEIGHTS_FORMAT: return 'params'
    if use_ema and ck.get('params_ema') is not None: return 'params_ema'
    if ck.get('params') is not None: return 'params'
    raise CheckpointError(f'{path} has no plain weights (params); it holds only params_ema: load it with use_ema=True')


def check_finite(path: PathLike,  # the file the weights came from, for the message
                 sd: Mapping,  # a state dict
                ) -> None:
    "Refuse weights holding NaN or inf: a diverged run's, which would restore every face to black."
    bad = [k for k, v in sd.items() if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f'{path} holds NaN/inf weights ({bad[0]}{f" and {len(bad) - 1} more" if len(bad) > 1 else ""}): '
                              'the run diverged; use best.pt or an earlier checkpoint')


def load_generator(path: PathLike,  # blindsr weights (.pt), a training checkpoint (.ckpt), a BasicSR .pth or a bare state dict
                   arch: str | None = None,  # for files that do not name one: a key of GENERATORS; default msrresnet
                   arch_kwargs: dict | None = None,  # constructor overrides, for files that do not carry them
                   device: str | torch.device | None = None,  # None: the best usable device (see blindsr.device.usable_device)
                   use_ema: bool = True,  # take a checkpoint's EMA weights (params_ema) when it has them
                  ) -> nn.Module:  # the generator, float32, in eval mode, on `device`
    "Build the generator a weights or checkpoint file describes and load its weights (strict, weights_only)."
    path = Path(path)
    ck = load_checkpoint(path)                        # missing, unreadable or weightless files: CheckpointError
    if ck.get('arch') is not None:                    # our files name their architecture
        name, kw = ck['arch'], dict(ck.get('arch_kwargs') or {})
        check_same_arch(path, ck, arch or name, arch_kwargs, 'leave out arch and arch_kwargs (the file names them)')
    else:
        name, kw = arch or 'msrresnet', dict(arch_kwargs or {})
    if name not in GENERATORS:
        raise CheckpointError(f'{path} holds a generator named {name!r}, which this blindsr does not know '
                              f'({", ".join(GENERATORS)}); update blindsr or pass arch=')
    key = _select_params(ck, path, use_ema)
    if ck.get('arch') is None:                        # the caller's arch_kwargs (--arch-kwargs): typed, built on meta, capped
        try: check_generator(name, kw, flag='arch_kwargs (--arch-kwargs)')
        except ValueError as e: raise CheckpointError(f'{e} (for {path})') from None
    check_finite(path, ck[key])
    try: model = build_generator(name, **kw)
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f'cannot build {name} with {kw} for {path}: {e}') from e
    try:
        load_basicsr_weights(model, {key: ck[key]}, key=key)
    except (KeyError, ValueError) as e:
        hint = '' if ck.get('arch') else ' Pass the architecture it was trained with (--arch, --arch-kwargs).'
        raise CheckpointError(f'{path} ({_file_kind(ck)}, {key}) {str(e).removeprefix("<dict> ")}{hint}') from e
    return model.float().eval().requires_grad_(False).to(usable_device(device))


def weights_info(path: PathLike) -> dict:
    "What a weights/checkpoint file holds: kind, arch, arch_kwargs, parameter count and the training record (meta)."
    path = Path(path)
    ck = load_checkpoint(path)
    sd = ck.get('params') if ck.get('params') is not None else ck['params_ema']
    return {'path': str(path), 'kind': _file_kind(ck), 'arch': ck.get('arch'), 'arch_kwargs': ck.get('arch_kwargs'),
            'params': sum(v.numel() for v in sd.values()), 'dtype': str(next(iter(sd.values())).dtype).replace('torch.', ''),
            'meta': ck.get('meta') or ({k: ck[k] for k in ('step', 'best_psnr') if k in ck} if ck.get('format') else {})}


# %% [markdown]
# `export_weights` writes the small file inference needs: the generator's weights (fp16 on request: half the size
# and PSNR-neutral for these models), its architecture, and `meta`, the record of how it was trained.

# %%
#| export
def export_weights(path: PathLike,  # e.g. out_dir/best.pt
                   model: nn.Module,  # the generator (EMA weights, normally)
                   arch: str,  # its name in GENERATORS
                   arch_kwargs: dict,  # its constructor overrides
                   meta: dict | None = None,  # how it was trained, scores, … (see TrainingRecord)
                   half: bool = False,  # store fp16 (half the size; PSNR-neutral for these models)
                  ) -> Path:
    "Write the weights file inference loads: {'format', 'arch', 'arch_kwargs', 'params', 'meta'}."
    sd = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone() for k, v in model.state_dict().items()}
    return atomic_save({'format': WEIGHTS_FORMAT, 'arch': arch, 'arch_kwargs': dict(arch_kwargs), 'params': sd,
                        'meta': meta or {}}, path)


# %% [markdown]
# A weights file stored in fp16 (as the shipped one is) loads into a float32 model holding the same values:

# %%
net = tiny_net()
export_weights(tmp/'w16.pt', net, 'msrresnet', {'num_feat': 8, 'num_block': 1}, {'val_psnr': 20.0}, half=True)
g = load_generator(tmp/'w16.pt', device='cpu')
test_eq(next(g.parameters()).dtype, torch.float32); test_eq(g.training, False)
for k, v in g.state_dict().items(): test_eq(v, net.state_dict()[k].half().float())
info = weights_info(tmp/'w16.pt')
test_eq((info['kind'], info['arch'], info['dtype'], info['params'], info['meta']),
        ('blindsr weights', 'msrresnet', 'float16', sum(p.numel() for p in net.parameters()), {'val_psnr': 20.0}))

# %% [markdown]
# A training checkpoint gives its EMA weights unless asked otherwise, and its plain weights when EMA was off; a
# BasicSR file and a bare state dict need the architecture from the caller:

# %%
ema_net = tiny_net(seed=1)
ckpt = {'format': CHECKPOINT_FORMAT, 'arch': 'msrresnet', 'arch_kwargs': {'num_feat': 8, 'num_block': 1},
        'params': net.state_dict(), 'params_ema': ema_net.state_dict(), 'step': 7, 'best_psnr': 21.5}
atomic_save(ckpt, tmp/'last.ckpt')
test_eq(load_generator(tmp/'last.ckpt', device='cpu').conv_first.weight, ema_net.conv_first.weight)
test_eq(load_generator(tmp/'last.ckpt', device='cpu', use_ema=False).conv_first.weight, net.conv_first.weight)
atomic_save({**ckpt, 'params_ema': None}, tmp/'noema.ckpt')
test_eq(load_generator(tmp/'noema.ckpt', device='cpu').conv_first.weight, net.conv_first.weight)
test_eq(weights_info(tmp/'last.ckpt')['meta'], {'step': 7, 'best_psnr': 21.5})
torch.save({'params': net.state_dict(), 'params_ema': ema_net.state_dict()}, tmp/'net_g_1000.pth')
b = load_generator(tmp/'net_g_1000.pth', arch_kwargs={'num_feat': 8, 'num_block': 1}, device='cpu')
test_eq(b.conv_first.weight, ema_net.conv_first.weight)
test_eq(weights_info(tmp/'net_g_1000.pth')['kind'], 'BasicSR checkpoint or state dict')
torch.save(net.state_dict(), tmp/'bare.pth')                                          # torch.save(model.state_dict())
test_eq(load_generator(tmp/'bare.pth', arch_kwargs={'num_feat': 8, 'num_block': 1}, device='cpu').conv_first.weight,
        net.conv_first.weight)

# %% [markdown]
# Wrong architecture, missing, truncated, empty and foreign files all name themselves and say what to do:

# %%
test_fail(lambda: load_generator(tmp/'net_g_1000.pth', device='cpu'), contains='net_g_1000.pth (BasicSR checkpoint or state dict, params_ema) does not fit MSRResNet')
test_fail(lambda: load_generator(tmp/'net_g_1000.pth', device='cpu'), contains='--arch-kwargs')
test_fail(lambda: load_generator(tmp/'w16.pt', arch='plksr'), contains='not plksr; leave out arch')
test_fail(lambda: load_generator(tmp/'net_g_1000.pth', arch_kwargs={'num_feat': -8}), contains="msrresnet with arch_kwargs (--arch-kwargs) {'num_feat': -8} cannot be built")
test_fail(lambda: load_generator(tmp/'net_g_1000.pth', arch_kwargs={'num_feat': 100_000, 'num_block': 1}),
          contains='--arch-kwargs')                                 # over the cap: refused before 360 GB are asked for
test_fail(lambda: load_generator(tmp/'net_g_1000.pth', arch_kwargs={'num_feat': 8.5, 'num_block': 1}), contains='must be int')
diverged = tiny_net(); diverged.conv_last.bias[0] = float('nan')            # what a diverged run leaves
export_weights(tmp/'nan.pt', diverged, 'msrresnet', {'num_feat': 8, 'num_block': 1})
test_fail(lambda: load_generator(tmp/'nan.pt', device='cpu'), contains='nan.pt holds NaN/inf weights (conv_last.bias): the run diverged')
test_fail(lambda: load_generator(tmp/'nope.pt'), contains='nope.pt')
test_fail(lambda: load_generator(tmp), contains='is a folder')
(tmp/'cut.pt').write_bytes((tmp/'w16.pt').read_bytes()[:300])
test_fail(lambda: load_generator(tmp/'cut.pt'), contains='cut.pt is not a readable checkpoint: it is cut short')
(tmp/'empty.pt').write_bytes(b'')
test_fail(lambda: load_generator(tmp/'empty.pt'), contains='it is empty (0 bytes)')
(tmp/'notes.pt').write_text('my notes')
test_fail(lambda: load_generator(tmp/'notes.pt'), contains="it is not a torch file (it begins with b'my notes'")
torch.save({'params': {'w': torch.ones(1)}, 'when': Path('x')}, tmp/'objects.pt')
test_fail(lambda: load_generator(tmp/'objects.pt'), contains='holds Python objects other than tensors')
torch.save({'weights': 1}, tmp/'other.pt')
test_fail(lambda: load_generator(tmp/'other.pt'), contains='other.pt holds no generator weights')

# %% [markdown]
# ## Training checkpoints -
#
# The trainer's `last.ckpt` holds everything a run needs to go on exactly where it stopped: the generator and its
# EMA, the optimisers and the gradient scaler (and the discriminator's, in the GAN phase), the step, the minutes
# trained, the best validation PSNR and `asdict(cfg)` — plain tensors and Python values, so it reads with
# `weights_only=True`. `save_checkpoint` writes it atomically, marked as a training checkpoint,
# and keeps the one it replaces as `previous.ckpt`; `read_training_checkpoint` reads one back for a resume,
# refusing a weights file (start from those with `init_from`) and a checkpoint of another generator;
# `latest_training_checkpoint` picks what a rerun resumes: `last.ckpt`, or `previous.ckpt` — saying so — when
# `last.ckpt` is missing or unreadable (a kill between two renames, a disk that lost the end of the file). Keys
# that older versions wrote and nothing needs any more are dropped on reading: `ema_updates`, the EMA's update
# count, was always equal to `step`.

# %%
#| export
RETIRED_CHECKPOINT_KEYS = ('ema_updates',)   # written by earlier versions, ignored on reading


def save_checkpoint(path: PathLike,  # e.g. out_dir/last.ckpt
                    state: Mapping,  # the training state: arch, arch_kwargs, params, params_ema, opt_g, scaler, step, …
                    previous: PathLike | None = None,  # keep the checkpoint it replaces here (default: PREVIOUS_CHECKPOINT beside it)
                    keep_previous: bool = True,  # False: replace the checkpoint (e.g. one of the same step) without keeping it
                   ) -> Path:
    "Write a training checkpoint atomically, marked with CHECKPOINT_FORMAT; the one it replaces becomes `previous`."
    path = Path(path)
    keep = (previous or path.with_name(PREVIOUS_CHECKPOINT)) if keep_previous else None
    return atomic_save({'format': CHECKPOINT_FORMAT, **state}, path, keep)


def read_training_checkpoint(path: PathLike,  # a training checkpoint (save_checkpoint)
                             arch: str,  # the generator this run trains …
                             arch_kwargs: Mapping,  # … and its constructor overrides
                             device: str | torch.device = 'cpu',  # where its tensors go
                            ) -> dict:  # the checkpoint's dict, retired keys dropped
    "Read a training checkpoint to resume from; CheckpointError if it is a weights file or holds another generator."
    ck = load_checkpoint(path, map_location=device)
    if ck.get('format') != CHECKPOINT_FORMAT:
        raise CheckpointError(f'{path} is a weights file, not a training checkpoint; use init_from= to start from it')
    check_same_arch(path, ck, arch, arch_kwargs, fix='use another out_dir, or start afresh in this one with overwrite=True (--overwrite)')
    for k in RETIRED_CHECKPOINT_KEYS: ck.pop(k, None)
    return ck


def latest_training_checkpoint(folder: PathLike,  # a run's folder (out_dir)
                               arch: str,  # the generator this run trains …
                               arch_kwargs: Mapping,  # … and its constructor overrides
                               device: str | torch.device = 'cpu',
                               log=print,  # says when it falls back to previous.ckpt
                               fix: str = 'resume from another checkpoint, or start afresh in another folder',
                              ) -> tuple[Path, dict] | None:  # (file, its dict), or None when the folder has neither
    "last.ckpt, or previous.ckpt when last.ckpt is missing or unreadable (said by `log`); CheckpointError if neither reads."
    folder = Path(folder)
    last, prev = folder / LAST_CHECKPOINT, folder / PREVIOUS_CHECKPOINT
    if not last.exists() and not prev.exists(): return None
    problems = []
    for path in (last, prev):
        if not path.exists():
            problems.append(f'{path} is missing'); continue
        try: ck = read_training_checkpoint(path, arch, arch_kwargs, device)
        except UnreadableCheckpointError as e: problems.append(str(e)); continue
        if problems: log(f'{"; ".join(problems)}. Resuming from {path} (step {ck["step"]}) instead.')
        return path, ck
    raise CheckpointError(f'{"; ".join(problems)}; no readable checkpoint is left in {folder}: {fix}')


# %%
net = tiny_net()
state = {'arch': 'msrresnet', 'arch_kwargs': {'num_feat': 8, 'num_block': 1}, 'params': net.state_dict(), 'params_ema': None,
         'step': 3, 'elapsed': 1.5, 'best_psnr': -math.inf}
save_checkpoint(tmp/'run'/'last.ckpt', state)
ck = read_training_checkpoint(tmp/'run'/'last.ckpt', 'msrresnet', {'num_feat': 8, 'num_block': 1})
test_eq((ck['format'], ck['step'], ck['params']['conv_first.weight']), (CHECKPOINT_FORMAT, 3, net.conv_first.weight))
save_checkpoint(tmp/'run'/'old.ckpt', {**state, 'ema_updates': 3})                   # as versions before 2026-11-29 wrote
test_eq('ema_updates' in read_training_checkpoint(tmp/'run'/'old.ckpt', 'msrresnet', {'num_feat': 8, 'num_block': 1}), False)
test_fail(lambda: read_training_checkpoint(tmp/'run'/'last.ckpt', 'msrresnet', {}), contains='use another out_dir')
export_weights(tmp/'run'/'best.pt', net, 'msrresnet', {'num_feat': 8, 'num_block': 1})
test_fail(lambda: read_training_checkpoint(tmp/'run'/'best.pt', 'msrresnet', {}), contains='use init_from=')

# %% [markdown]
# Each save keeps the checkpoint before it; a cut-short `last.ckpt` falls back to it, with a message, and a run
# whose two checkpoints are both gone stops and says so:

# %%
arch = ('msrresnet', {'num_feat': 8, 'num_block': 1})
run = tmp/'rot'
save_checkpoint(run/'last.ckpt', {**state, 'step': 10}); save_checkpoint(run/'last.ckpt', {**state, 'step': 20})
test_eq([load_checkpoint(run/n)['step'] for n in ('last.ckpt', 'previous.ckpt')], [20, 10])
test_eq(sorted(p.name for p in run.iterdir()), ['last.ckpt', 'previous.ckpt'])
path, ck = latest_training_checkpoint(run, *arch); test_eq((path.name, ck['step']), ('last.ckpt', 20))
(run/'last.ckpt').write_bytes((run/'last.ckpt').read_bytes()[:1000])          # a disk that lost the end of it
said = []
path, ck = latest_training_checkpoint(run, *arch, log=said.append)
test_eq((path.name, ck['step']), ('previous.ckpt', 10))
print(said[0]); assert 'last.ckpt is not a readable checkpoint: it is cut short' in said[0] and 'Resuming from' in said[0]
(run/'last.ckpt').unlink()
test_eq(latest_training_checkpoint(run, *arch, log=said.append)[1]['step'], 10)   # a kill between the two renames
(run/'previous.ckpt').write_bytes(b'')
test_fail(lambda: latest_training_checkpoint(run, *arch), contains='no readable checkpoint is left in')
test_eq(latest_training_checkpoint(tmp/'nothing', *arch), None)
save_checkpoint(run/'last.ckpt', {**state, 'step': 30})
test_fail(lambda: latest_training_checkpoint(run, 'msrresnet', {}), contains='holds the generator msrresnet')   # not a fall-back case


# %% [markdown]
# ## How a model was trained -
#
# The trainer writes its record into each weights file's `meta` (steps, minutes, validation and bicubic PSNR, the
# whole config); the shipped weights carry a longer, human-written record beside them (`blindsr_default.json`,
# whose field names differ). `TrainingRecord` reads either and says it in one line, as `blindsr_demo` prints it.

# %%
#| export
@dataclass
class TrainingRecord:
    "How a generator was trained, as far as its file says."
    step: int | None = None            # optimiser steps
    minutes: float | None = None       # minutes of training (all sessions)
    val_psnr: float | None = None      # validation PSNR of these weights (dB)
    bicubic_psnr: float | None = None  # bicubic PSNR of the same validation set (dB)
    config: dict | None = None         # the TrainConfig, as a dict

    @classmethod
    def from_meta(cls, meta: Mapping | None) -> 'TrainingRecord':
        "From a weights file's `meta` (the trainer's keys) or the shipped record (`steps`, `validation`, …)."
        m = dict(meta or {})
        v = m.get('validation') or {}
        return cls(step=m.get('step', m.get('steps')), minutes=m.get('minutes', m.get('wall_clock_minutes')),
                   val_psnr=m.get('val_psnr', v.get('val_psnr_db')), bicubic_psnr=m.get('bicubic_psnr', v.get('bicubic_psnr_db')),
                   config=m.get('cfg', m.get('config')))

    def meta(self) -> dict:
        "The `meta` dict a weights file stores (export_weights)."
        return {'step': self.step, 'minutes': self.minutes, 'val_psnr': self.val_psnr, 'bicubic_psnr': self.bicubic_psnr,
                'cfg': self.config}

    def summary(self) -> str:
        "e.g. '1651 steps, 1.9 min; val PSNR 26.53 dB (bicubic 26.21 dB)'; '' when nothing is known."
        run = ', '.join(([f'{self.step} steps'] if self.step is not None else []) +
                        ([f'{self.minutes:g} min'] if self.minutes else []))
        val = ''
        if self.val_psnr is not None and math.isfinite(self.val_psnr):
            val = f'val PSNR {self.val_psnr:.2f} dB' + (f' (bicubic {self.bicubic_psnr:.2f} dB)' if self.bicubic_psnr is not None else '')
        return '; '.join(p for p in (run, val) if p)


# %%
test_eq(TrainingRecord.from_meta({'step': 300, 'val_psnr': 25.123, 'bicubic_psnr': 24.9, 'cfg': {}}).summary(),
        '300 steps; val PSNR 25.12 dB (bicubic 24.90 dB)')
test_eq(TrainingRecord.from_meta({'steps': 1651, 'wall_clock_minutes': 1.9, 'validation': {'val_psnr_db': 26.5254, 'bicubic_psnr_db': 26.207}}).summary(),
        '1651 steps, 1.9 min; val PSNR 26.53 dB (bicubic 26.21 dB)')
test_eq(TrainingRecord.from_meta({}).summary(), '')
rec = TrainingRecord(12, 0.5, 21.0, 20.0, {'lr': 1e-3})
test_eq(TrainingRecord.from_meta(rec.meta()), rec)
if DEFAULT_WEIGHTS.exists(): print('shipped weights:', TrainingRecord.from_meta(weights_info(DEFAULT_WEIGHTS)['meta']).summary())

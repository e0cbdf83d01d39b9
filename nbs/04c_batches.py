# %% [markdown]
# # Training batches
# > From HQ faces to the (hq, lq) pair of every training step: named random streams, which faces and flips a step takes, LQ degraded on the GPU in mixed blocks or on the CPU in DataLoader workers — a pure function of the step, so a resumed run sees the same batches.

# %%
#| default_exp batches

# %%
#| export
from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from blindsr.data import HQFaces
from blindsr.degradation import DegParams, degrade_batch, degrade_image, get_preset, sample, to_device

# %%
#| hide
import tempfile
from pathlib import Path

from fastcore.test import test_eq, test_fail, test_ne
from blindsr.samples import synthetic_faces

tmp = Path(tempfile.mkdtemp())
synthetic_faces(tmp/'faces', 12, 64)
faces = HQFaces(tmp/'faces', progress=False)


# %% [markdown]
# The trainer asks one question of this module per step: what are this step's HQ faces and their LQ? The answer
# must be a function of the step alone — no sampler, loader or degrader state to save — so that a run stopped at
# any step and resumed repeats, bit for bit, what the uninterrupted run would have done. Everything random here
# therefore comes from one place, a `StepRNG`, whose streams are named for what they decide and keyed by the step.
#
# ## Named random streams
#
# Each stream is a fresh `numpy.random.default_rng` keyed by `[seed, step, rank, stream]` (the epoch order by
# `[seed, epoch]`: it is shared by all processes, which take their slices of it). Nothing is drawn from a
# generator that lives across steps, so the streams cannot drift apart, and resuming needs only the step.
#
# | stream | key | decides |
# |---|---|---|
# | `epoch_order(epoch, n)` | `[seed, epoch]` | the order of the faces in one pass over the data |
# | `flips(step, n)` | `[seed, step, rank, 1]` | which faces of the step are flipped horizontally |
# | `degradation(step)` | `[seed, step, rank, 2]` | the degradation parameters of the step's batch (GPU path) |
# | `degradation(step, slot)` | `[seed, step, rank, 2, slot]` | … of the face in `slot` of the batch (CPU path) |
# | `noise_seed(step)` | `[seed, step, rank, 3]` | the seed of the torch generator that draws the GPU path's noise |
# | `block_order(block, n)` | `[seed, block, rank, 4]` | the shuffle of a degraded block's faces (`degrade_mix`) |

# %%
#| export
@dataclass(frozen=True)
class StepRNG:
    "The named random streams of a training run; each call is a pure function of (seed, rank, its arguments)."
    seed: int = 0     # the run's seed (TrainConfig.seed)
    rank: int = 0     # this process's rank: processes draw different flips and degradations for their faces

    FLIPS, DEGRADATION, NOISE, BLOCK_ORDER = 1, 2, 3, 4    # the stream numbers in the keys (never change them)

    def _rng(self, step: int, stream: int, *more: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, step, self.rank, stream, *more])

    def epoch_order(self, epoch: int, n: int) -> np.ndarray:
        "(n,) int: the faces in the order of pass `epoch` over the data (the same on every process)."
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def flips(self, step: int, n: int, p: float = 0.5) -> np.ndarray:
        "(n,) bool: which of this step's n faces are flipped horizontally."
        return self._rng(step, self.FLIPS).random(n) < p

    def degradation(self, step: int, slot: int | None = None) -> np.random.Generator:
        "The generator that samples this step's degradation parameters (of the whole batch, or of one slot of it)."
        return self._rng(step, self.DEGRADATION, *(() if slot is None else (slot,)))

    def noise_seed(self, step: int) -> int:
        "The seed of the torch generator that draws this step's noise on the GPU path."
        return int(self._rng(step, self.NOISE).integers(2 ** 62))

    def block_order(self, block: int, n: int) -> np.ndarray:
        "(n,) int: the shuffle of the n faces of degraded block `block`."
        return self._rng(block, self.BLOCK_ORDER).permutation(n)


# %% [markdown]
# The keys are the ones the trainer has always used, so checkpoints written before this module existed resume
# onto the same streams:

# %%
r = StepRNG(seed=3, rank=1)
test_eq(r.flips(7, 16), np.random.default_rng([3, 7, 1, 1]).random(16) < 0.5)
test_eq(r.degradation(7).random(), np.random.default_rng([3, 7, 1, 2]).random())
test_eq(r.degradation(7, slot=5).random(), np.random.default_rng([3, 7, 1, 2, 5]).random())
test_eq(r.noise_seed(7), int(np.random.default_rng([3, 7, 1, 3]).integers(2 ** 62)))
test_eq(r.block_order(2, 8), np.random.default_rng([3, 2, 1, 4]).permutation(8))
test_eq(r.epoch_order(4, 10), StepRNG(seed=3, rank=0).epoch_order(4, 10))      # one epoch order for all processes
test_eq(r.flips(7, 16), StepRNG(3, 1).flips(7, 16)); test_ne(r.flips(7, 16), r.flips(8, 16))
test_ne(r.flips(7, 16), StepRNG(3, 0).flips(7, 16))


# %% [markdown]
# ## Which faces a step takes
#
# Epoch `e` is the permutation `epoch_order(e)`, consumed `batch` faces at a time across epoch boundaries, and with
# `world` processes each takes its own slice of every global batch. Horizontal flip (`StepRNG.flips`) is the one
# augmentation the course advises: vertical flips and rotations make upside-down faces that never occur in test.

# %%
#| export
def batch_indices(step: int,  # 0-based training step
                  n: int,  # dataset size
                  batch: int,  # global batch size
                  seed: int = 0,
                  rank: int = 0,  # this process's rank …
                  world: int = 1,  # … of this many; each takes batch // world faces
                 ) -> np.ndarray:  # (batch // world,) int64 face indices
    "The faces of one step: an endless sequence of seeded epoch permutations."
    if batch % world: raise ValueError(f'batch {batch} must be divisible by the number of processes {world}')
    start = step * batch
    first_epoch, last_epoch = start // n, (start + batch - 1) // n
    order = StepRNG(seed)
    seq = np.concatenate([order.epoch_order(e, n) for e in range(first_epoch, last_epoch + 1)])
    off = start - first_epoch * n
    per = batch // world
    return seq[off + rank * per: off + (rank + 1) * per].astype(np.int64)


# %%
idx = np.concatenate([batch_indices(s, 10, 4, seed=1) for s in range(5)])     # 20 faces = two epochs
test_eq(sorted(idx[:10]), list(range(10))); test_eq(sorted(idx[10:]), list(range(10)))
test_eq(batch_indices(3, 10, 4, seed=1), idx[12:16])
r0, r1 = batch_indices(3, 10, 4, 1, rank=0, world=2), batch_indices(3, 10, 4, 1, rank=1, world=2)
test_eq(np.concatenate([r0, r1]), idx[12:16])
test_fail(lambda: batch_indices(0, 10, 5, world=2), contains='divisible')


# %% [markdown]
# ## What a batch is made of
#
# Sampling is separate from application: `Draws` is everything random about a batch — its faces, their flips and
# their degradation parameters — and applying it is deterministic (apart from the noise realisation, which comes
# from `StepRNG.noise_seed` on the GPU path and from the parameters' own seeds on the CPU path).

# %%
#| export
@dataclass
class Draws:
    "What one step's batch is made of, in batch order."
    faces: np.ndarray     # (B,) int64: indices into the HQ faces
    flipped: np.ndarray   # (B,) bool: flipped horizontally before degrading
    params: list          # B one-image blindsr.degradation.DegParams: each face's degradation


# %% [markdown]
# ## LQ on the CPU, in DataLoader workers
#
# Without a GPU the torch backend would run on the same cores as the model, so faces are degraded by the numpy/
# OpenCV backend (`degrade_image`) in worker processes. A `StepBatches` sampler yields each step's keys
# `(face, step, slot, flip)`, and a `DegradedFaces` item's parameters are drawn from
# `StepRNG.degradation(step, slot)`: every face its own draw, as deterministic and resumable as the GPU path.

# %%
#| export
def ignore_interrupts(worker_id: int = 0) -> None:
    "A DataLoader worker's start: leave Ctrl-C to the main process, which saves a checkpoint and stops the workers."
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # a spawned worker serves its tensors' handles to the main process too; when the main process stops mid-handshake
    # at Ctrl-C, the worker's sharing thread would print a ConnectionResetError traceback
    quiet_handle_sharing()


def without_sharing_errors(hook: Callable) -> Callable:
    "`hook` (a sys.excepthook) that drops the errors of multiprocessing's handle-sharing thread when a worker leaves."
    # at Ctrl-C the main process stops its DataLoader workers while one may be fetching a shared tensor's handle from
    # it; the sharing thread (named 'Thread-N (_serve)') then prints a ConnectionResetError traceback — nothing is lost
    def quiet(kind, value, tb):
        if issubclass(kind, (ConnectionError, EOFError)) and threading.current_thread().name.endswith('(_serve)'): return
        hook(kind, value, tb)
    quiet.without_sharing_errors = True
    return quiet


def quiet_handle_sharing() -> None:
    "In this process, drop the traceback of multiprocessing's handle-sharing thread when a worker leaves mid-handshake."
    if not getattr(sys.excepthook, 'without_sharing_errors', False): sys.excepthook = without_sharing_errors(sys.excepthook)


class DegradedFaces(torch.utils.data.Dataset):
    "Items keyed (face index, step, slot, flip) -> (hq (3,H,W), lq (3,H/4,W/4)) uint8 tensors, degraded on the CPU."
    def __init__(self, faces: HQFaces, preset: str, rng: StepRNG):
        self.faces, self.preset, self.rng = faces, get_preset(preset), rng

    def __len__(self): return len(self.faces)

    def params(self, step: int, slot: int) -> DegParams:
        "The degradation of the face in `slot` of `step`'s batch."
        return sample(self.preset, self.rng.degradation(step, slot), 1)

    def __getitem__(self, key):
        i, step, slot, flip = key
        hq = self.faces[i]
        if flip: hq = hq.flip(-1)
        lq = degrade_image(hq.permute(1, 2, 0).numpy(), self.params(step, slot))
        return hq.contiguous(), torch.from_numpy(lq).permute(2, 0, 1).contiguous()


def step_keys(step: int,  # 0-based training step
              n: int,  # dataset size
              batch: int,  # global batch size
              rng: StepRNG,  # the run's streams (seed, this process's rank)
              world: int = 1,  # processes
              hflip: bool = True,  # draw flips (else none)
             ) -> list[tuple[int, int, int, bool]]:  # [(face, step, slot, flip)], one per face of this process
    "The keys of one step's faces: which face, which step and slot (the degradation's key), whether flipped."
    idx = batch_indices(step, n, batch, rng.seed, rng.rank, world)
    fl = rng.flips(step, len(idx)) if hflip else np.zeros(len(idx), bool)
    return [(int(i), step, slot, bool(f)) for slot, (i, f) in enumerate(zip(idx, fl))]


class StepBatches(torch.utils.data.Sampler):
    "A DataLoader batch sampler: for steps start, start+1, …, stop-1, the step's keys (see step_keys, DegradedFaces)."
    def __init__(self, n: int, batch: int, rng: StepRNG, start: int, stop: int, world: int = 1, hflip: bool = True):
        self.n, self.batch, self.rng, self.start, self.stop, self.world, self.hflip = n, batch, rng, start, stop, world, hflip

    def __iter__(self):
        for step in range(self.start, self.stop): yield step_keys(step, self.n, self.batch, self.rng, self.world, self.hflip)

    def __len__(self): return self.stop - self.start


# %%
dfaces = DegradedFaces(faces, 'bicubic', StepRNG(0))
sb = StepBatches(len(faces), 4, StepRNG(0), start=5, stop=7)
keys = list(sb)
test_eq(len(keys), 2); test_eq([k[1] for k in keys[0]], [5] * 4); test_eq([k[2] for k in keys[0]], [0, 1, 2, 3])
hq0, lq0 = dfaces[keys[0][0]]
test_eq((hq0.shape, lq0.shape, lq0.dtype), ((3, 64, 64), (3, 16, 16), torch.uint8))
test_eq(dfaces[keys[0][0]][1], lq0)                                               # a key always gives the same LQ

# %% [markdown]
# At Ctrl-C a worker may be stopped while it fetches a shared tensor's handle from the main process; the traceback
# that multiprocessing's sharing thread would print about it is dropped, any other thread's error is not:

# %%
seen = []
hook = without_sharing_errors(lambda kind, value, tb: seen.append((threading.current_thread().name, kind.__name__)))
for name in ('Thread-9 (_serve)', 'Thread-9 (work)'):
    t = threading.Thread(target=lambda: hook(ConnectionResetError, ConnectionResetError(104, 'reset'), None), name=name)
    t.start(); t.join()
test_eq(seen, [('Thread-9 (work)', 'ConnectionResetError')])


# %% [markdown]
# ## LQ on the GPU, in mixed blocks
#
# With a GPU the faces stay decoded on it (when they fit, `gpu_cache`), a step's batch is gathered and flipped
# there, and the torch backend degrades it (`degrade_batch`), with no loader at all. Two measured details shape
# this path (H200, `blindsr.bench`): the torch degradation costs ~12–15 ms of host time per call whatever the
# batch size (kernel launches), and images that share their resize draws are degraded together. One call per
# batch with one resize draw per batch would make every batch a single resize; one draw per face would make a
# call per face. So `degrade_mix` consecutive batches form a block, degraded together — one call per batch, each
# batch with its own resize draw (or `degrade_group` faces per draw) — and the block's faces are served shuffled
# (`StepRNG.block_order`): each step's batch mixes faces of `degrade_mix` resize draws. A block is a function of
# its index, so a run resumed in the middle of one rebuilds it.
#
# ## The one object the trainer calls
#
# `TrainBatches` holds the faces and the recipe; `batch(step)` is the step's `(hq, lq)` on the training device,
# float in [0, 1], on either path; `stream(start, stop)` yields them step after step (on the CPU path from
# DataLoader workers); `draws(step)` says what `batch(step)` is made of without degrading anything.

# %%
#| export
@dataclass
class BatchConfig:
    "How batches are made; the fields (and defaults) are TrainConfig's of the same names."
    batch_size: int = 16                 # faces per optimiser step, all processes together
    seed: int = 0                        # the StepRNG seed
    preset: str = 'ai6126_2024'          # degradation preset (blindsr.degradation.PRESETS)
    hflip: bool = True                   # horizontal flips
    degrade_on: str = 'auto'             # 'gpu' (torch backend on the training device), 'cpu' (DataLoader workers), 'auto'
    degrade_group: int | None = None     # faces sharing resize draws on the GPU (None: each degraded batch shares one)
    degrade_mix: int = 4                 # GPU path: degrade this many batches at once and serve them shuffled (mixing)
    gpu_cache: str = 'auto'              # keep all decoded HQ faces on the GPU: 'auto' (if < 25 % of its memory), 'on', 'off'
    workers: int | None = None           # DataLoader workers for degrade_on='cpu' (default: cores - 1)


# %%
#| export
class TrainBatches:
    "The (hq, lq) batch of every training step of one process: a pure function of the step."
    def __init__(self,
                 faces: HQFaces,  # the training faces, decoded into RAM (HQFaces(cache=True))
                 cfg: BatchConfig,
                 device: torch.device | str,  # the training device
                 rank: int = 0,  # this process's rank …
                 world: int = 1,  # … of this many; each takes batch_size // world faces per step
                ):
        if faces.images is None: raise ValueError('TrainBatches needs the faces decoded into RAM: HQFaces(..., cache=True)')
        self.faces, self.cfg, self.device, self.world = faces, cfg, torch.device(device), world
        self.rng = StepRNG(cfg.seed, rank)
        self.degrade_on = cfg.degrade_on if cfg.degrade_on != 'auto' else ('gpu' if self.device.type == 'cuda' else 'cpu')
        on_gpu = self.device.type == 'cuda' and self.degrade_on == 'gpu' and (
            cfg.gpu_cache == 'on' or cfg.gpu_cache == 'auto' and
            faces.nbytes < 0.25 * torch.cuda.get_device_properties(self.device).total_memory)
        store = faces.images
        self.store = store.to(self.device) if on_gpu else (store.pin_memory() if self.device.type == 'cuda' else store)
        self.degraded_faces = DegradedFaces(faces, cfg.preset, self.rng)   # the CPU path's items
        self.noise_rng = torch.Generator(device=self.device)              # the GPU path's noise, reseeded per step
        self._block: tuple | None = None                                   # (index, hq, lq) of the degraded block in use

    def keys(self, step: int) -> list[tuple[int, int, int, bool]]:
        "[(face, step, slot, flip)] of this process's faces at `step` (step_keys)."
        return step_keys(step, len(self.faces), self.cfg.batch_size, self.rng, self.world, self.cfg.hflip)

    # ---- what a batch is made of ----------------------------------------------------------------------------
    def _sampled(self, step: int) -> tuple[np.ndarray, np.ndarray, DegParams]:
        "GPU path: faces, flips and degradation parameters of `step`'s own batch, before mixing."
        keys = self.keys(step)
        faces, flipped = np.array([k[0] for k in keys], np.int64), np.array([k[3] for k in keys], bool)
        group = self.cfg.degrade_group or len(faces)
        return faces, flipped, sample(self.cfg.preset, self.rng.degradation(step), len(faces), group)

    def _served(self, block: int, n: int, step: int) -> np.ndarray:
        "GPU path: the positions in degraded block `block` (of n faces) that `step` serves."
        per, j = n // self.cfg.degrade_mix, step % self.cfg.degrade_mix
        return self.rng.block_order(block, n)[j * per:(j + 1) * per]

    def draws(self, step: int) -> Draws:
        "What batch(step) is made of: its faces, flips and degradation parameters, in batch order (nothing degraded)."
        if self.degrade_on == 'cpu':
            keys = self.keys(step)
            return Draws(np.array([k[0] for k in keys], np.int64), np.array([k[3] for k in keys], bool),
                         [self.degraded_faces.params(step, slot) for _, _, slot, _ in keys])
        k = self.cfg.degrade_mix
        block = step // k
        parts = [self._sampled(s) for s in range(block * k, block * k + k)]
        faces, flipped = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        params = [p[2][i] for p in parts for i in range(len(p[0]))]
        served = self._served(block, len(faces), step)
        return Draws(faces[served], flipped[served], [params[i] for i in served])

    # ---- the batches ----------------------------------------------------------------------------------------
    def unmixed_batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        "GPU path: `step`'s own faces (gathered, flipped) and their LQ, degraded on the training device; a block's part."
        faces, flipped, params = self._sampled(step)
        hq = self.store[to_device(faces, self.store.device)].to(self.device, non_blocking=True).float().div_(255)
        if self.cfg.hflip: hq = torch.where(to_device(flipped, self.device).view(-1, 1, 1, 1), hq.flip(-1), hq)
        self.noise_rng.manual_seed(self.rng.noise_seed(step))
        return hq, degrade_batch(hq, params, self.noise_rng)

    def batch(self, step: int,  # 0-based training step
             ) -> tuple[torch.Tensor, torch.Tensor]:  # hq (B,3,H,W), lq (B,3,H/4,W/4): float in [0, 1] on the device
        "The step's batch (B = batch_size // world): GPU path from its degraded block, CPU path degraded in this process."
        if self.degrade_on == 'cpu':
            hq, lq = (torch.stack(t) for t in zip(*[self.degraded_faces[key] for key in self.keys(step)]))
            return self._to_device(hq), self._to_device(lq)
        k = self.cfg.degrade_mix
        block = step // k
        if self._block is None or self._block[0] != block:
            parts = [self.unmixed_batch(s) for s in range(block * k, block * k + k)]
            hq, lq = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
            self._block = (block, hq, lq)
        _, hq, lq = self._block
        served = to_device(self._served(block, hq.shape[0], step), self.device)
        return hq[served], lq[served]

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        "uint8 (B,3,h,w) on the host -> float in [0, 1] on the training device."
        return x.to(self.device, non_blocking=True).float().div_(255)

    def stream(self, start: int,  # the first step
               stop: int,  # one past the last step
              ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:  # batch(start), batch(start + 1), …
        "The batches of steps start … stop-1; on the CPU path degraded ahead by DataLoader workers."
        if self.degrade_on == 'gpu':
            for step in range(start, stop): yield self.batch(step)
            return
        cfg = self.cfg
        workers = cfg.workers if cfg.workers is not None else max(0, min(8, (os.cpu_count() or 1) - 1))
        # worker processes are spawned, not forked (a forked child of a process whose OpenMP/OpenCV thread pools are
        # running can deadlock), so they get the file list and decode on their own instead of a copy of the cache
        faces = self.faces if workers == 0 else HQFaces(self.faces.files, cache=False, progress=False)
        sampler = StepBatches(len(self.faces), cfg.batch_size, self.rng, start, stop, self.world, cfg.hflip)
        extra = dict(multiprocessing_context='spawn', persistent_workers=True, prefetch_factor=4,
                     worker_init_fn=ignore_interrupts) if workers else {}   # Ctrl-C: one line from the main process
        if workers: quiet_handle_sharing()
        loader = torch.utils.data.DataLoader(DegradedFaces(faces, cfg.preset, self.rng), batch_sampler=sampler,
                                             num_workers=workers, pin_memory=self.device.type == 'cuda', **extra)
        for hq, lq in loader: yield self._to_device(hq), self._to_device(lq)


# %% [markdown]
# On the GPU path (here the torch backend on the CPU), with the 2024 preset and blocks of 4 batches: every batch
# mixes faces degraded with different resize draws, and `draws` says which faces, flips and degradations
# `batch` served.

# %%
cfg = BatchConfig(batch_size=4, seed=0, degrade_on='gpu', degrade_mix=4)
tb = TrainBatches(faces, cfg, 'cpu')
hq, lq = tb.batch(6)
test_eq((hq.shape, lq.shape, hq.dtype), ((4, 3, 64, 64), (4, 3, 16, 16), torch.float32))
d = tb.draws(6)
for i in range(4): print(f'face {d.faces[i]:2d}', 'flipped' if d.flipped[i] else '       ', d.params[i].caption())


# %% [markdown]
# The served HQ are the drawn faces, flipped as drawn, and the first stage's resize factor (the draw that decides
# the intermediate sizes) varies within a batch; with `degrade_mix=1` a batch shares one draw:

# %%
def first_resizes(draws): return {float(p.stages[0].resize.scale[0]) for p in draws.params}

want = faces.images[d.faces].float().div(255)
test_eq(hq, torch.where(torch.as_tensor(d.flipped).view(-1, 1, 1, 1), want.flip(-1), want))
assert all(len(first_resizes(tb.draws(s))) > 1 for s in range(8)), [first_resizes(tb.draws(s)) for s in range(8)]
unmixed = TrainBatches(faces, BatchConfig(batch_size=4, degrade_on='gpu', degrade_mix=1), 'cpu')
test_eq([len(first_resizes(unmixed.draws(s))) for s in range(8)], [1] * 8)
served = np.concatenate([tb.draws(s).faces for s in range(4)])                # a block serves its 4 batches' faces,
test_eq(sorted(served), sorted(np.concatenate([batch_indices(s, 12, 4) for s in range(4)])))   # shuffled

# %% [markdown]
# A batch is a function of its step: a fresh `TrainBatches` (a resumed run) serves the same batch in the middle
# of a block, and `stream` serves what `batch` does:

# %%
again = TrainBatches(faces, cfg, 'cpu')
test_eq(again.batch(6), (hq, lq))
test_eq([b[1] for b in again.stream(5, 8)], [tb.batch(s)[1] for s in range(5, 8)])

# %% [markdown]
# On the CPU path each face has its own degradation draw, `batch` degrades in this process and `stream` in
# DataLoader workers, with the same result:

# %%
cpu = TrainBatches(faces, BatchConfig(batch_size=4, degrade_on='cpu', workers=0), 'cpu')
test_eq(next(cpu.stream(3, 4)), cpu.batch(3))
dc = cpu.draws(3)
test_eq(len(dc.params), 4); test_eq(dc.faces, np.array([k[0] for k in cpu.keys(3)]))
test_eq(cpu.batch(3)[0], torch.where(torch.as_tensor(dc.flipped).view(-1, 1, 1, 1),
                                     faces.images[dc.faces].flip(-1), faces.images[dc.faces]).float().div(255))
test_fail(lambda: TrainBatches(HQFaces(tmp/'faces', cache=False), cfg, 'cpu'), contains='cache=True')

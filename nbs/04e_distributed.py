# %% [markdown]
# # Distributed training
# > One process or several under torchrun: which process this is, its device, and the few moments the processes must agree — a barrier, a stop vote, a check that they hold the same weights.

# %%
#| default_exp distributed

# %%
#| export
from __future__ import annotations

import atexit
import os
from dataclasses import dataclass, field

import torch

from blindsr.device import get_device

# %%
#| hide
import subprocess
import sys
import tempfile
from pathlib import Path

from fastcore.test import test_eq


# %% [markdown]
# `torchrun --nproc_per_node=2 -m blindsr.train …` (Kaggle's T4×2) starts one process per GPU and tells each its
# place through the environment: `WORLD_SIZE` processes, this one's `RANK`, and its GPU, `LOCAL_RANK`. Each
# process trains on its share of every batch and DistributedDataParallel averages the gradients; process 0
# validates, logs and saves. The trainer meets the other processes only at the moments below, so it asks
# `Distributed` instead of branching on the process count: with one process every method is a no-op.

# %%
#| export
@dataclass
class Distributed:
    "This process's place among the training processes (one process: world 1, rank 0, and nothing to agree on)."
    world: int = 1                       # training processes (WORLD_SIZE)
    rank: int = 0                        # this process (RANK); 0 validates, logs and saves
    local_rank: int = 0                  # this process's GPU on its machine (LOCAL_RANK)
    device: torch.device = field(default_factory=lambda: torch.device('cpu'))   # where this process trains

    @property
    def is_main(self) -> bool:
        "Whether this is process 0, the one that validates, logs and writes files."
        return self.rank == 0

    def barrier(self) -> None:
        "Wait until every process gets here (e.g. until process 0 has written the validation LQ)."
        if self.world > 1: torch.distributed.barrier()

    def stop_vote(self, stop: bool) -> bool:
        "True on every process if any process wants to stop, so that all stop at the same step."
        if self.world == 1: return stop
        t = torch.tensor([1.0 if stop else 0.0], device=self.device)
        torch.distributed.all_reduce(t)
        return bool(t.item() > 0)

    def all_agree(self, value: torch.Tensor) -> bool:
        "Whether every process holds the same `value` (a 1-element tensor on this process's device, e.g. a checksum)."
        if self.world == 1: return True
        values = [torch.zeros_like(value) for _ in range(self.world)]
        torch.distributed.all_gather(values, value)
        return all(torch.equal(values[0], v) for v in values)

    def close(self) -> None:
        "Leave the process group; a no-op with one process or when already closed (no barrier: a process may be leaving because another failed)."
        if self.world > 1 and torch.distributed.is_initialized(): torch.distributed.destroy_process_group()


def init_distributed(device: str | None = None,  # None: the best available (one process) or this process's GPU
                    ) -> Distributed:
    "This process's Distributed, from torchrun's environment; with several processes, the process group is joined."
    world, rank, local = (int(os.environ.get(k, d)) for k, d in (('WORLD_SIZE', '1'), ('RANK', '0'), ('LOCAL_RANK', '0')))
    if world == 1: return Distributed(device=get_device(device))
    use_cuda = torch.cuda.is_available() and (device is None or str(device).startswith('cuda'))
    if use_cuda: torch.cuda.set_device(local)
    if not torch.distributed.is_initialized(): torch.distributed.init_process_group('nccl' if use_cuda else 'gloo')
    dev = torch.device('cuda', local) if use_cuda else torch.device('cpu')
    if use_cuda: get_device(dev)          # an unsupported GPU stops here with the fix
    dist = Distributed(world, rank, local, dev)
    # a process that exits with the group still open can abort in gloo's/NCCL's teardown ("terminate called without
    # an active exception", exit -6) after all its work is done: leave the group on the way out
    atexit.register(dist.close)
    return dist


# %% [markdown]
# In one process there is nothing to agree on:

# %%
one = init_distributed('cpu')
test_eq((one.world, one.rank, one.is_main, one.device), (1, 0, True, torch.device('cpu')))
one.barrier()
test_eq((one.stop_vote(False), one.stop_vote(True), one.all_agree(torch.ones(1))), (False, True, True))
one.close()

# %% [markdown]
# Two processes (gloo, on the CPU), started as torchrun starts them: only process 1 wants to stop, and both stop;
# they hold different values, and both see it. Each leaves the process group when it exits (`init_distributed`
# registers `close` at exit): without it, about one run in two ended with exit code -6 from gloo's teardown after
# every line had been printed.

# %%
script = Path(tempfile.mkdtemp()) / 'two.py'
script.write_text('''
import torch
from blindsr.distributed import init_distributed
d = init_distributed('cpu')
d.barrier()
print(d.rank, d.is_main, d.stop_vote(d.rank == 1), d.stop_vote(False), d.all_agree(torch.ones(1)),
      d.all_agree(torch.full((1,), float(d.rank))), flush=True)
''')
r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', str(script)],
                   capture_output=True, text=True, timeout=120, env={**os.environ, 'OMP_NUM_THREADS': '1'})
assert r.returncode == 0, r.stderr[-2000:]
test_eq(sorted(l for l in r.stdout.splitlines() if l[:2] in ('0 ', '1 ')), ['0 True True False True False', '1 False True False True False'])

"""What the command tests share: running a blindsr command as a user does, and writing a small LQ folder."""
import os
import subprocess

import numpy as np
from PIL import Image

ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}     # one torch thread per command on a 2-core machine


def run(*args, timeout=120) -> subprocess.CompletedProcess:
    "Run a command line (paths allowed) in a subprocess, capturing its text output."
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=ENV, timeout=timeout)


def write_lq(folder, n, h=16, w=16, seed=0):
    "`n` random h x w PNGs named 00000.png … in `folder` (created)."
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f'{i:05d}.png')
    return folder

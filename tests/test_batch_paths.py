"""The two ways training batches are degraded — the CPU DataLoader path (numpy/OpenCV, one draw per face) and the GPU
path (the torch backend, here on the CPU, in mixed blocks of `degrade_mix` batches) — make LQ that the independent
statistics of ../shared/tools/lq_fidelity.py cannot tell apart. Needs ../shared/data/ffhq200 (skipped without).

100 faces keep it near 30 s on 2 cores; the 5 % critical KS distance is then 0.237 (0.168 for 200). It still tells
pipelines apart: measured with seed 0, the two paths are 0.18 apart at worst (seed 1: 0.22), while the 2023 preset on
the GPU path is 0.35 from the 2024 CPU path, and the test checks that control too."""
import json
import subprocess
import sys

import pytest
import torch

from blindsr.batches import TrainBatches
from blindsr.train import BatchConfig
from blindsr.core import list_images, write_png
from blindsr.data import HQFaces

N_FACES, BATCH = 100, 5          # 20 steps = 5 blocks of degrade_mix=4 batches = each face once (epoch 0)


def lq_set(faces: HQFaces, degrade_on: str, out, preset: str = 'ai6126_2024'):
    "Each face's LQ as the path serves it over one epoch, named by the face it came from (hflip off: GT stays aligned)."
    torch.set_num_threads(1)
    tb = TrainBatches(faces, BatchConfig(batch_size=BATCH, seed=0, hflip=False, degrade_on=degrade_on, degrade_mix=4,
                                         workers=0, preset=preset), 'cpu')
    for step in range(N_FACES // BATCH):
        _, lq = tb.batch(step)
        for i, face in enumerate(tb.draws(step).faces):
            write_png(out / faces.files[face].name, (lq[i].permute(1, 2, 0) * 255).round().byte().numpy())
    return out


def test_cpu_and_gpu_paths_make_lq_alike(tmp_path, ffhq200):
    tool = ffhq200.parent.parent / 'tools' / 'lq_fidelity.py'
    if not tool.is_file(): pytest.skip(f'{tool} is not present on this machine')
    gt = tmp_path / 'gt'
    gt.mkdir()
    for f in list_images(ffhq200 / 'gt')[:N_FACES]: (gt / f.name).symlink_to(f)
    faces = HQFaces(gt, cache=True, progress=False)
    cpu, gpu = lq_set(faces, 'cpu', tmp_path / 'cpu'), lq_set(faces, 'gpu', tmp_path / 'gpu')
    assert len(list_images(cpu)) == len(list_images(gpu)) == N_FACES

    def fidelity(a, b) -> dict:
        r = subprocess.run([sys.executable, str(tool), str(gt), str(a), str(b)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        res = json.loads(r.stdout)
        assert res['n_a'] == res['n_b'] == N_FACES
        return res

    res = fidelity(cpu, gpu)
    assert res['passed'], f"{res['worst']}: KS {res['worst_ks']} >= {res['ks_crit']}\n{json.dumps(res['stats'], indent=1)}"
    other = fidelity(cpu, lq_set(faces, 'gpu', tmp_path / 'gpu2023', preset='ai6126_2023'))   # the control
    assert not other['passed'], f'100 faces no longer tell the 2023 pipeline from the 2024 one: {other}'

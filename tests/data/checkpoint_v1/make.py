"""How the files beside this script were made, by blindsr at commit 887f60d (before the trainer was rebuilt on named
parts): three tiny runs (the GPU data path on the CPU, the CPU DataLoader path, and the GAN phase), each stopped at
step 4 (`step4_<name>.ckpt`, the checkpoint format of that version) and then resumed to step 8, whose losses and
weights are `expected_<name>.pt`. tests/test_checkpoint_compat.py resumes the old checkpoints with today's code and
requires the same losses and weights, within the tolerances it states.

    python tests/data/checkpoint_v1/make.py --expected   # remake expected_<name>.pt from today's code, resuming the
                                                         # committed step-4 checkpoints (after an intended change of
                                                         # the default numerics; commit them with that change)
    python tests/data/checkpoint_v1/make.py              # the old checkpoints too: only with blindsr 887f60d installed
"""
import csv
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
RUNS = {'gpu_path': dict(degrade_on='gpu'),
        'cpu_path': dict(degrade_on='cpu', workers=0),
        'gan': dict(degrade_on='gpu', gan=True, disc_feat=4)}


def faces(folder: Path, n: int = 8, size: int = 64):
    "n smooth random colour fields (size x size PNG), learnable rather than noise."
    import cv2
    r = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = cv2.resize(r.random((size // 8, size // 8, 3)), (size, size), interpolation=cv2.INTER_CUBIC)
        Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(folder / f'{i:05d}.png')


def config(out, faces_dir=HERE / 'faces', **kw):
    "The run's config; `faces_dir` holds what `faces()` writes (generated where needed, never committed)."
    from blindsr.train import TrainConfig
    return TrainConfig(train_hq=str(faces_dir), iters=8, batch_size=4, generator_kwargs={'num_feat': 8, 'num_block': 1},
                       log_every=1, val_every=1000, ckpt_every=1000, device='cpu', compile='off', progress=False,
                       out_dir=str(out), **kw)


def relative_distance(got: dict, want: dict, start: dict) -> float:
    "How far `got` is from `want`, as a fraction of how far `want` moved from `start` (state dicts, float tensors)."
    keys = [k for k, v in want.items() if v.is_floating_point()]
    off = sum(float((got[k].double() - want[k].double()).pow(2).sum()) for k in keys) ** 0.5
    moved = sum(float((want[k].double() - start[k].double()).pow(2).sum()) for k in keys) ** 0.5
    return off / max(moved, 1e-30)


def replaying(trainer, lq_steps=None):
    """Make `trainer` train on the LQ of `lq_steps` ((B,3,h,w) uint8 per step) instead of the LQ it makes, keeping
    what it made in the returned list (uint8, as the final quantisation leaves it). With `lq_steps` None it records
    only: its own LQ are used. The HQ side (decoded faces and flips) is the same on every machine either way."""
    made, stream = [], trainer.batches.stream
    def replay(start, stop):
        for i, (hq, lq) in enumerate(stream(start, stop)):
            made.append((lq * 255).round().to(torch.uint8).cpu())
            yield hq, (lq if lq_steps is None else (lq_steps[i].float() / 255).to(lq.device, lq.dtype))
    trainer.batches.stream = replay
    return made


def remake_expected() -> None:
    "expected_<name>.pt from today's code: resume each committed step-4 checkpoint to step 8, recording its LQ."
    from blindsr.train import Trainer
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        faces(d / 'faces')
        for name, kw in RUNS.items():
            (d / name).mkdir()
            shutil.copyfile(HERE / f'step4_{name}.ckpt', d / name / 'last.ckpt')
            tr = Trainer(config(d / name, d / 'faces', **kw))
            lq = replaying(tr)
            tr.fit()
            losses = [float(r['loss']) for r in csv.DictReader(open(d / name / 'log.csv'))]
            old = torch.load(HERE / f'expected_{name}.pt', weights_only=True)['losses'][:4]    # steps 1-4: the old run's
            torch.save({'losses': old + losses, 'params': tr.train_step.generator.state_dict(),
                        'params_ema': tr.train_step.averaged.state_dict(), 'lq': lq}, HERE / f'expected_{name}.pt')
            print(name, losses)


if __name__ == '__main__':
    import sys
    if '--expected' in sys.argv[1:]: remake_expected(); sys.exit(0)
    from blindsr.train import Trainer
    torch.set_num_threads(1)
    faces(HERE / 'faces')
    for name, kw in RUNS.items():
        tmp = Path(tempfile.mkdtemp())
        Trainer(config(tmp / 'a', **kw)).fit(stop_at=4)
        shutil.copyfile(tmp / 'a' / 'last.ckpt', HERE / f'step4_{name}.ckpt')
        tr = Trainer(config(tmp / 'a', **kw)); tr.fit()
        losses = [float(r['loss']) for r in csv.DictReader(open(tmp / 'a' / 'log.csv'))]
        whole = Trainer(config(tmp / 'b', **kw)); whole.fit()
        assert all(torch.equal(a, b) for a, b in zip(tr.G.state_dict().values(), whole.G.state_dict().values())), name
        torch.save({'losses': losses, 'params': tr.G.state_dict(), 'params_ema': tr.ema_model.state_dict()},
                   HERE / f'expected_{name}.pt')
        print(name, losses)

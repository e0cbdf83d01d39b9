# %% [markdown]
# # Sample faces
# > Faces to try things on without the course data: a public-domain portrait, any face file framed as FFHQ frames faces, the FFHQ sample set when you point at it, and generated faces for benchmarks and tests.

# %%
#| default_exp samples

# %%
#| export
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from blindsr.core import PathLike, list_images, read_image, write_png

# %%
#| hide
import tempfile

import matplotlib.pyplot as plt
from fastcore.test import test_eq, test_fail

tmp = Path(tempfile.mkdtemp())


def show_images(images, titles, size: float = 2.2):
    "A row of images, each with its title."
    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size + 0.4), squeeze=False)
    for ax, img, title in zip(axes[0], images, titles):
        ax.imshow(img); ax.set_title(title, fontsize=8); ax.axis('off')
    fig.tight_layout()


# %% [markdown]
# Use it when you need a face to try something on — a degradation, a model, a benchmark — and have no data at hand:
# `astronaut_face()` is a 512×512 face on any machine, `sample_faces(n)` gives `n` real faces (from a folder you name,
# or crops of that portrait), and `synthetic_faces(folder, n)` writes generated ones for speed measurements and tests.
#
# The demo, the degradation contact sheets, the benchmarks and the tests all take their faces from here, so that
# "a face" means the same thing everywhere and no module guesses where the course data lies.
#
# ## A real face that ships with a dependency
#
# scikit-image carries NASA's public-domain portrait of the astronaut Eileen Collins. Cropped to the head and
# shoulders and resized to 512×512 it is framed roughly as FFHQ frames its faces: the demo's face on any machine.

# %%
#| export
def astronaut_face(size: int = 512,  # side of the square result
                  ) -> np.ndarray:  # (size, size, 3) uint8
    "scikit-image's public-domain astronaut portrait (NASA), cropped to the face and resized to size×size."
    from skimage import data
    face = data.astronaut()[0:288, 80:368]               # head and shoulders, face centred
    return np.asarray(Image.fromarray(face).resize((size, size), Image.LANCZOS))


def face_from_file(path: PathLike,  # any image file
                   size: int = 512,  # side of the square result
                  ) -> np.ndarray:  # (size, size, 3) uint8
    "An image file, centre-cropped to a square and resized to size×size (e.g. the HQ of the demo)."
    img = read_image(path)
    h, w = img.shape[:2]
    s = min(h, w)
    img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return np.asarray(Image.fromarray(img).resize((size, size), Image.LANCZOS if s < size else Image.BOX))


# %%
#| exec_doc
face = astronaut_face()
face.shape, face.dtype

# %%
#| exec_doc
#| echo: false
wide = write_png(tmp/'wide_face.png', np.asarray(Image.fromarray(face).resize((300, 180))))
show_images([face, read_image(wide), face_from_file(wide, 128)], ['astronaut_face()', 'a 300×180 image file', 'face_from_file(it, 128)'])

# %%
#| hide
face = astronaut_face(128)
test_eq((face.shape, face.dtype), ((128, 128, 3), np.uint8))
write_png(tmp/'wide.png', np.zeros((60, 100, 3), np.uint8))
test_eq(face_from_file(tmp/'wide.png', 96).shape, (96, 96, 3))           # centre square, then resized
test_fail(lambda: face_from_file(tmp/'missing.png'), contains='missing.png')


# %% [markdown]
# ## Several faces
#
# `sample_faces` gives the first `n` faces of a folder of real faces — the folder you pass, or the one named by
# `$BLINDSR_FFHQ200` (a copy of the FFHQ sample set with its `gt/` folder) — resized to `size`; without either it
# gives crops of the astronaut portrait, so a notebook shows faces on any machine.

# %%
#| export
def sample_faces(n: int = 4,  # how many faces
                 size: int = 512,  # side of each (square) face
                 folder: PathLike | None = None,  # a folder of faces (default: $BLINDSR_FFHQ200/gt, when set)
                ) -> list[np.ndarray]:  # n (size, size, 3) uint8 faces
    "`n` real faces from `folder` (or $BLINDSR_FFHQ200/gt), else crops of scikit-image's public-domain astronaut."
    if folder is None and os.environ.get('BLINDSR_FFHQ200'): folder = Path(os.environ['BLINDSR_FFHQ200']) / 'gt'
    if folder is not None:
        return [cv2.resize(read_image(p), (size, size), interpolation=cv2.INTER_AREA) for p in list_images(folder)[:n]]
    from skimage import data
    a = data.astronaut()
    crops = [a[20:320, 110:410], a[0:380, 70:450], a[40:280, 150:390], a[0:512, 0:512]]
    return [cv2.resize(np.ascontiguousarray(crops[i % 4]), (size, size), interpolation=cv2.INTER_AREA) for i in range(n)]


# %%
#| exec_doc
#| echo: false
show_images(sample_faces(4, 128), [f'sample_faces(4, 128)[{i}]' for i in range(4)])

# %%
#| hide
test_eq([f.shape for f in sample_faces(5, 32)], [(32, 32, 3)] * 5)
write_png(tmp/'two'/'a.png', np.full((40, 40, 3), 7, np.uint8)); write_png(tmp/'two'/'b.png', np.zeros((50, 50, 3), np.uint8))
test_eq([int(f.mean()) for f in sample_faces(3, 16, folder=tmp/'two')], [7, 0])         # only as many as the folder has


# %% [markdown]
# ## Generated faces
#
# Throughput does not depend on what the faces show, and tests need faces on any machine in milliseconds: smooth
# random colour fields (bicubic-upsampled from a `grid`×`grid` field) plus fine Gaussian texture. They are
# learnable — a network trained on a few of them improves on bicubic within seconds — but they are not faces, so
# quality comparisons use real ones.

# %%
#| export
def synthetic_faces(folder: PathLike,  # where the PNGs go (created)
                    n: int = 64,  # how many
                    size: int = 512,  # side of each
                    seed: int = 0,
                    grid: int | None = None,  # side of the random field that is upsampled (default size // 32)
                    texture: float = 0.04,  # standard deviation of the added fine texture (0: none)
                   ) -> Path:  # `folder`, holding 00000.png …
    "Write `n` generated size×size 'faces' (smooth colour fields plus fine texture) as PNGs; same seed, same bytes."
    folder = Path(folder)
    r = np.random.default_rng(seed)
    cells = grid or max(1, size // 32)
    for i in range(n):
        img = cv2.resize(r.random((cells, cells, 3)), (size, size), interpolation=cv2.INTER_CUBIC)
        if texture: img += texture * r.standard_normal((size, size, 3))
        write_png(folder / f'{i:05d}.png', (np.clip(img, 0, 1) * 255).astype(np.uint8))
    return folder


def synthetic_batch(n: int,  # how many
                    size: int,  # side of each
                    device: torch.device | str | None = None,
                   ) -> torch.Tensor:  # (n, 3, size, size) float in [0, 1]
    "`n` generated faces as a float batch, made in memory (for throughput measurements)."
    g = torch.Generator().manual_seed(0)
    base = F.interpolate(torch.rand(n, 3, max(1, size // 32), max(1, size // 32), generator=g), size=(size, size), mode='bicubic')
    return (base + 0.03 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1).to(device)


# %%
#| exec_doc
d = synthetic_faces(tmp/'gen', n=3, size=64)
[p.name for p in list_images(d)]

# %%
#| exec_doc
#| echo: false
show_images([read_image(d/'00000.png'), read_image(synthetic_faces(tmp/'s', 1, 64, grid=8, texture=0)/'00000.png'),
             (synthetic_batch(1, 64)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)],
            ['synthetic_faces(…, 64)', 'grid=8, texture=0', 'synthetic_batch(1, 64)'])

# %%
#| hide
test_eq([p.name for p in list_images(d)], ['00000.png', '00001.png', '00002.png'])
again = synthetic_faces(tmp/'gen2', n=3, size=64)
test_eq([p.read_bytes() for p in list_images(d)], [p.read_bytes() for p in list_images(again)])
b = synthetic_batch(2, 64)
test_eq((b.shape, b.dtype, bool(b.min() >= 0), bool(b.max() <= 1)), ((2, 3, 64, 64), torch.float32, True, True))

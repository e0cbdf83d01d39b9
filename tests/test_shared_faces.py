"""Checks against the real faces in ../shared/data/ffhq200 (skipped where that folder is absent)."""
import numpy as np
from PIL import Image

from blindsr.core import read_image, list_images
from blindsr.metrics import psnr


def test_bicubic_lq2023_matches_the_data_readme(ffhq200):
    "The data README quotes 27.06 dB for bicubic-upsampled lq2023 vs gt with the organisers' PSNR."
    vals = []
    for g in list_images(ffhq200 / 'gt'):
        lq = Image.open(ffhq200 / 'lq2023' / g.name).convert('RGB')
        up = np.asarray(lq.resize((512, 512), Image.BICUBIC))
        vals.append(psnr(up, read_image(g)))
    assert len(vals) == 200
    assert abs(np.mean(vals) - 27.06) < 0.005, np.mean(vals)

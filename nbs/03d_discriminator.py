# %% [markdown]
# # U-Net discriminator
# > Real-ESRGAN's `UNetDiscriminatorSN`: spectral-norm U-Net with skips, one realness logit per pixel.

# %%
#| default_exp archs.discriminator

# %%
#| export
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

# %%
#| hide
from fastcore.test import test_eq, test_fail, test_close


def n_params(m): return sum(p.numel() for p in m.parameters() if p.requires_grad)


# %% [markdown]
# The GAN stage's discriminator: `TrainConfig(gan=True)` (`blindsr_train --gan`) trains the generator against it, and
# `blindsr.train_step.AdversarialLoss` owns it. It takes a batch of faces and says, for every pixel, how real that
# part of the face looks.
#
# ## The network
#
# `conv0` (plain) → `conv1..3` (4×4 stride-2, spectral norm: 1/2, 1/4, 1/8 resolution) → `conv4..6` (bilinear ×2
# then 3×3, spectral norm, each added to the encoder feature of the same size) → `conv7, conv8` (3×3, spectral
# norm) → `conv9` (plain, 1 channel). LeakyReLU(0.2) everywhere. The per-pixel output lets the GAN loss say
# *where* a face looks fake, which is what made Real-ESRGAN's textures stable.
#
# Two differences from Real-ESRGAN's file, none in the numbers at sizes divisible by 8:
#
# - spectral norm is `torch.nn.utils.parametrizations.spectral_norm` (the maintained API), so the trainable
#   weight is `convN.parametrizations.weight.original` instead of `convN.weight_orig`. The parameter count is the
#   same, and `blindsr.checkpoint.load_basicsr_weights` renames Real-ESRGAN's keys on load.
# - the decoder upsamples to the *size of the skip* rather than by exactly 2, so any input of at least 8×8 works
#   (37×53 included); for sizes divisible by 8 the two are the same bilinear resize.
#
# The default width is the course's 32 features (1,094,817 parameters); Real-ESRGAN's default is 64.

# %%
#| export
class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's U-Net discriminator with spectral normalisation.

    `x: (B, num_in_ch, H, W)` float image, H, W ≥ 8 -> `(B, 1, H, W)` realness logits (use with
    `BCEWithLogitsLoss`). 1,094,817 trainable parameters at `num_feat=32`."""
    def __init__(self,
                 num_in_ch: int = 3,  # input channels
                 num_feat: int = 32,  # base width; Real-ESRGAN's default is 64
                 skip_connection: bool = True,  # add encoder features to the decoder (U-Net skips)
                ):
        super().__init__()
        self.skip_connection = skip_connection
        sn = spectral_norm
        f = num_feat
        self.conv0 = nn.Conv2d(num_in_ch, f, 3, 1, 1)
        self.conv1 = sn(nn.Conv2d(f, f * 2, 4, 2, 1, bias=False))
        self.conv2 = sn(nn.Conv2d(f * 2, f * 4, 4, 2, 1, bias=False))
        self.conv3 = sn(nn.Conv2d(f * 4, f * 8, 4, 2, 1, bias=False))
        self.conv4 = sn(nn.Conv2d(f * 8, f * 4, 3, 1, 1, bias=False))
        self.conv5 = sn(nn.Conv2d(f * 4, f * 2, 3, 1, 1, bias=False))
        self.conv6 = sn(nn.Conv2d(f * 2, f, 3, 1, 1, bias=False))
        self.conv7 = sn(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv8 = sn(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(f, 1, 3, 1, 1)

    def _up(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=like.shape[-2:], mode='bilinear', align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < 8:
            raise ValueError(f'UNetDiscriminatorSN needs inputs of at least 8x8 (three stride-2 stages), '
                             f'got {tuple(x.shape[-2:])}')
        act = lambda t: F.leaky_relu(t, 0.2)
        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(self._up(x3, x2)))
        if self.skip_connection: x4 = x4 + x2
        x5 = act(self.conv5(self._up(x4, x1)))
        if self.skip_connection: x5 = x5 + x1
        x6 = act(self.conv6(self._up(x5, x0)))
        if self.skip_connection: x6 = x6 + x0
        return self.conv9(act(self.conv8(act(self.conv7(x6)))))


# %% [markdown]
# One logit per pixel: a small one (4 features) on two 37×53 images. At the course's 32 features it has 1,094,817
# trainable parameters, as the course states (the power-iteration vectors `_u`, `_v` are buffers, not parameters):

# %%
#| exec_doc
faces = torch.rand(2, 3, 37, 53)                 # (B, 3, H, W)
UNetDiscriminatorSN(num_feat=4)(faces).shape, n_params(UNetDiscriminatorSN(num_feat=32))

# %%
#| hide
test_eq(n_params(UNetDiscriminatorSN(num_feat=32)), 1_094_817)
test_eq(n_params(UNetDiscriminatorSN(num_feat=64)), 4_376_897)

# %% [markdown]
# One logit per pixel, for square, odd and non-multiple-of-8 sizes; eval mode is deterministic (no power
# iteration), training mode updates the spectral-norm vectors.

# %%
#| hide
torch.manual_seed(0)
d = UNetDiscriminatorSN(num_feat=4)
for h, w in [(32, 32), (37, 53), (8, 8)]:
    test_eq(d(torch.rand(2, 3, h, w)).shape, (2, 1, h, w))
x = torch.rand(1, 3, 16, 24)
d.eval()
with torch.no_grad(): test_eq(d(x), d(x))
test_fail(lambda: d(torch.rand(1, 3, 7, 16)), contains='at least 8x8')

# %% [markdown]
# Spectral norm does its job: each normalised weight has largest singular value ≈ 1 after a few training steps'
# worth of power iterations.

# %%
#| hide
d.train()
for _ in range(30): d(x)
w = d.conv3.weight.detach().flatten(1)
test_close(torch.linalg.matrix_norm(w, ord=2).item(), 1.0, eps=1e-2)

# %% [markdown]
# # RCAN-lite
# > Residual channel attention (RCAN) cut to the 2.28M cap: 24 attention blocks in 4 residual groups.

# %%
#| default_exp archs.rcan

# %%
#| export
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# %%
#| hide
from fastcore.test import test_eq, test_fail, test_close


def n_params(m): return sum(p.numel() for p in m.parameters() if p.requires_grad)


# %% [markdown]
# Train it with `blindsr_train --generator rcan_lite` (or `TrainConfig(generator='rcan_lite')`): a generator that
# fills the 2,276,356-parameter cap with channel attention, for the same input and output as MSRResNet, `(B, 3, h, w)`
# in [0, 1] to `(B, 3, 4h, 4w)`.
#
# ## Why RCAN under a parameter cap
#
# RCAN (Zhang et al., ECCV 2018) is MSRResNet's residual block plus two cheap ideas:
#
# - **channel attention**: each block ends with a squeeze-excitation gate — global average pool, 64 → 4 → 64,
#   sigmoid — that rescales channels from statistics of the *whole* image. Under blind degradation this is the
#   cheapest way for a CNN to see how blurred or noisy the input is globally and re-weight its features: 580
#   parameters per block, one pooling, no large activations.
# - **residual in residual**: blocks sit in groups with a group-level skip, and the body has a long skip, which is
#   what let RCAN train 400 convolutions without normalisation.
#
# At 64 features, 4 groups × 6 blocks use 2,270,051 parameters, 6,305 under the cap. Compared with the 24-block
# MSRResNet it has the same depth in 3×3 convolutions, plus attention and group skips, and it drops MSRResNet's
# 64-channel `conv_hr` at 512×512: 89 instead of 102 GFLOPs per 128×128 image. The RCAN paper's ablations credit
# channel attention with +0.1–0.2 dB at equal depth. The price is wall-clock, not FLOPs: the 24 pool-and-gate
# steps are memory-bound, so it trains more slowly than the 24-block MSRResNet (measured in `08_bench`). Every op is a dense 3×3/1×1 convolution, ReLU, sigmoid or mean, safe in fp16 on a T4 and bf16 on
# newer cards.
#
# Changes from BasicSR's `RCAN`: the input is not mean-shifted and scaled to [0, 255] (`img_range`); instead,
# like MSRResNet, the output is added to the bilinearly upsampled input. Module names follow BasicSR's RCAN, but
# because of that change its checkpoints are *not* interchangeable with ours.

# %%
#| export
class ChannelAttention(nn.Sequential):
    "Squeeze-excitation gate: x · sigmoid(W2 relu(W1 mean_hw(x))); `x: (B, C, h, w)` -> same shape."
    def __init__(self,
                 num_feat: int,  # channels C
                 squeeze_factor: int = 16,  # hidden width is C // squeeze_factor
                ):
        hidden = max(1, num_feat // squeeze_factor)
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(num_feat, hidden, 1), nn.ReLU(inplace=True),
                         nn.Conv2d(hidden, num_feat, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * super().forward(x)


# %%
#| hide
ca = ChannelAttention(16, 4)
x = torch.rand(2, 16, 5, 3)
test_eq(ca(x).shape, x.shape)
with torch.no_grad(): ca[3].bias.fill_(50.0); ca[3].weight.zero_()     # gate wide open -> identity
with torch.no_grad(): test_close(ca(x), x, eps=1e-6)


# %%
#| export
class RCAB(nn.Module):
    "Residual channel attention block: x + res_scale · CA(conv(relu(conv(x)))); `(B, C, h, w)` -> same."
    def __init__(self,
                 num_feat: int,  # channels C
                 squeeze_factor: int = 16,  # channel-attention reduction
                 res_scale: float = 1.0,  # scale of the residual branch
                ):
        super().__init__()
        self.res_scale = res_scale
        self.rcab = nn.Sequential(nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(num_feat, num_feat, 3, 1, 1), ChannelAttention(num_feat, squeeze_factor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.rcab(x) * self.res_scale


class ResidualGroup(nn.Module):
    "`num_block` RCABs and a 3×3 conv, with a skip over the group; `(B, C, h, w)` -> same."
    def __init__(self,
                 num_feat: int,  # channels C
                 num_block: int,  # RCABs in the group
                 squeeze_factor: int = 16,  # channel-attention reduction
                 res_scale: float = 1.0,  # scale of each block's residual branch
                ):
        super().__init__()
        self.residual_group = nn.Sequential(*[RCAB(num_feat, squeeze_factor, res_scale) for _ in range(num_block)])
        self.conv = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(self.residual_group(x))


# %%
#| hide
test_eq(RCAB(8, 4)(x[:, :8]).shape, (2, 8, 5, 3))
test_eq(ResidualGroup(8, 2, 4)(x[:, :8]).shape, (2, 8, 5, 3))


# %% [markdown]
# ## The network
#
# `conv_first` → groups (`body.N`) → `conv_after_body` (+ long skip) → `upsample` (conv + pixel shuffle ×2, twice
# for ×4) → `conv_last`, plus the bilinear base.

# %%
#| export
class Upsample(nn.Sequential):
    "Conv to 4C (or 9C) channels + pixel shuffle, repeated: `(B, C, h, w)` -> `(B, C, scale·h, scale·w)`."
    def __init__(self,
                 scale: int,  # a power of two, or 3
                 num_feat: int,  # channels C
                ):
        if scale > 1 and (scale & (scale - 1)) == 0:
            layers = []
            for _ in range(scale.bit_length() - 1):
                layers += [nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2)]
        elif scale == 3:
            layers = [nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1), nn.PixelShuffle(3)]
        else:
            raise ValueError(f'upscale must be a power of two or 3, got {scale}')
        super().__init__(*layers)


class RCANLite(nn.Module):
    """RCAN with a bilinear skip, sized for the 2,276,356-parameter cap.

    `x: (B, num_in_ch, h, w)` float in [0, 1] -> `(B, num_out_ch, upscale·h, upscale·w)`, any h, w ≥ 1.
    2,270,051 parameters at the defaults (64 features, 4 groups × 6 blocks, ×4)."""
    def __init__(self,
                 num_in_ch: int = 3,  # input channels
                 num_out_ch: int = 3,  # output channels; must equal num_in_ch (bilinear skip)
                 num_feat: int = 64,  # channels of every intermediate feature map
                 num_group: int = 4,  # residual groups
                 num_block: int = 6,  # RCABs per group
                 squeeze_factor: int = 16,  # channel-attention reduction
                 upscale: int = 4,  # a power of two, or 3
                 res_scale: float = 1.0,  # scale of each block's residual branch
                ):
        super().__init__()
        if num_out_ch != num_in_ch:
            raise ValueError(f'RCANLite adds the upsampled input to its output, so num_out_ch must equal num_in_ch; '
                             f'got {num_in_ch} in, {num_out_ch} out')
        self.upscale = upscale
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[ResidualGroup(num_feat, num_block, squeeze_factor, res_scale)
                                    for _ in range(num_group)])
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.upsample = Upsample(upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        feat = feat + self.conv_after_body(self.body(feat))
        out = self.conv_last(self.upsample(feat))
        return out + F.interpolate(x, scale_factor=self.upscale, mode='bilinear', align_corners=False)


# %% [markdown]
# A small one at work (8 features, 2 groups of 1 block) on a 7×11 LQ image, and the parameter count of the real
# size:

# %%
#| exec_doc
lq = torch.rand(1, 3, 7, 11)                     # (B, 3, h, w) in [0, 1]
with torch.device('meta'): full = n_params(RCANLite())
RCANLite(num_feat=8, num_group=2, num_block=1, squeeze_factor=4)(lq).shape, full

# %%
#| hide
with torch.device('meta'): test_eq(n_params(RCANLite()), 2_270_051)

# %% [markdown]
# Any input size and the scales the upsampler supports; zero weights give exactly the bilinear resize.

# %%
#| hide
torch.manual_seed(0)
lq = torch.rand(1, 3, 7, 11)
for s in (2, 3, 4):
    test_eq(RCANLite(num_feat=8, num_group=2, num_block=1, squeeze_factor=4, upscale=s)(lq).shape, (1, 3, 7 * s, 11 * s))
net = RCANLite(num_feat=8, num_group=1, num_block=1, squeeze_factor=4)
with torch.no_grad():
    for p in net.parameters(): p.zero_()
with torch.no_grad(): test_eq(net(lq), F.interpolate(lq, scale_factor=4, mode='bilinear', align_corners=False))
test_fail(lambda: RCANLite(upscale=5), contains='power of two or 3')

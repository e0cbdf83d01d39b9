# %% [markdown]
# # ResUNet
# > MSRResNet with a residual U-Net body: the same upsampler, a whole-face view for a third of the body's FLOPs.

# %%
#| default_exp archs.resunet

# %%
#| export
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from blindsr.archs.msrresnet import MSRResNet, ResidualBlockNoBN

# %%
#| hide
from fastcore.test import test_eq, test_fail, test_close


def n_params(m): return sum(p.numel() for p in m.parameters() if p.requires_grad)


# %% [markdown]
# Train it with `blindsr_train --generator resunet` (or `TrainConfig(generator='resunet')`): MSRResNet with a body
# that sees the whole face, for the same input and output, `(B, 3, h, w)` in [0, 1] to `(B, 3, 4h, 4w)`. On this
# task's 180-face benchmark it did not beat the flat MSRResNet (`08_bench`); it is here for larger face sets.
#
# ## Why a U-Net body
#
# Every 5-minute recipe with MSRResNet's flat body levelled off at 27.48–27.53 dB on the 20 held-out faces, and
# neither 45 % more steps nor 39 % more parameters (24 blocks) moved it by more than 0.02 dB (`08_bench`). The
# flat body spends its whole budget at 128×128 and sees about 67×67 LQ pixels: half a face. The degradation is
# blind — noise level, blur width and JPEG quality must be judged from context — and the faces are aligned, so
# where a pixel lies on the face is itself information a network with a whole-face view can use.
#
# A U-Net of residual blocks (DRUNet's layout, Zhang et al. 2021, "Plug-and-Play Image Restoration with Deep
# Denoiser Prior", the strongest plain-CNN denoiser) gets that view cheaply: two residual blocks per scale on the
# way down and two on the way up, at 128², 64² and 32², one block at 16², strided 2×2 convolutions down,
# transposed 2×2 convolutions up, and skips added rather than concatenated. From the centre of the face it sees the
# whole 128×128 input (tested below), and its body costs about a third of the flat body's multiply-adds (58.5
# against 83.1 GFLOPs for the whole network at 128×128), so under the parameter cap it trades depth at full
# resolution for context.
#
# Everything else is MSRResNet's — `conv_first`, the two pixel-shuffle stages, `conv_hr`, `conv_last`, the
# bilinear skip — so the upsampler that works is kept, and `ResUNet` is `MSRResNet` with `body` replaced.
# Widths are `num_feat` times `widths` per scale: 64, 64, 96, 128 at the defaults, 2,066,947 parameters.
#
# Sizes: the body pads its input by edge replication to a multiple of 8 (three halvings) and crops back, so any
# h, w ≥ 1 works, as for the other generators. Tiled inference (`blindsr.inference`) cuts the receptive field at
# tile borders; restore 128×128 faces whole (the default tile is larger than that).

# %%
#| export
class UNetBody(nn.Module):
    """Residual U-Net over features: `x: (B, C, h, w)` -> same shape, any h, w ≥ 1.

    Level i has `round(C · widths[i])` channels and runs `num_block` residual blocks before halving (strided 2×2
    conv) and `num_block` after doubling back (transposed 2×2 conv, added to the level's input); the deepest level
    runs `mid_block` blocks. The first width must be 1 (the body keeps its input's channels)."""
    def __init__(self,
                 num_feat: int = 64,  # channels C of the input and output features
                 num_block: int = 2,  # residual blocks per level, each way
                 widths: tuple = (1, 1, 1.5, 2),  # channel multipliers per level, top (full size) first
                 mid_block: int = 1,  # residual blocks at the deepest level
                ):
        super().__init__()
        if len(widths) < 2 or widths[0] != 1:
            raise ValueError(f'widths must start with 1 and name at least two levels, got {tuple(widths)}')
        ch = [max(1, round(num_feat * w)) for w in widths]
        self.factor = 2 ** (len(ch) - 1)
        blocks = lambda c, n: nn.Sequential(*[ResidualBlockNoBN(c) for _ in range(n)])
        self.down = nn.ModuleList([nn.Sequential(blocks(a, num_block), nn.Conv2d(a, b, 2, 2)) for a, b in zip(ch, ch[1:])])
        self.mid = blocks(ch[-1], mid_block)
        self.up = nn.ModuleList([nn.ConvTranspose2d(b, a, 2, 2) for a, b in zip(ch, ch[1:])])
        self.dec = nn.ModuleList([blocks(a, num_block) for a in ch[:-1]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = -h % self.factor, -w % self.factor
        if ph or pw: x = F.pad(x, (0, pw, 0, ph), mode='replicate')
        skips = []
        for down in self.down:
            skips.append(x)
            x = down(x)
        x = self.mid(x)
        for up, dec, skip in zip(reversed(self.up), reversed(self.dec), reversed(skips)):
            x = dec(up(x) + skip)
        return x[..., :h, :w]


# %% [markdown]
# Shapes survive any size (padding and cropping): a small body (8 channels, levels of 8, 16, 16 and 24) on 37×53
# features.

# %%
#| exec_doc
body = UNetBody(8, 1, (1, 2, 2, 3))
body(torch.rand(2, 8, 37, 53)).shape, [m[1].out_channels for m in body.down]

# %%
#| hide
body = UNetBody(8, 1, (1, 2, 2, 3))
for h, w in [(16, 16), (37, 53), (1, 3)]: test_eq(body(torch.rand(2, 8, h, w)).shape, (2, 8, h, w))
test_eq([m[1].out_channels for m in body.down], [16, 16, 24])
test_fail(lambda: UNetBody(8, widths=(2, 2)), contains='widths must start with 1')


# %%
#| export
class ResUNet(MSRResNet):
    """MSRResNet whose flat body is a residual U-Net (`UNetBody`).

    `x: (B, num_in_ch, h, w)` float in [0, 1] -> `(B, num_out_ch, upscale·h, upscale·w)`, any h, w ≥ 1.
    2,066,947 parameters at the defaults (64 features; levels of 64, 64, 96, 128 channels; 2 blocks per level each
    way, 1 at the bottom; ×4)."""
    def __init__(self,
                 num_in_ch: int = 3,  # input channels
                 num_out_ch: int = 3,  # output channels; must equal num_in_ch (bilinear skip)
                 num_feat: int = 64,  # channels at full LQ resolution and in the upsampler
                 num_block: int = 2,  # residual blocks per U-Net level, each way
                 upscale: int = 4,  # 2, 3 or 4
                 widths: tuple = (1, 1, 1.5, 2),  # channel multipliers per level (first must be 1)
                 mid_block: int = 1,  # residual blocks at the deepest level
                ):
        super().__init__(num_in_ch, num_out_ch, num_feat, 0, upscale)
        self.body = UNetBody(num_feat, num_block, widths, mid_block)


# %% [markdown]
# A small one at work on a 13×7 LQ image, and the parameter count at the defaults, under the course's cap of
# 2,276,356:

# %%
#| exec_doc
with torch.device('meta'): full = n_params(ResUNet())
ResUNet(num_feat=8, num_block=1)(torch.rand(1, 3, 13, 7)).shape, full

# %%
#| hide
with torch.device('meta'): test_eq(n_params(ResUNet()), 2_066_947)


# %% [markdown]
# The whole-face view, checked: the gradient of the output pixel at the centre of the face reaches every pixel of
# the 128×128 input; the flat 16-block MSRResNet's reaches under a third of it. (Every output pixel sees ±76 LQ
# pixels; MSRResNet's ±34.) Tiny widths, same depths:

# %%
#| hide
def seen(net: nn.Module, size: int = 128) -> float:
    "Share of input pixels with a non-zero gradient of the output pixel at the centre of a size x size LQ face."
    lq = torch.rand(1, 3, size, size, requires_grad=True)
    c = net.upscale * size // 2
    net(lq)[0, :, c, c].sum().backward()
    return (lq.grad[0].abs().sum(0) > 0).float().mean().item()

torch.manual_seed(0)
test_eq(seen(ResUNet(num_feat=8)), 1.0)
assert seen(MSRResNet(num_feat=8)) < 0.33

# %% [markdown]
# Zero residual branches and a zero upsampler give the bilinear resize, as for MSRResNet; odd sizes and ×2 work.

# %%
#| hide
net = ResUNet(num_feat=8, num_block=1).eval()
with torch.no_grad():
    for p in net.parameters(): p.zero_()
    lq = torch.rand(1, 3, 13, 7)
    test_close(net(lq), F.interpolate(lq, scale_factor=4, mode='bilinear', align_corners=False), eps=1e-6)
test_eq(ResUNet(num_feat=8, num_block=1, upscale=2)(torch.rand(1, 3, 5, 9)).shape, (1, 3, 10, 18))

# %% [markdown]
# ## Measured
#
# On one H200, with 180 training faces and 20 held out, five minutes of the default recipe with `resunet` ended at
# 27.41 dB against 27.53 for the flat MSRResNet, and it was behind per step as well as per minute: on this task the
# default stays `msrresnet`. The run, its table and what it says about the training faces are in `08_bench`
# ("A whole-face view, flip TTA and the training faces").

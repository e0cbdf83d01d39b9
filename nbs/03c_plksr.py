# %% [markdown]
# # PLKSR
# > A partial-large-kernel CNN (PLKSR): a dense 17×17 convolution on a quarter of the channels in every block.

# %%
#| default_exp archs.plksr

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
# Train it with `blindsr_train --generator plksr` (or `TrainConfig(generator='plksr')`): a generator that sees the
# whole face through large kernels, for the same input and output as MSRResNet, `(B, 3, h, w)` in [0, 1] to
# `(B, 3, 4h, 4w)`, with `norm=` for the normalised Real-PLKSR variant.
#
# ## Why a large-kernel CNN for blind face SR
#
# A blind model has to judge from context how blurred, noisy and compressed its input is, and a face's structure
# spans the whole 128×128 input. A stack of 3×3 convolutions grows its receptive field by 2 pixels per layer: the
# 16-block MSRResNet sees about 67×67 LQ pixels, half a face. Window attention (SwinIR) buys context at the price
# of softmax, LayerNorm, window padding and many small kernels — slow to train on a T4, and a 2.25M SwinIR trained
# by a 2024 student scored no better than the 24-block MSRResNet (26.55 vs 26.57 dB val).
#
# PLKSR (Lee et al., 2024, "Partial Large Kernel CNNs for Efficient Super-Resolution") gets the context with plain
# convolutions: each block runs one *dense* 17×17 convolution on a quarter of the channels (16 of 64) and leaves
# the rest alone. A dense conv is an implicit GEMM on tensor cores in fp16/bf16 — unlike a depthwise large kernel,
# which is memory bound — and the paper reports SRFormer-light-level ×4 PSNR at a fraction of its latency and
# memory. Eleven blocks see ~220 pixels: the whole face, from the first few blocks on.
#
# Each block (`PLKBlock`):
#
# 1. channel mixer (CCM): 3×3 conv to 2C, GELU, 1×1 conv back to C — local texture;
# 2. partial large kernel: 17×17 conv on the first C/4 channels — long-range context;
# 3. element-wise attention: `x · sigmoid(conv3×3(x))` — instance-dependent modulation;
# 4. 1×1 refine, optionally normalised, added to the block input.
#
# The tail is one 3×3 conv to `3·upscale²` channels and a pixel shuffle, so nearly all FLOPs are spent at LQ
# resolution. Where PLKSR adds the nearest-neighbour-repeated input, we add the bilinear resize, as MSRResNet does.
#
# **Normalisation** (`norm`): the default is none, as in the paper, which trained PLKSR entirely in fp16. Real-PLKSR
# (the author's real-world variant, in neosr) puts a GroupNorm on each residual branch for stability with
# real-world degradations and GAN losses (`norm='group'`); spandrel marks that variant as not fp16-safe. The
# traiNNer-redux community replaced it with a per-pixel LayerNorm over channels (`norm='layer'`). Either norm costs
# about a fifth of the training throughput and, at initialisation, inflates the branch outputs to unit variance
# (measured in `08_bench`); both add 2C parameters per block. For L1 training toward PSNR use `'none'`; try a norm
# only if a GAN stage diverges.
#
# Sizing: CCM instead of the paper's doubled mixer (3×3 + 3×3) leaves room for 11 blocks instead of 8 under the
# cap; 2,198,688 parameters at the defaults (2,200,096 with a norm). No re-parameterisation is used (the
# training-time model *is* the inference model), so the cap applies to exactly what trains.

# %%
#| export
class PartialLargeKernelConv(nn.Module):
    "Dense k×k conv on the first `pdim` channels, identity on the rest; `x: (B, C, h, w)` -> same shape."
    def __init__(self,
                 dim: int,  # channels C
                 pdim: int,  # channels convolved, 1 ≤ pdim ≤ C
                 kernel_size: int = 17,  # odd kernel size
                ):
        super().__init__()
        if not 1 <= pdim <= dim: raise ValueError(f'pdim must be in [1, {dim}], got {pdim}; raise split_ratio or dim')
        if kernel_size % 2 == 0: raise ValueError(f'kernel_size must be odd, got {kernel_size}')
        self.pdim = pdim
        self.conv = nn.Conv2d(pdim, pdim, kernel_size, 1, kernel_size // 2)
        nn.init.trunc_normal_(self.conv.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head, rest = torch.split(x, [self.pdim, x.shape[1] - self.pdim], dim=1)
        return torch.cat([self.conv(head), rest], dim=1)


# %% [markdown]
# Only the first `pdim` channels change, and the kernel reaches 8 pixels in every direction: an impulse in the
# middle of a 21×21 map spreads over rows and columns 2–18 of a convolved channel, and stays put in the others.

# %%
#| exec_doc
plk = PartialLargeKernelConv(8, 2, 17)
x = torch.zeros(1, 8, 21, 21); x[:, :, 10, 10] = 1.0                # one impulse per channel
with torch.no_grad(): y = plk(x)
nz = (y[0, 0] - plk.conv.bias[0]).abs() > 0                         # where channel 0's response reaches
nz.nonzero().amin(0).tolist(), nz.nonzero().amax(0).tolist(), torch.equal(y[:, 2:], x[:, 2:])

# %%
#| hide
test_eq(y[:, 2:], x[:, 2:])
test_eq(y.shape, x.shape)
nz = (y[0, 0] - plk.conv.bias[0]).abs() > 0
test_eq(nz.nonzero().amin(0).tolist(), [2, 2]); test_eq(nz.nonzero().amax(0).tolist(), [18, 18])
test_fail(lambda: PartialLargeKernelConv(8, 0), contains='split_ratio')


# %%
#| export
class ElementwiseAttention(nn.Module):
    "x · sigmoid(conv3×3(x)); `x: (B, C, h, w)` -> same shape."
    def __init__(self, dim: int):  # channels C
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1)
        nn.init.trunc_normal_(self.conv.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(x))


class ChannelLayerNorm(nn.LayerNorm):
    "LayerNorm over the channels of each pixel; `x: (B, C, h, w)` -> same shape (cheap for channels_last input)."
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def residual_norm(kind: str,  # 'none', 'layer' (per-pixel LayerNorm over channels) or 'group' (GroupNorm, 4 groups)
                  dim: int,  # channels C
                 ) -> nn.Module:
    "The normalisation PLKSR applies to each residual branch."
    if kind == 'none': return nn.Identity()
    if kind == 'layer': return ChannelLayerNorm(dim)
    if kind == 'group':
        if dim % 4: raise ValueError(f"norm='group' uses 4 groups, so num_feat must be divisible by 4, got {dim}")
        return nn.GroupNorm(4, dim)
    raise ValueError(f"norm must be 'none', 'layer' or 'group', got {kind!r}")


class PLKBlock(nn.Module):
    "x + norm(refine(EA(PLK(CCM(x))))); `x: (B, C, h, w)` -> same shape."
    def __init__(self,
                 dim: int,  # channels C
                 kernel_size: int = 17,  # large-kernel size (odd)
                 split_ratio: float = 0.25,  # share of channels under the large kernel
                 norm: str = 'none',  # residual-branch norm: 'none', 'layer' or 'group' (see residual_norm)
                ):
        super().__init__()
        self.channel_mixer = nn.Sequential(nn.Conv2d(dim, dim * 2, 3, 1, 1), nn.GELU(), nn.Conv2d(dim * 2, dim, 1))
        nn.init.trunc_normal_(self.channel_mixer[-1].weight, std=0.02)
        self.lk = PartialLargeKernelConv(dim, int(dim * split_ratio), kernel_size)
        self.attn = ElementwiseAttention(dim)
        self.refine = nn.Conv2d(dim, dim, 1)
        nn.init.trunc_normal_(self.refine.weight, std=0.02)
        self.norm = residual_norm(norm, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.norm(self.refine(self.attn(self.lk(self.channel_mixer(x)))))


# %%
#| hide
x = torch.rand(2, 8, 6, 4)
for norm in ('none', 'layer', 'group'): test_eq(PLKBlock(8, 5, 0.25, norm)(x).shape, (2, 8, 6, 4))
ln = ChannelLayerNorm(8)
y = ln(x.contiguous(memory_format=torch.channels_last))
test_close(y.mean(1), torch.zeros(2, 6, 4), eps=1e-5)                 # every pixel normalised over channels
test_close(y, F.layer_norm(x.permute(0, 2, 3, 1), (8,)).permute(0, 3, 1, 2), eps=1e-6)
test_fail(lambda: residual_norm('batch', 8), contains="'none', 'layer' or 'group'")


# %%
#| export
class PLKSR(nn.Module):
    """Partial-large-kernel SR network with a pixel-shuffle tail and a bilinear skip.

    `x: (B, num_in_ch, h, w)` float in [0, 1] -> `(B, num_out_ch, upscale·h, upscale·w)`, any h, w ≥ 1 (the
    large kernel zero-pads; no size constraint). 2,198,688 parameters at the defaults (64 features, 11 blocks,
    17×17 kernels on 16 channels, no norm, ×4); 2,200,096 with `norm='layer'` or `'group'`."""
    def __init__(self,
                 num_in_ch: int = 3,  # input channels
                 num_out_ch: int = 3,  # output channels; must equal num_in_ch (bilinear skip)
                 num_feat: int = 64,  # channels of every intermediate feature map
                 num_block: int = 11,  # PLK blocks
                 upscale: int = 4,  # any integer ≥ 1 (one pixel shuffle)
                 kernel_size: int = 17,  # large-kernel size (odd)
                 split_ratio: float = 0.25,  # share of channels under the large kernel
                 norm: str = 'none',  # residual-branch norm per block: 'none' (PLKSR), 'layer', 'group' (Real-PLKSR)
                ):
        super().__init__()
        if num_out_ch != num_in_ch:
            raise ValueError(f'PLKSR adds the upsampled input to its output, so num_out_ch must equal num_in_ch; '
                             f'got {num_in_ch} in, {num_out_ch} out')
        self.upscale = upscale
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[PLKBlock(num_feat, kernel_size, split_ratio, norm) for _ in range(num_block)])
        self.conv_up = nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(upscale)
        for conv in (self.conv_first, self.conv_up): nn.init.trunc_normal_(conv.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pixel_shuffle(self.conv_up(self.body(self.conv_first(x))))
        return out + F.interpolate(x, scale_factor=self.upscale, mode='bilinear', align_corners=False)


# %% [markdown]
# A small one at work (8 features, 2 blocks, 7×7 kernels) on a 7×11 LQ image, and the parameter counts of the
# real size, plain and with a norm:

# %%
#| exec_doc
lq = torch.rand(1, 3, 7, 11)                     # (B, 3, h, w) in [0, 1]
with torch.device('meta'): full = {norm: n_params(PLKSR(norm=norm)) for norm in ('none', 'layer')}
PLKSR(num_feat=8, num_block=2, kernel_size=7)(lq).shape, full

# %%
#| hide
with torch.device('meta'):
    test_eq(n_params(PLKSR()), 2_198_688)
    for norm in ('layer', 'group'): test_eq(n_params(PLKSR(norm=norm)), 2_198_688 + 11 * 128)

# %% [markdown]
# Odd sizes, inputs smaller than the kernel, other scales; zero weights give the bilinear resize.

# %%
#| hide
torch.manual_seed(0)
for (h, w), s in [((7, 11), 4), ((3, 2), 4), ((5, 9), 2), ((4, 4), 3)]:
    net = PLKSR(num_feat=8, num_block=2, upscale=s, kernel_size=7, norm='layer')
    test_eq(net(torch.rand(2, 3, h, w)).shape, (2, 3, h * s, w * s))
lq = torch.rand(1, 3, 6, 5)
with torch.no_grad():
    for p in net.parameters(): p.zero_()
with torch.no_grad(): test_eq(net(lq), F.interpolate(lq, scale_factor=3, mode='bilinear', align_corners=False))
test_fail(lambda: PLKSR(num_feat=10, norm='group'), contains='divisible by 4')

# %% [markdown]
# # MSRResNet
# > BasicSR's modified SRResNet, key for key: the organisers' baseline and its 24-block student variant.

# %%
#| default_exp archs.msrresnet

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
# `MSRResNet` is blindsr's default generator: `blindsr_train --generator msrresnet` (1.5 M parameters, the
# organisers' baseline) or `msrresnet_deep` (24 blocks, 2.1 M) builds it through `blindsr.models.build_generator`,
# and the organisers' BasicSR checkpoints load into it as they are (`blindsr.checkpoint.load_basicsr_weights`).
# Built directly, it takes a batch of LQ faces and returns them 4× larger:
#
# ```python
# net = MSRResNet()                          # 64 features, 16 blocks, x4
# sr = net(lq)                               # (B, 3, 128, 128) -> (B, 3, 512, 512)
# ```
#
# ## Initialisation
#
# BasicSR starts every convolution of MSRResNet from Kaiming-normal weights scaled by 0.1 and zero biases. The
# small scale keeps each residual block close to the identity at the start, so a deep stack of them trains
# without normalisation layers.

# %%
#| export
@torch.no_grad()
def default_init_weights(modules: nn.Module | list[nn.Module],  # modules whose Conv2d/Linear layers are reset
                         scale: float = 1.0,  # multiply the Kaiming-normal weights by this
                         bias_fill: float = 0.0,  # value of every bias
                        ) -> None:
    "BasicSR's init: Kaiming-normal (fan-in, gain for ReLU) weights times `scale`, biases set to `bias_fill`."
    for module in modules if isinstance(modules, (list, tuple)) else [modules]:
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
                m.weight.mul_(scale)
                if m.bias is not None: m.bias.fill_(bias_fill)


# %%
#| hide
conv = nn.Conv2d(64, 64, 3)
torch.manual_seed(0); default_init_weights(conv, 0.1)
test_close(conv.weight.std().item(), 0.1 * (2 / (64 * 9)) ** 0.5, eps=2e-4)
test_eq(conv.bias.abs().sum().item(), 0.0)


# %% [markdown]
# ## The residual block
#
# `conv → ReLU → conv`, added to the input; no batch norm (EDSR showed BN hurts SR by squashing the range of
# features). The names `conv1`, `conv2` are BasicSR's, so that checkpoints load without renaming.

# %%
#| export
class ResidualBlockNoBN(nn.Module):
    "x + conv2(relu(conv1(x))) · res_scale; `x: (B, num_feat, h, w)` -> same shape."
    def __init__(self,
                 num_feat: int = 64,  # channels in and out
                 res_scale: float = 1.0,  # scale of the residual branch
                 pytorch_init: bool = False,  # keep PyTorch's default init instead of BasicSR's (Kaiming x 0.1)
                ):
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)
        if not pytorch_init: default_init_weights([self.conv1, self.conv2], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


# %%
#| hide
blk = ResidualBlockNoBN(8)
x = torch.rand(2, 8, 5, 7)
test_eq(blk(x).shape, x.shape)
test_eq([k for k in blk.state_dict()], ['conv1.weight', 'conv1.bias', 'conv2.weight', 'conv2.bias'])


# %% [markdown]
# ## MSRResNet
#
# `conv_first` → `num_block` residual blocks (`body.N`) → pixel-shuffle upsampling (`upconv1`, and `upconv2` for
# ×4: two ×2 stages) → `conv_hr` → `conv_last`, plus the bilinearly upsampled input, so the network only learns
# the residual over a plain resize. All activations are LeakyReLU(0.1) outside the blocks, as in BasicSR.
#
# One deliberate difference in code, none in numbers: BasicSR adds the bilinear base in place (`out += base`);
# we write `out + base`, which gives the same float32 result, keeps autograd safe, and under mixed precision
# returns float32 (the fp16/bf16 network output plus the float32 base), so the last bits of the image are not
# rounded to half precision.

# %%
#| export
class MSRResNet(nn.Module):
    """BasicSR's modified SRResNet (residual blocks without BN, pixel-shuffle upsampling, bilinear skip).

    `x: (B, num_in_ch, h, w)` float in [0, 1] -> `(B, num_out_ch, upscale·h, upscale·w)`, any h, w ≥ 1.
    1,517,571 parameters at the defaults (64 features, 16 blocks, ×4); 2,108,419 with `num_block=24`.
    State dicts of BasicSR's `MSRResNet` load into it unchanged (same module names and shapes)."""
    def __init__(self,
                 num_in_ch: int = 3,  # input channels
                 num_out_ch: int = 3,  # output channels
                 num_feat: int = 64,  # channels of every intermediate feature map
                 num_block: int = 16,  # residual blocks in the body
                 upscale: int = 4,  # 2, 3 or 4
                ):
        super().__init__()
        if upscale not in (2, 3, 4): raise ValueError(f'MSRResNet upscale must be 2, 3 or 4, got {upscale}')
        if num_out_ch != num_in_ch:
            raise ValueError(f'MSRResNet adds the upsampled input to its output, so num_out_ch must equal num_in_ch; '
                             f'got {num_in_ch} in, {num_out_ch} out')
        self.upscale = upscale
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[ResidualBlockNoBN(num_feat) for _ in range(num_block)])
        if upscale == 4:
            self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.upconv2 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(2)
        else:
            self.upconv1 = nn.Conv2d(num_feat, num_feat * upscale * upscale, 3, 1, 1)
            self.pixel_shuffle = nn.PixelShuffle(upscale)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)
        default_init_weights([self.conv_first, self.upconv1, self.conv_hr, self.conv_last], 0.1)
        if upscale == 4: default_init_weights(self.upconv2, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.body(self.lrelu(self.conv_first(x)))
        feat = self.lrelu(self.pixel_shuffle(self.upconv1(feat)))
        if self.upscale == 4: feat = self.lrelu(self.pixel_shuffle(self.upconv2(feat)))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        base = F.interpolate(x, scale_factor=self.upscale, mode='bilinear', align_corners=False)
        return out + base


# %% [markdown]
# A small one at work: 8 features and 2 blocks instead of 64 and 16, on two 9×13 LQ images. The parameter counts
# of the real sizes are the course's, 1,517,571 for the baseline and 2,108,419 for the 24-block variant (built on
# the `meta` device: no memory, no init time):

# %%
#| exec_doc
lq = torch.rand(2, 3, 9, 13)                     # (B, 3, h, w) in [0, 1]
small = MSRResNet(num_feat=8, num_block=2)
with torch.device('meta'): sizes = {'MSRResNet()': n_params(MSRResNet()), 'MSRResNet(num_block=24)': n_params(MSRResNet(num_block=24))}
small(lq).shape, sizes

# %%
#| hide
with torch.device('meta'):
    test_eq(n_params(MSRResNet()), 1_517_571)
    test_eq(n_params(MSRResNet(num_block=24)), 2_108_419)

# %% [markdown]
# The module names are BasicSR's, in BasicSR's order.

# %%
#| hide
with torch.device('meta'): keys = list(MSRResNet(num_block=2).state_dict())
test_eq(keys, ['conv_first.weight', 'conv_first.bias',
               'body.0.conv1.weight', 'body.0.conv1.bias', 'body.0.conv2.weight', 'body.0.conv2.bias',
               'body.1.conv1.weight', 'body.1.conv1.bias', 'body.1.conv2.weight', 'body.1.conv2.bias',
               'upconv1.weight', 'upconv1.bias', 'upconv2.weight', 'upconv2.bias',
               'conv_hr.weight', 'conv_hr.bias', 'conv_last.weight', 'conv_last.bias'])

# %% [markdown]
# Any input size works, for every scale; with every weight at zero the output is exactly the bilinear resize.

# %%
#| hide
torch.manual_seed(0)
lq = torch.rand(2, 3, 9, 13)
for s in (2, 3, 4):
    test_eq(MSRResNet(num_feat=8, num_block=2, upscale=s)(lq).shape, (2, 3, 9 * s, 13 * s))
net = MSRResNet(num_feat=8, num_block=2)
with torch.no_grad():
    for p in net.parameters(): p.zero_()
with torch.no_grad(): test_eq(net(lq), F.interpolate(lq, scale_factor=4, mode='bilinear', align_corners=False))
test_fail(lambda: MSRResNet(upscale=8), contains='upscale must be 2, 3 or 4')

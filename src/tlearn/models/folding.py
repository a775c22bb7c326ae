"""Model surgery for faster inference: BatchNorm folded into convolutions, timm's padded "same"
convolutions given static padding, and :func:`folded_copy`, which applies both to a checked copy."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime.device import eval_mode


def fold_batchnorm(module: nn.Module) -> int:
    """Fold every eval-mode BatchNorm into the convolution just before it, in place; returns the count.

    ``BN(conv(x))`` with fixed statistics is one affine map per channel, so it can be merged
    into the convolution's weights and bias: one pass over the activations less per layer.
    "Just before" means the previous sibling in the module's child order, which is how
    torchvision and timm declare their conv-BN pairs; :func:`folded_copy` checks the result
    against the original network and discards it if they disagree.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    count = 0
    children = list(module.named_children())
    for (_, conv), (bn_name, bn) in zip(children, children[1:]):
        if (
            isinstance(conv, nn.Conv2d)
            and isinstance(bn, nn.BatchNorm2d)
            and bn.running_mean is not None
            and conv.out_channels == bn.num_features
        ):
            weight, bias = fuse_conv_bn_weights(
                conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
            )
            conv.weight, conv.bias = weight, bias
            # timm's BatchNormAct2d also holds the activation (and dropout) that follow the norm.
            rest = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None)) if isinstance(m, nn.Module)]
            setattr(module, bn_name, nn.Sequential(*rest) if rest else nn.Identity())
            count += 1
    for _, child in children:
        count += fold_batchnorm(child)
    return count


class StaticSamePadding(nn.Module):
    """A TensorFlow-"same" convolution (timm's ``Conv2dSame``) for one input size, without its pad.

    ``Conv2dSame`` pads every input, a copy of the whole activation, because with a stride "same"
    padding can be one pixel more at the bottom/right than at the top/left. For a known input size
    the same outputs come from the kernel grown by that pixel (a zero row and column before it) and
    ordinary symmetric padding: no copy, so inference is faster (figures in docs/performance.md).
    The outputs can differ in the last bits (the larger kernel may sum in another order;
    :func:`folded_copy` checks). Any other input size takes the original path.
    """

    def __init__(self, conv: nn.Conv2d, size: tuple[int, int]):
        super().__init__()
        self.original = conv
        self.size = tuple(size)
        padding, grown = [], []
        for length, k, s in zip(self.size, conv.kernel_size, conv.stride):
            total = max((math.ceil(length / s) - 1) * s + k - length, 0)
            padding.append(total - total // 2)  # the larger, bottom/right side
            grown.append(total % 2)  # bottom/right minus top/left: 0 or 1
        self.padding = tuple(padding)
        weight = F.pad(conv.weight.detach(), (grown[1], 0, grown[0], 0))
        layout = torch.channels_last if conv.weight.is_contiguous(memory_format=torch.channels_last) else None
        self.register_buffer("weight", weight.contiguous(memory_format=layout or torch.contiguous_format))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.size:
            return self.original(x)
        conv = self.original
        return F.conv2d(x, self.weight, conv.bias, conv.stride, self.padding, 1, conv.groups)


def static_same_padding(model: nn.Module, probe: torch.Tensor) -> int:
    """Swap each timm ``Conv2dSame`` in ``model`` for a :class:`StaticSamePadding` at the size
    ``probe`` gives it; returns the count. For inference copies only (see :func:`folded_copy`)."""
    from timm.layers import Conv2dSame

    sizes = {}

    def record(name: str):
        def hook(_, args) -> None:  # a pre-hook that returned something would replace the inputs
            sizes.setdefault(name, tuple(args[0].shape[-2:]))

        return hook

    convs = [(name, m) for name, m in model.named_modules() if type(m) is Conv2dSame and m.dilation == (1, 1)]
    hooks = [m.register_forward_pre_hook(record(name)) for name, m in convs]
    try:
        model(probe)
    finally:
        for hook in hooks:
            hook.remove()
    for name, conv in convs:
        if name in sizes:
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent), attr, StaticSamePadding(conv, sizes[name]))
    return len(sizes)


@torch.inference_mode()
def folded_copy(model: nn.Module, probe: torch.Tensor) -> nn.Module:
    """An eval-mode copy of ``model`` made faster for inference at ``probe``'s size, if it gives the
    same outputs; else ``model``.

    BatchNorm is folded into the convolutions (inference skips the normalisation's separate pass) and
    timm's padded "same" convolutions get static padding (:class:`StaticSamePadding`). The copy
    must match the original on ``probe`` (a few real inputs) to float rounding, 1e-4 of the
    outputs' scale.
    """
    if not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        return model
    fast = copy.deepcopy(model).eval()
    if fold_batchnorm(fast) == 0:
        return model
    static_same_padding(fast, probe)
    with eval_mode(model):  # modules shared with a trainable top keep their mode
        reference, candidate = model(probe).float(), fast(probe).float()
    scale = reference.abs().max().item() or 1.0
    return fast if (reference - candidate).abs().max().item() <= 1e-4 * scale else model

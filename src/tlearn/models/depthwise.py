"""A faster CPU backward pass for depthwise convolutions on small feature maps.

EfficientNet- and MobileNet-style backbones end in depthwise convolutions (one filter per channel,
5×5 in Lite0) over maps of 2×2 to 4×4 pixels when the input is small (64 px digits). oneDNN's
backward pass for those shapes is far slower than the arithmetic needs, many times slower than
the same layer's forward pass and slower still on the AVX2 kernels a CPU without AVX-512 runs, so
training spends a large share of a step there (figures in docs/performance.md).

:func:`depthwise_conv` computes the same gradients from operations that are fast for any shape:
the input's gradient is another depthwise convolution (a forward one, with the kernel flipped),
and the kernel's gradient is one product-and-sum per kernel tap over the overlap of the input and
the output gradient (taps that only ever meet padding get zero without work). The result equals
oneDNN's to float rounding (tested). It is used only where it was measured to pay: stride 1,
maps of at most :data:`SMALL_MAP` pixels, on the CPU, while gradients are recorded, outside
autocast; inference, export, mixed precision and the GPU keep the ordinary convolution.

:func:`small_map_depthwise` switches a model's trainable depthwise layers over for a block of
code (the Lightning fit, the time-budget probe) and back; parameters, their names and the
state dict never change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

# Largest map (height × width) given the custom backward. On maps up to 4×4 (Lite0's last stages
# at 64 px) it shortens a whole training step, natively and on AVX2 kernels; on 8×8 and larger maps
# oneDNN's own backward is as fast or faster (figures in docs/performance.md).
SMALL_MAP = 16


class _DepthwiseFunction(torch.autograd.Function):
    """Depthwise stride-1 convolution without bias; gradients as the module docstring describes."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, padding: tuple[int, int]) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        return F.conv2d(x, weight, None, 1, padding, 1, x.shape[1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        padding = ctx.padding
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            kh, kw = weight.shape[-2:]
            full = (kh - 1 - padding[0], kw - 1 - padding[1])  # the transposed convolution's padding
            grad_x = F.conv2d(grad, weight.flip(-2, -1), None, 1, full, 1, x.shape[1])
        if ctx.needs_input_grad[1]:
            grad_weight = _kernel_gradient(x, grad, weight, padding)
        return grad_x, grad_weight, None


def _overlap(inputs: int, outputs: int, offset: int) -> tuple[int, int]:
    """Output positions ``[start, stop)`` whose input position (output + ``offset``) is inside the map."""
    return max(0, -offset), min(outputs, inputs - offset)


def _kernel_gradient(x: torch.Tensor, grad: torch.Tensor, weight: torch.Tensor, padding) -> torch.Tensor:
    """d(loss)/d(weight) for a stride-1 depthwise convolution: one sum of products per kernel tap."""
    kh, kw = weight.shape[-2:]
    height, width = x.shape[-2:]
    out_height, out_width = grad.shape[-2:]
    taps = x.new_zeros(kh, kw, x.shape[1])
    for i in range(kh):
        dy = i - padding[0]
        top, bottom = _overlap(height, out_height, dy)
        for j in range(kw):
            dx = j - padding[1]
            left, right = _overlap(width, out_width, dx)
            if top < bottom and left < right:  # else this tap only ever meets padding: gradient 0
                inputs = x[:, :, top + dy : bottom + dy, left + dx : right + dx]
                taps[i, j] = (inputs * grad[:, :, top:bottom, left:right]).sum((0, 2, 3))
    layout = torch.channels_last if weight.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    return taps.permute(2, 0, 1).unsqueeze(1).contiguous(memory_format=layout)


def depthwise_conv(x: torch.Tensor, weight: torch.Tensor, padding: tuple[int, int]) -> torch.Tensor:
    """``F.conv2d(x, weight, padding=padding, groups=channels)`` with the small-map backward pass."""
    return _DepthwiseFunction.apply(x, weight, tuple(padding))


class SmallMapDepthwiseConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` that takes :func:`depthwise_conv` where it pays, else the ordinary path.

    Instances are made only by :func:`small_map_depthwise`, which changes the class of existing
    depthwise layers: the parameters and their names stay those of the original layer.
    """

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias):
        # Autocast does not reach inside a custom Function: under --precision bf16-mixed the
        # ordinary path keeps autocast's casts.
        small = x.shape[-2] * x.shape[-1] <= SMALL_MAP
        if (
            x.is_cpu
            and torch.is_grad_enabled()
            and weight.requires_grad
            and small
            and not torch.is_autocast_enabled("cpu")
        ):
            out = depthwise_conv(x, weight, self.padding)
            return out if bias is None else out + bias.view(1, -1, 1, 1)
        return super()._conv_forward(x, weight, bias)


def _eligible(module: nn.Module) -> bool:
    """A plain, trainable, stride-1, zero-padded, undilated depthwise ``nn.Conv2d`` with explicit padding."""
    if type(module) is not nn.Conv2d or not module.weight.requires_grad:
        return False
    depthwise = module.groups == module.in_channels == module.out_channels and module.groups > 1
    padding_ok = not isinstance(module.padding, str) and all(
        p <= k - 1 for p, k in zip(module.padding, module.kernel_size)
    )
    return (
        depthwise
        and padding_ok
        and module.stride == (1, 1)
        and module.dilation == (1, 1)
        and module.padding_mode == "zeros"
    )


@contextmanager
def small_map_depthwise(model: nn.Module, enabled: bool = True) -> Iterator[int]:
    """Within the block, ``model``'s eligible depthwise layers use the small-map backward (none
    when not ``enabled``); yields their count."""
    layers = [m for m in model.modules() if _eligible(m)] if enabled else []
    for layer in layers:
        layer.__class__ = SmallMapDepthwiseConv2d
    try:
        yield len(layers)
    finally:
        for layer in layers:
            layer.__class__ = nn.Conv2d

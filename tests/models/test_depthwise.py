"""The small-map depthwise backward: oneDNN's gradients to float rounding, and only where it applies."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tlearn.models.depthwise import SMALL_MAP, SmallMapDepthwiseConv2d, depthwise_conv, small_map_depthwise


def _gradients(fn, x, weight, upstream):
    x, weight = x.clone().requires_grad_(), weight.clone().requires_grad_()
    out = fn(x, weight)
    out.backward(upstream)
    return out.detach(), x.grad, weight.grad


@pytest.mark.parametrize(
    "channels,size,kernel,padding",
    [(24, 2, 5, 2), (16, 4, 5, 2), (8, 2, 3, 1), (12, 3, 3, 1), (6, 5, 5, 0), (10, 4, 3, 2), (5, 1, 5, 2)],
)
@pytest.mark.parametrize("channels_last", [True, False])
def test_gradients_match_the_ordinary_convolution(channels, size, kernel, padding, channels_last):
    generator = torch.Generator().manual_seed(channels * size + kernel)
    x = torch.randn(4, channels, size, size, generator=generator)
    weight = torch.randn(channels, 1, kernel, kernel, generator=generator)
    if channels_last:
        x, weight = (t.contiguous(memory_format=torch.channels_last) for t in (x, weight))
    out_size = size + 2 * padding - kernel + 1
    upstream = torch.randn(4, channels, out_size, out_size, generator=generator)

    expected = _gradients(lambda a, w: F.conv2d(a, w, None, 1, padding, 1, channels), x, weight, upstream)
    got = _gradients(lambda a, w: depthwise_conv(a, w, (padding, padding)), x, weight, upstream)
    for e, g in zip(expected, got):
        assert g.shape == e.shape
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=4),  # 16 px → 4×4 maps below
        nn.Conv2d(16, 16, 5, padding=2, groups=16, bias=True),  # eligible, with a bias
        nn.Conv2d(16, 16, 3, padding=1, groups=16, stride=2),  # stride 2: not eligible
        nn.Conv2d(16, 16, 3, padding=1, groups=4),  # grouped, not depthwise
        nn.Flatten(),
        nn.LazyLinear(3),
    )


def test_a_model_trains_to_the_same_numbers_with_and_without_it():
    x, y = torch.randn(8, 3, 18, 18), torch.randint(0, 3, (8,))
    runs = []
    for enabled in (False, True):
        net = _net()
        net(x)  # materialise the lazy layer before the optimiser sees it
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        with small_map_depthwise(net, enabled=enabled) as count:
            assert count == (1 if enabled else 0)
            assert isinstance(net[1], SmallMapDepthwiseConv2d) == enabled
            for _ in range(3):
                optimizer.zero_grad()
                F.cross_entropy(net(x), y).backward()
                optimizer.step()
        runs.append(net)
    assert type(runs[1][1]) is nn.Conv2d  # switched back when the block ends
    assert runs[0].state_dict().keys() == runs[1].state_dict().keys()
    for a, b in zip(runs[0].state_dict().values(), runs[1].state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_it_stays_out_of_inference_frozen_layers_and_large_maps(monkeypatch):
    calls = []

    def recorded(x, weight, padding):
        calls.append(x.shape)
        return depthwise_conv(x, weight, padding)

    monkeypatch.setattr("tlearn.models.depthwise.depthwise_conv", recorded)
    layer = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
    side = int(SMALL_MAP**0.5)
    with small_map_depthwise(layer):
        with torch.no_grad():
            layer(torch.randn(2, 8, side, side))  # no gradients recorded: the ordinary path
        layer(torch.randn(2, 8, side + 1, side + 1))  # larger than SMALL_MAP
        assert not calls
        layer(torch.randn(2, 8, side, side))
        assert len(calls) == 1
    frozen = nn.Conv2d(8, 8, 3, padding=1, groups=8).requires_grad_(False)
    with small_map_depthwise(frozen) as count:
        assert count == 0


def test_mixed_precision_keeps_the_ordinary_path(monkeypatch):
    """Autocast does not reach inside the custom Function: under bf16 autocast the layer stays ordinary."""
    calls = []
    monkeypatch.setattr("tlearn.models.depthwise.depthwise_conv", lambda *args: calls.append(args))
    net = nn.Sequential(nn.Conv2d(3, 8, 1), nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False))
    with small_map_depthwise(net) as count, torch.autocast("cpu", dtype=torch.bfloat16):
        assert count == 1
        net(torch.randn(2, 3, 4, 4)).float().sum().backward()
    assert not calls and net[1].weight.grad is not None

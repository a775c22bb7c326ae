"""Model surgery for inference: BatchNorm folding and static "same" padding keep the outputs."""

import pytest
import torch

from tlearn.models.folding import StaticSamePadding, fold_batchnorm, folded_copy


def _randomise_bn(module):
    gen = torch.Generator().manual_seed(0)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.2)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18", "mobilenet_v3_small"])
def test_batchnorm_folding_keeps_the_outputs(name):
    from tests.helpers import preprocessing
    from tlearn.data.augment import BatchPreprocessor
    from tlearn.models.backbones import create_backbone

    backbone = create_backbone(name, "imagenet" if name == "efficientnet_lite0" else "none")
    _randomise_bn(backbone)
    backbone.eval()
    prep = BatchPreprocessor(preprocessing(64, 3, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
    x = prep(torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8))
    fast = folded_copy(backbone, x)
    count = sum(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert fast is not backbone and count < sum(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.modules())
    with torch.no_grad():
        torch.testing.assert_close(fast(x), backbone(x), rtol=1e-4, atol=1e-4)
    assert fold_batchnorm(torch.nn.Linear(2, 2)) == 0


def test_folding_is_refused_when_the_order_lies():
    """A norm declared after its conv but applied before it must not be folded into it."""

    class PreNorm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(3)

        def forward(self, x):
            return self.conv(self.bn(x))

    net = PreNorm()
    _randomise_bn(net)
    net.eval()
    assert folded_copy(net, torch.randn(4, 3, 16, 16)) is net


@pytest.mark.parametrize(
    "kernel, stride, size", [(3, 2, (96, 96)), (5, 2, (48, 48)), (3, 2, (95, 64)), (4, 2, (9, 9)), (3, 1, (10, 10))]
)
def test_static_same_padding_gives_timm_same_convolution_outputs(kernel, stride, size):
    from timm.layers import Conv2dSame

    torch.manual_seed(0)
    conv = Conv2dSame(8, 8, kernel, stride, groups=8, bias=True)
    static = StaticSamePadding(conv, size)
    for shape in (size, (size[0] + 3, size[1] + 1)):  # its own size, and another one (the original path)
        x = torch.randn(2, 8, *shape)
        # a larger kernel may sum in another order on another CPU; wrong padding is off by O(1)
        torch.testing.assert_close(static(x), conv(x), rtol=1e-5, atol=1e-5)


def test_the_fast_copy_of_lite0_drops_every_same_pad_and_keeps_the_outputs():
    from timm.layers import Conv2dSame

    from tlearn.models.backbones import create_backbone

    backbone = create_backbone("efficientnet_lite0", "none").eval()
    probe = torch.randn(4, 3, 96, 96)
    fast = folded_copy(backbone, probe)
    assert fast is not backbone
    static = [m for m in fast.modules() if isinstance(m, StaticSamePadding)]
    assert len(static) == 5  # the stem and the four strided depthwise convolutions
    # each padded convolution is left only as the path for other input sizes
    assert {id(m.original) for m in static} == {id(m) for m in fast.modules() if isinstance(m, Conv2dSame)}
    with torch.inference_mode():
        torch.testing.assert_close(fast(probe), backbone(probe), rtol=1e-4, atol=1e-4)

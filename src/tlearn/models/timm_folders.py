"""Backbones from timm model folders: ``local-dir:DIR`` and ``hf-hub:ORG/NAME``.

Such a folder (what ``tlearn export --format timm`` writes, or any timm model on the Hugging Face
Hub) holds ``config.json`` and the weights; timm reads both. tlearn takes the architecture, the
weights and the preprocessing (input size, mean/std, crop) from it and fine-tunes on new classes;
``--weights imagenet`` (the default) means "the folder's weights", ``none`` its architecture only.
"""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError, WeightsError, one_line
from ..paths import offline_mode
from .weights import load_into, load_state_dict_file

PREFIXES = ("local-dir:", "hf-hub:")


def is_folder_model(name: str) -> bool:
    """True for ``local-dir:…`` and ``hf-hub:…`` backbone names."""
    return name.startswith(PREFIXES)


def folder_config(name: str) -> dict:
    """The pretrained config of a model folder: ``input_size`` (side), ``mean``/``std`` (3 values) and ``crop_pct``.

    Reads only ``config.json`` (from the folder, or the Hub / its cache), never the weights.
    """
    # timm's own parser of config.json (the one create_model uses), so both read a folder the same way.
    from timm.models._hub import load_model_config_from_hf, load_model_config_from_path

    source, _, where = name.partition(":")
    if source == "local-dir":
        try:
            cfg, _, _ = load_model_config_from_path(where)
        except FileNotFoundError:
            raise ConfigError(f"--backbone {name}: no timm model folder there (config.json not found)") from None
        except ValueError as err:  # malformed JSON
            raise ConfigError(f"--backbone {name}: unreadable config.json ({one_line(err, 160)})") from None
    else:
        if offline_mode() and not _in_hub_cache(where):
            raise WeightsError(f"--backbone {name}: not in the Hugging Face cache and downloads are off (offline)")
        try:
            cfg, _, _ = load_model_config_from_hf(where)
        except Exception as err:  # no such repo, no network, malformed JSON …
            raise WeightsError(
                f"--backbone {name}: cannot get its config.json from the Hugging Face Hub ({one_line(err, 160)})"
            ) from None

    def three(values) -> tuple[float, ...]:  # a 1-channel model stores one statistic; tlearn's resolver wants RGB
        values = tuple(float(v) for v in values)
        return values * 3 if len(values) == 1 else values

    return {
        "input_size": int(cfg.get("input_size", (3, 224, 224))[-1]),
        "mean": three(cfg.get("mean", (0.485, 0.456, 0.406))),
        "std": three(cfg.get("std", (0.229, 0.224, 0.225))),
        "crop_pct": float(cfg.get("crop_pct") or 0.875),
    }


def _in_hub_cache(repo: str) -> bool:
    from huggingface_hub import try_to_load_from_cache
    from timm.models._hub import hf_split

    repo_id, revision = hf_split(repo)
    return isinstance(try_to_load_from_cache(repo_id, "config.json", revision=revision), str)


def create_folder_model(name: str, weights: str, in_chans: int) -> nn.Module:
    """The timm model of a folder, with its weights (``imagenet``), none, or a state-dict file.

    timm adapts the first convolution to ``in_chans`` while loading: 3 → 1 sums the RGB filters (as
    tlearn does), 1 → 3 repeats the filter divided by 3 (the same output for a grey image in RGB).
    """
    import timm

    try:
        model = timm.create_model(name, pretrained=weights == "imagenet", in_chans=in_chans)
    except Exception as err:
        raise WeightsError(
            f"--backbone {name}: cannot build it with --in-chans {in_chans} ({one_line(err, 160)})"
        ) from None
    if weights not in ("imagenet", "none"):
        load_into(model, load_state_dict_file(weights), weights, ignore_prefixes=(model.pretrained_cfg["classifier"],))
    return model

"""Where tlearn looks outside a run directory, and whether it may use the network.

One home for each of these, so every layer agrees: the per-user cache (datasets downloaded
online, the frozen-feature cache), the dataset root a run reads, the torch hub cache that holds
torchvision weights, and the offline switch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

OFFLINE_VARIABLES = ("TLEARN_OFFLINE", "HF_HUB_OFFLINE")


def offline_mode() -> bool:
    """True when the user asked for no network access (``TLEARN_OFFLINE`` or ``HF_HUB_OFFLINE``)."""
    return any(os.environ.get(k, "") not in ("", "0") for k in OFFLINE_VARIABLES)


def cache_root() -> Path:
    """The per-user cache directory of tlearn (``$XDG_CACHE_HOME/tlearn`` or ``~/.cache/tlearn``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tlearn"


def default_data_root() -> Path:
    """Where datasets are downloaded when no folder is named."""
    return cache_root() / "datasets"


def data_root(explicit: Optional[str]) -> Path:
    """Dataset root: the explicit option, else ``$TLEARN_DATA_DIR``, else the user cache."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("TLEARN_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return default_data_root()


def feature_cache_dir(explicit: Optional[str]) -> Path:
    """Folder of the frozen-feature cache: the explicit option, else ``<cache root>/features``."""
    return Path(explicit).expanduser() if explicit else cache_root() / "features"


def torch_hub_checkpoint(url: str) -> Path:
    """The file the torch hub cache keeps for a weights URL (``$TORCH_HOME/hub/checkpoints/<name>``)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)

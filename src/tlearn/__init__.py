"""tlearn: transfer learning for image classification."""
__version__ = "0.1.0"

# The public API is imported lazily so that `import tlearn` (and `tlearn --help`) stays fast:
# torch, Lightning and timm load only when a function that needs them is called.
__all__ = ["train", "TrainConfig", "RunResult", "create_backbone", "load_model", "resolve_config"]


def __getattr__(name):
    if name == "train":
        from .train import train

        return train
    if name in ("TrainConfig", "resolve_config"):
        from . import config

        return getattr(config, name)
    if name == "RunResult":
        from .runs import RunResult

        return RunResult
    if name == "load_model":
        from .runs import load_model

        return load_model
    if name == "create_backbone":
        from .backbones import create_backbone

        return create_backbone
    raise AttributeError(f"module 'tlearn' has no attribute {name!r}")

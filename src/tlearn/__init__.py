"""tlearn: transfer learning for image classification."""

__version__ = "0.1.0"

# The public API is imported lazily so that `import tlearn` (and `tlearn --help`) stays fast:
# torch, Lightning and timm load only when a function that needs them is called.
_API = {
    "train": ("training.pipeline", "train"),
    "resume": ("training.pipeline", "resume"),
    "TrainConfig": ("config", "TrainConfig"),
    "resolve_config": ("config", "resolve_config"),
    "RESET": ("config", "RESET"),
    "RunResult": ("runs.directory", "RunResult"),
    "RunRecord": ("runs.record", "RunRecord"),
    "read_record": ("runs.record", "read_record"),
    "load_model": ("runs.spec", "load_model"),
    "load_run": ("runs.spec", "load_run"),
    "create_backbone": ("models.backbones", "create_backbone"),
}
__all__ = list(_API)


def __getattr__(name):
    if name not in _API:
        raise AttributeError(f"module 'tlearn' has no attribute {name!r}")
    from importlib import import_module

    module, attr = _API[name]
    return getattr(import_module(f".{module}", __name__), attr)

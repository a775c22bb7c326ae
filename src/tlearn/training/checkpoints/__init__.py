"""tlearn's Lightning checkpoints: ``slimming`` (without the weights that cannot change) and
``writer`` (straight to a local file, atomically; imported only where a Trainer is built, so that
this package does not load Lightning)."""

from .slimming import CONSTANT_KEY, ConstantStateSlimmer, constant_state

__all__ = ["CONSTANT_KEY", "ConstantStateSlimmer", "constant_state"]

"""Checkpoints without the weights that cannot change.

A frozen backbone never changes during a run, so writing it again every epoch only costs time
and disk (most of an epoch on cached features). A checkpoint keeps the names and a digest of
what it leaves out; resuming takes those tensors from the rebuilt model and refuses to go on if
they differ from the ones the run started with.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from ...errors import RunError
from ...models.transfer import is_frozen

CONSTANT_KEY = "tlearn_constant_state"


def constant_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """State-dict entries training leaves untouched: frozen parameters, and the running
    statistics of frozen BatchNorm layers (``TransferModel.train`` keeps those in eval mode)."""
    found = {}
    for prefix, child in module.named_modules():
        dot = f"{prefix}." if prefix else ""
        found.update({dot + name: p for name, p in child.named_parameters(recurse=False) if not p.requires_grad})
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and is_frozen(child):
            found.update({dot + name: b for name, b in child.named_buffers(recurse=False) if b is not None})
    return found


def state_digest(state: dict[str, torch.Tensor], keys: list[str]) -> str:
    """A digest of the named tensors' values, shapes and dtypes."""
    digest = hashlib.blake2b(digest_size=16)
    for key in keys:
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class ConstantStateSlimmer:
    """Leaves a module's constant state out of its checkpoints and puts it back on resume.

    The digest of the constant tensors is computed once per set of keys, not at every save.
    """

    def __init__(self) -> None:
        self._digest_of: tuple = (None, None)

    def slim(self, module: nn.Module, checkpoint: dict) -> None:
        """Remove the constant entries from ``checkpoint["state_dict"]``, recording names and digest."""
        constant = sorted(k for k in constant_state(module) if k in checkpoint["state_dict"])
        if not constant:
            return
        if self._digest_of[0] != constant:
            self._digest_of = (constant, state_digest(module.state_dict(), constant))
        for key in constant:
            del checkpoint["state_dict"][key]
        checkpoint[CONSTANT_KEY] = {"keys": constant, "digest": self._digest_of[1]}

    @staticmethod
    def refill(module: nn.Module, checkpoint: dict) -> None:
        """Put the left-out entries back from ``module``, after checking they are the same tensors."""
        left_out = checkpoint.get(CONSTANT_KEY)
        if not left_out:
            return
        own = module.state_dict()
        missing = [k for k in left_out["keys"] if k not in own]
        if missing or state_digest(own, left_out["keys"]) != left_out["digest"]:
            raise RunError(
                "cannot resume: the frozen weights differ from those this run started with "
                "(was the pretrained weights file replaced?); start a new run"
            )
        checkpoint["state_dict"].update({k: own[k].detach().clone() for k in left_out["keys"]})

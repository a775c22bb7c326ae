"""How Lightning writes tlearn's checkpoints: straight to a local file, atomically.

Lightning's ``TorchCheckpointIO`` serialises a checkpoint into an in-memory buffer and then copies
that through fsspec, so that remote paths work too. Run directories are local, and there the copy
is pure cost: ``last.ckpt`` is written after every epoch (the trainable weights and AdamW's two
moments), so the extra copy is paid every epoch and adds up over a short run (figures in
docs/performance.md). :class:`DirectCheckpointIO` streams ``torch.save`` into a temporary
file beside the target and renames it over the target (:func:`tlearn.fileio.atomic_write`), so a
crash mid-save still leaves the previous checkpoint whole. Remote paths keep Lightning's writer.

Imported only where a Trainer is built, so that commands which never train do not load Lightning.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from lightning.fabric.plugins import TorchCheckpointIO

from ...fileio import atomic_write


class DirectCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` that writes local checkpoints without an in-memory copy (see the module docstring)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Optional[Any] = None) -> None:
        remote = "://" in str(path) and not str(path).startswith("file://")
        if storage_options is not None or remote:
            return super().save_checkpoint(checkpoint, path, storage_options)  # Lightning's checks and writer
        try:
            atomic_write(str(path).removeprefix("file://"), lambda handle: torch.save(checkpoint, handle))
        except RuntimeError as err:
            # A write that fails part-way (a full disk) surfaces from torch's zip writer as a
            # RuntimeError about the file position, with the OSError only as its context: raise the
            # OSError, which the pipeline turns into its one-line "disk full, resume with" message.
            behind = _os_error_behind(err)
            if behind is None:
                raise
            raise behind from err


def _os_error_behind(err: BaseException) -> Optional[OSError]:
    """The first ``OSError`` in ``err``'s chain of causes and contexts, if any."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None

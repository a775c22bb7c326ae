"""How training went, whichever loop ran it: Lightning's Trainer or the head loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class TrainingOutcome:
    """The epochs trained and how training ended (Lightning's Trainer or :mod:`.head_loop`)."""

    rows: list[dict]  # one per finished epoch
    interrupted: bool  # Ctrl-C stopped it
    seconds: float
    restore_best: Optional[Callable[[], int]] = None  # loads the best validation epoch's weights, returns its number
    stopped_early: bool = False
    main: bool = True  # rank 0, or the only process: it evaluates and writes the run
    processes: int = 1
    loggers: list = field(default_factory=list)  # Lightning's loggers, for the final test scores
    resumable: bool = True  # checkpoints/last.ckpt holds what --resume needs
    trainer: str = "lightning"

    @property
    def epochs(self) -> int:
        """Epochs finished."""
        return len(self.rows)

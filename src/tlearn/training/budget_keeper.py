"""The time budget during training: a Lightning callback that keeps the planned epochs inside the
budget as the machine's speed drifts.

A machine's speed drifts during a run (on a shared VM the same epoch's time can vary widely within
minutes, at the same settings), so after each epoch the keeper re-plans the epochs from the epochs'
measured times, and the LR schedule with them. It works through public API only: the trainer is
built with room for more epochs (``max_epochs``), the keeper stops it with ``trainer.should_stop``
when the plan is done (as Lightning's ``Timer`` does), and it asks the LightningModule to stretch
or shrink its schedule (``TransferLearner.reschedule``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any, Optional

from lightning.pytorch.callbacks import Callback

from .budget import BudgetPlan

# The keeper may lengthen a run to at most this many times its planned epochs (the trainer's room).
GROWTH_LIMIT = 4


class BudgetKeeper(Callback):
    """Re-plans the number of epochs at the end of each epoch, and ends training when the plan is done.

    The plan is kept while it ends between two deadlines: the budget less the reserve (``SAFETY``)
    and the whole budget, each less the evaluation and outputs. Re-planning at every small change
    of the estimate made the planned epochs swing up and down within one run, and each
    swing bends the cosine schedule. So the keeper shortens the run only when the plan would overrun
    the whole budget, and lengthens it only when more epochs fit inside the reserve-kept deadline,
    from at least one epoch after the first (whose time includes one-off set-up), only in the first
    half of the run (later a longer schedule would raise the learning rate again) and only when the
    schedule can follow. Either way it re-plans to the reserve-kept deadline. ``changes`` records
    each re-plan as ``(after epoch, new epochs)``; ``on_change`` is told the new number (the run
    saves it in config.yaml, so a resume trains the same epochs).
    """

    def __init__(self, plan: BudgetPlan, clock: Callable[[], float], on_change: Callable[[int], None]) -> None:
        self.deadline, self.limit = plan.deadlines
        self.clock = clock  # seconds spent since the run started
        self.on_change = on_change
        self.planned = plan.epochs
        self.room = plan.epochs * GROWTH_LIMIT  # the trainer's max_epochs
        self.durations: list[float] = []
        self.changes: list[tuple[int, int]] = []
        self._epoch_started: Optional[float] = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_started = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._epoch_started is not None:
            self.epoch_done(trainer.current_epoch + 1, time.perf_counter() - self._epoch_started, pl_module)
        if trainer.current_epoch + 1 >= self.planned:
            trainer.should_stop = True

    def epochs_that_fit(self, done: int, deadline: Optional[float] = None) -> int:
        """Epochs in all that end by ``deadline`` (the reserve-kept one by default), given ``done``
        finished epochs and the time they took."""
        recent = self.durations[1:] or self.durations
        per_epoch = statistics.mean(recent)
        left = (self.deadline if deadline is None else deadline) - self.clock()
        return done + max(0, int(left // per_epoch))

    def epoch_done(self, done: int, seconds: float, learner: Any) -> None:
        """Re-plan after ``done`` epochs, the last of which (validation included) took ``seconds``;
        ``learner`` is asked to follow with its LR schedule."""
        self.durations.append(seconds)
        planned = self.planned
        target = min(self.room, max(done, self.epochs_that_fit(done)))
        behind = planned > self.epochs_that_fit(done, self.limit)  # shorten, at any epoch
        if not behind and (target <= planned or not self._can_grow(done, planned)):
            return
        followed = learner.reschedule(target)
        if target > planned and not followed:  # a longer run whose schedule cannot follow: keep the plan
            return
        self.planned = target
        self.changes.append((done, target))
        self.on_change(target)

    def _can_grow(self, done: int, planned: int) -> bool:
        # A measured epoch besides the first, and the first half of the run.
        return len(self.durations) > 1 and done * 2 <= planned

    def state_dict(self) -> dict[str, Any]:
        return {"planned": self.planned, "durations": list(self.durations), "changes": [list(c) for c in self.changes]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.planned = int(state_dict.get("planned", self.planned))
        self.durations = [float(d) for d in state_dict.get("durations", [])]
        self.changes = [(int(a), int(b)) for a, b in state_dict.get("changes", [])]

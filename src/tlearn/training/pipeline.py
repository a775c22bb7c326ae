"""``tlearn.train(config)``: the whole pipeline from a config to a finished run directory.

A run reads as its phases: prepare (data, model, what the trainer is fed) → open the run
directory → the recipe's stage (with ``--recipe``) → the time budget's stage (with
``--time-budget``) → fit → finish (evaluate, write).
Each phase is a method of :class:`~.run.Run` or a module of its own that takes the run.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import Optional

import torch

from ..config import TrainConfig, make_config, read_yaml
from ..errors import RunError, TrainingInterrupted, one_line
from ..runs.directory import RunResult, run_metrics
from .distributed import RUN_DIR_ENV, check_distributed, launch_environment, launch_rank
from .finish import finish_run
from .fitting import fit_run
from .loggers import check_packages
from .outcome import TrainingOutcome
from .run import Run


def train(config: TrainConfig, resume_from: Optional[Path] = None, overwrite: bool = False) -> Optional[RunResult]:
    """Train, evaluate on the test split and write the run directory; returns a :class:`RunResult`.

    ``resume_from``: a Lightning checkpoint of this run (see :func:`resume`) to continue from.
    ``overwrite``: replace a run already in ``config.out`` (else such a directory is refused).
    Under DDP every rank calls this; rank 0 evaluates, writes and returns the result, the other
    ranks return ``None`` once training ends.
    """
    with launch_environment():
        try:
            return _train(config, resume_from, overwrite)
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise RunError(_disk_full_message(resume_from)) from None


def resume(run_dir: str | Path) -> RunResult:
    """Continue an interrupted run from its last finished epoch, with its own saved config.

    A run that trained only a head on cached features keeps no checkpoint (see
    :mod:`.head_loop`): it starts again in its own directory, its features read from the cache.
    """
    run_dir = Path(run_dir)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    if not (run_dir / "config.yaml").is_file():
        raise RunError(f"cannot resume {run_dir}: not a tlearn run directory (no config.yaml)")
    config = make_config({**read_yaml(run_dir / "config.yaml"), "out": str(run_dir)}, str(run_dir / "config.yaml"))
    if not checkpoint.is_file():
        if run_metrics(run_dir).get("resumable") is False:
            return train(config, overwrite=True)
        raise RunError(
            f"cannot resume {run_dir}: no checkpoint yet (it stopped before finishing an epoch); start it again with "
            f"tlearn train --config {run_dir / 'config.yaml'} --out {run_dir} --overwrite"
        )
    try:  # refuse anything but plain tensors and containers before Lightning touches the file
        torch.load(str(checkpoint), map_location="cpu", weights_only=True)
    except Exception as err:
        raise RunError(f"refusing to load {checkpoint}: not a plain tensor checkpoint ({one_line(err, 160)})") from None
    return train(config, resume_from=checkpoint)


def _disk_full_message(resume_from: Optional[Path]) -> str:
    run_dir = resume_from.parent.parent if resume_from else os.environ.get(RUN_DIR_ENV)
    advice = "free some space or write runs to another disk with --out"
    if run_dir and (Path(run_dir) / "checkpoints" / "last.ckpt").is_file():
        return (
            f"no space left on device while writing {run_dir}: {advice}, "
            f"then resume with: tlearn train --resume {run_dir}"
        )
    return (
        f"no space left on device{f' while writing {run_dir}' if run_dir else ''}: {advice}, then start the run again"
    )


def _train(config: TrainConfig, resume_from: Optional[Path], overwrite: bool) -> Optional[RunResult]:
    started = time.perf_counter()
    check_distributed(config)
    check_packages(config.loggers)  # a missing tracker package fails before any data is read
    main = launch_rank(config) == 0
    run = Run.prepare(config, started)
    run.resume_from = resume_from
    run.open_directory(main, overwrite)
    recipe = _recipe_stage(run)
    budget = _budget_stage(run)
    outcome = fit_run(run, *budget.fit_arguments())
    if budget.keeper is not None and budget.keeper.changes:
        run.reconfigure(epochs=outcome.epochs)
    if not outcome.main:
        return None
    if outcome.interrupted:
        _stop_interrupted(run, outcome)
    recipe_record = recipe.to_dict() if recipe is not None else None
    return finish_run(run, outcome, {"time_budget": budget.record(), "recipe": recipe_record})


def _recipe_stage(run: Run):
    """With ``--recipe``, choose (or take) how the run trains and save it in config.yaml; a resumed
    run trains the recipe its config.yaml already names."""
    if run.config.recipe == "none" or run.resume_from is not None:
        return None
    from .recipe import recipe_stage

    choice = recipe_stage(run)
    run.save_config()
    return choice


class _BudgetStage:
    """What the time budget's stage leaves for the fit: its plan and the callback that keeps it."""

    def __init__(self, plan=None, keeper=None) -> None:
        self.plan, self.keeper = plan, keeper

    def fit_arguments(self) -> tuple[list, Optional[int]]:
        """``Run.fit``'s callbacks and room for epochs."""
        return ([self.keeper], self.keeper.room) if self.keeper is not None else ([], None)

    def record(self) -> Optional[dict]:
        """``metrics.json``'s ``time_budget``: the plan and every re-plan, or None without a budget."""
        return {**self.plan.to_dict(), "refits": self.keeper.changes} if self.plan is not None else None


def _budget_stage(run: Run) -> _BudgetStage:
    """With ``--time-budget`` (and not resuming: a resumed run trains its saved epochs), plan the run
    to the budget and make the callback that keeps it; each re-plan is saved in config.yaml, so a
    resume agrees."""
    if not run.config.time_budget or run.resume_from is not None:
        return _BudgetStage()
    from .budget import fit_to_budget
    from .budget_keeper import BudgetKeeper

    plan = fit_to_budget(run)
    config = run.config
    keeper = BudgetKeeper(plan, run.seconds_spent, lambda epochs: run.save_config(config.with_changes(epochs=epochs)))
    return _BudgetStage(plan, keeper)


def _stop_interrupted(run: Run, outcome: TrainingOutcome) -> None:
    """Ctrl-C: mark the run resumable (or not) and stop with how to go on."""
    done = outcome.epochs
    run.write_state({"complete": False, "interrupted": True, "epochs_done": done, "resumable": outcome.resumable})
    again = "" if outcome.resumable else " (it trains the head again, on the cached features)"
    raise TrainingInterrupted(
        f"interrupted after {done} finished epoch(s); resume with: tlearn train --resume {run.directory}{again}"
    )

"""``--time-budget SECONDS``: fit a run's epochs, and so its LR schedule, to a wall-clock budget.

Before training, a few real training steps and an inference batch are timed on a copy of the
trainable module (with the random generators saved and restored, so the run itself is exactly the
one a fixed ``--epochs`` would give). From them: the seconds of one epoch (steps plus validation),
of the test evaluation and of writing the outputs; the run gets as many whole epochs as fit in what
is left of the budget (counted from the start of ``tlearn train``'s process, or of the ``train()``
call in Python). The cosine schedule then decays over exactly those
epochs. The chosen number is printed, saved in config.yaml (as ``epochs``) and in metrics.json.

When the budget leaves fewer than ``MIN_EPOCH_SHARE`` of the configured epochs, more epochs are
worth more than what buys them. Two levers, in this order: :func:`lighter_freeze` freezes the
high-resolution stages (the default recipe under a 60 s budget, seeds 0-2 three times on two
kernel sets, AMD EPYC: 98.12-98.78 %, against 97.93-98.36 % in the same hour at a smaller size
with nothing frozen), then, if still too few fit, :func:`smaller_size` shrinks the images (8
epochs at 64 px beat 4 at 80 px). The pipeline prepares the run afresh for each. A machine's
speed drifts during a run (on the 2-core reference VM epochs
took from 3.8 to 5.4 s at the same settings within minutes), so :class:`BudgetKeeper` re-fits the
epochs at the end of each epoch from the epochs' measured times, and the cosine schedule with them.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Optional

import torch
from torch.utils.data import default_collate

from ..config import FreezeSpec
from ..data.augment import BatchPreprocessor
from ..inference import folded_copy
from ..models.depthwise import small_map_depthwise
from ..runtime import BatchSizeTuner, eval_mode, inference_batch_size
from .optim import OptimSettings, make_optimizer
from .setup import FitInputs, Prepared

# Saving the model, drawing the plots and the report, and the process's exit (measured 1.2-1.5 s on
# the reference 2-core CPU).
OUTPUT_SECONDS = 2.0
# Lightning's own work per epoch: checkpoints written, metrics logged.
EPOCH_OVERHEAD_SECONDS = 0.4
# The estimates are good to a few per cent; a reserve keeps the run inside the budget.
SAFETY = 0.92
# The median of a few steps; the epochs are re-fitted from real epochs as the run goes (BudgetKeeper).
TIMED_STEPS = 3
# Timed passes of each inference batch size; each size's time is their median.
TIMED_PASSES = 2
# A whole evaluation costs more than its timed passes: the batch-size tuner's trial and re-check
# batches at slower sizes, each batch's preprocessing, the folded copy. In 24 budgeted runs of the
# default recipe (AMD EPYC, both kernel sets) the test took 0.85-1.76x the one-pass estimate, median
# 1.18x, and two runs of 24 ended 1.3 and 2.0 s over the budget. Nothing re-fits the test afterwards.
EVALUATION_OVERHEAD = 1.15
MIN_EPOCH_SHARE = 0.6
# The smallest image size tried, as a share of the configured one (rounded to a multiple of 8).
MIN_SIZE_SHARE = 0.7


@dataclass
class BudgetFit:
    """What the budget allowed, and the measurements it was fitted from."""

    budget_seconds: float
    epochs: int
    image_size: int
    elapsed_before: float
    step_seconds: float
    example_seconds: float
    epoch_seconds: float
    evaluation_seconds: float
    freeze: str = "none"

    def to_dict(self) -> dict:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}

    def summary(self) -> str:
        return (
            f"Time budget {self.budget_seconds:.0f} s: {self.epochs} epoch(s) at {self.image_size} px of about "
            f"{self.epoch_seconds:.1f} s fit "
            f"({self.step_seconds * 1000:.0f} ms per step, test evaluation about {self.evaluation_seconds:.1f} s, "
            f"{self.elapsed_before:.1f} s already spent)"
        )


def _first_batch(fit_in: FitInputs) -> tuple[torch.Tensor, torch.Tensor]:
    loader = fit_in.train_loader
    size = min(loader.batch_size or 1, len(loader.dataset))
    return default_collate([loader.dataset[i] for i in range(size)])


def _resized(inputs: torch.Tensor, size: Optional[int]) -> torch.Tensor:
    if size is None or size == inputs.shape[-1] or inputs.dim() != 4:
        return inputs
    return torch.nn.functional.interpolate(inputs, size=(size, size), mode="bilinear", align_corners=False)


def _time_steps(fit_in: FitInputs, config, device: torch.device, size: Optional[int] = None) -> float:
    """Median seconds of a training step (forward, backward, update) on a copy of the trainable module,
    on the run's first batch (resized to ``size`` to estimate another image size)."""
    module = copy.deepcopy(fit_in.module).to(device).train()
    optimizer = make_optimizer(module, OptimSettings.of(config), total_steps=1)["optimizer"]  # the run's own
    preprocess = BatchPreprocessor(fit_in.preprocessor.prep, config.augment) if fit_in.preprocessor else None
    images, labels = (t.to(device) for t in _first_batch(fit_in))
    times = []
    with small_map_depthwise(module, enabled=not config.compile):  # as the fit will run it
        for _ in range(TIMED_STEPS + 1):  # the first step pays one-off allocations: not counted
            started = time.perf_counter()
            inputs = _resized(preprocess(images, train=True) if preprocess is not None else images, size)
            loss = torch.nn.functional.cross_entropy(module(inputs).float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


@torch.inference_mode()
def _time_inference(fit_in: FitInputs, p: Prepared, device: torch.device, size: Optional[int] = None) -> float:
    """Seconds per evaluated example through the BatchNorm-folded trainable module; on the CPU, at the
    fastest of the batch sizes the evaluation's tuner tries first (see ``runtime.BatchSizeTuner``).

    Each size's time is the median of ``TIMED_PASSES`` passes: the fastest of single passes picked
    the luckiest of a noisy few (at 72 px four estimates ran 8.2-15.5 s for a 9.4-10.8 s evaluation).
    """
    module = copy.deepcopy(fit_in.module).to(device)
    batch = inference_batch_size(device)
    tuned = [BatchSizeTuner.BASE * m for m in BatchSizeTuner.MULTIPLES if BatchSizeTuner.BASE * m <= batch]
    sizes = tuned if device.type == "cpu" else [batch]
    source = fit_in.test_inputs
    if torch.is_tensor(source):
        inputs = source[:batch].to(device)
    else:
        inputs = BatchPreprocessor(p.prep)(next(iter(source.batches(batch))).to(device))
    inputs = _resized(inputs, size)
    with eval_mode(module):
        module = folded_copy(module, inputs[:8])
        rates = []
        for n in sizes:
            chunk = inputs[:n]
            module(chunk)  # the first pass of a shape pays one-off set-up
            passes = []
            for _ in range(TIMED_PASSES):
                started = time.perf_counter()
                module(chunk)
                passes.append(time.perf_counter() - started)
            rates.append(statistics.median(passes) / len(chunk))
    return min(rates)


def _fit(config, p: Prepared, fit_in: FitInputs, step: float, per_example: float, elapsed: float, size: int):
    steps = math.ceil(len(fit_in.train_loader) / config.accumulate) * config.accumulate
    evaluated = per_example * EVALUATION_OVERHEAD
    validation = evaluated * len(p.splits.val) if p.splits.val is not None else 0.0
    epoch = steps * step + validation + EPOCH_OVERHEAD_SECONDS
    evaluation = evaluated * len(p.splits.test) * config.tta
    available = config.time_budget * SAFETY - elapsed - evaluation - OUTPUT_SECONDS
    epochs = max(1, int(available // epoch))
    freeze = str(config.freeze)
    return BudgetFit(config.time_budget, epochs, size, elapsed, step, per_example, epoch, evaluation, freeze)


def fit_epochs(
    config, p: Prepared, fit_in: FitInputs, clock: Callable[[], float], per_example: Optional[float] = None
) -> BudgetFit:
    """The epochs that fit in ``config.time_budget`` seconds; ``clock()`` is the time already spent.
    ``per_example``: the evaluation's seconds per example where already timed (freezing leaves it)."""
    device = torch.device(p.device)
    with torch.random.fork_rng(devices=[]):  # the timing steps draw no number the run will draw
        step = _time_steps(fit_in, config, device)
        if per_example is None:
            per_example = _time_inference(fit_in, p, device)
    return _fit(config, p, fit_in, step, per_example, clock(), p.prep.image_size)


def refit(config, p: Prepared, fit_in: FitInputs, fit: BudgetFit, elapsed: float) -> BudgetFit:
    """``fit``'s step time applied to a run prepared afresh at its size, ``elapsed`` seconds in, with
    the evaluation timed again at that size: interpolated from two other sizes, it came out 1.15-1.2x
    short at 72 px (AMD EPYC), where the step's error is corrected by the keeper from real epochs."""
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        per_example = _time_inference(fit_in, p, torch.device(p.device))
    elapsed += time.perf_counter() - started
    return _fit(config, p, fit_in, fit.step_seconds, per_example, elapsed, fit.image_size)


def too_few_epochs(config, fit: BudgetFit) -> bool:
    """Whether ``fit`` leaves fewer than ``MIN_EPOCH_SHARE`` of the configured epochs."""
    return fit.epochs < math.ceil(MIN_EPOCH_SHARE * config.epochs)


def lighter_freeze(config, p: Prepared, fit_in: FitInputs, fit: BudgetFit) -> Optional[FreezeSpec]:
    """``until:<stage>`` freezing the high-resolution stages (see ``Backbone.high_resolution_end``)
    when ``fit`` has too few epochs and less is frozen now; None otherwise.

    Those stages cost much of a step and learn least from a few images: the fast recipe froze
    them at no measured cost in accuracy for 0.70x the step (0.8x at the default's 80 px). It is
    taken without timing the frozen step against the other: it is always the shorter, and on a
    shared CPU the timings' noise is as large as the gain. Not with gradual unfreezing (it
    schedules the freezing itself) or on cached activations (the frozen part is paid for already).
    """
    if not too_few_epochs(config, fit) or config.schedule == "gradual" or fit_in.cache.get("used"):
        return None
    if config.freeze.kind == "backbone":
        return None
    backbone = p.model.backbone
    end = backbone.high_resolution_end(p.prep.in_chans, p.prep.image_size)
    if end is None:
        return None
    if config.freeze.kind == "until" and backbone.stages.index(config.freeze.stage) >= backbone.stages.index(end):
        return None
    return FreezeSpec("until", end)


def smaller_size(config, p: Prepared, fit_in: FitInputs, fit: BudgetFit, restart_seconds: float) -> Optional[BudgetFit]:
    """The fit at a smaller image size where ``MIN_EPOCH_SHARE`` of the configured epochs fit (or where
    the most fit, if none reaches it), when the configured size leaves fewer; None to keep the size.

    Not for cached activations (their cost is paid before the fit) or models that take one size only.
    ``restart_seconds`` is what preparing the run again costs. Only the smallest size is timed; the
    sizes between are interpolated in the pixel count (each timing costs seconds of the budget).
    """
    wanted = math.ceil(MIN_EPOCH_SHARE * config.epochs)
    lowest = max(32, 8 * round(MIN_SIZE_SHARE * fit.image_size / 8))
    if not too_few_epochs(config, fit) or fit_in.cache.get("used") or lowest >= fit.image_size:
        return None
    device = torch.device(p.device)
    try:
        with torch.random.fork_rng(devices=[]):
            low = _time_steps(fit_in, config, device, lowest), _time_inference(fit_in, p, device, lowest)
    except RuntimeError:  # a model built for one input size
        return None
    high = fit.step_seconds, fit.example_seconds
    best = fit
    for size in range(fit.image_size - 8, lowest - 1, -8):
        share = (size**2 - lowest**2) / (fit.image_size**2 - lowest**2)
        step, per_example = (lo + share * (hi - lo) for lo, hi in zip(low, high))
        candidate = _fit(config, p, fit_in, step, per_example, fit.elapsed_before + restart_seconds, size)
        if candidate.epochs > best.epochs:
            best = candidate
        if candidate.epochs >= wanted:
            break
    return best if best is not fit else None


class BudgetKeeper:
    """A Lightning callback that re-fits the number of epochs at the end of each epoch.

    The plan is kept while it ends between two deadlines: the budget less the reserve (``SAFETY``)
    and the whole budget, each less the evaluation and outputs. Re-fitting at every small change of
    the estimate made runs swing (12 → 10 → 14 → 12 → 11 epochs in one measured run), and each
    swing bends the cosine schedule. So the keeper shortens the run only when the plan would
    overrun the whole budget, and lengthens it only when more epochs fit inside the reserve-kept
    deadline, from at least one epoch after the first (whose time includes one-off set-up), and
    only in the first half of the run (later a longer schedule would raise the learning rate
    again). Either way it re-fits to the reserve-kept deadline and sets the cosine schedule's total
    steps to match. ``changes`` records each re-fit as ``(after epoch, new epochs)``.
    """

    def __init__(self, fit: BudgetFit, clock: Callable[[], float], on_change: Callable[[int], None]) -> None:
        self.limit = fit.budget_seconds - fit.evaluation_seconds - OUTPUT_SECONDS
        self.deadline = fit.budget_seconds * SAFETY - fit.evaluation_seconds - OUTPUT_SECONDS
        self.clock = clock
        self.on_change = on_change  # told the new number of epochs (the run saves it in config.yaml)
        self.durations: list[float] = []
        self.changes: list[tuple[int, int]] = []
        self._started = 0.0

    def callback(self):
        """The Lightning ``Callback`` that drives this keeper."""
        from lightning.pytorch.callbacks import Callback

        keeper = self

        class _Keeper(Callback):
            def on_train_epoch_start(self, trainer, module) -> None:
                keeper._started = time.perf_counter()

            def on_train_epoch_end(self, trainer, module) -> None:
                keeper.epoch_done(trainer, time.perf_counter() - keeper._started)

        return _Keeper()

    def epochs_that_fit(self, done: int, deadline: Optional[float] = None) -> int:
        """Epochs in all that end by ``deadline`` (the reserve-kept one by default), given ``done``
        finished epochs and the time they took."""
        recent = self.durations[1:] or self.durations
        per_epoch = statistics.mean(recent)
        left = (self.deadline if deadline is None else deadline) - self.clock()
        return done + max(0, int(left // per_epoch))

    def epoch_done(self, trainer, seconds: float) -> None:
        """Re-fit after an epoch (validation included) that took ``seconds``."""
        self.durations.append(seconds)
        done, planned = trainer.current_epoch + 1, trainer.fit_loop.max_epochs
        target = max(done, self.epochs_that_fit(done))
        per_config = [getattr(c.scheduler, "lr_lambdas", []) for c in trainer.lr_scheduler_configs]
        adjustable = [s for schedules in per_config for s in schedules if hasattr(s, "total_steps")]
        behind = planned > self.epochs_that_fit(done, self.limit)  # shorten, at any epoch
        if not behind and (target <= planned or not self._can_grow(done, planned, per_config)):
            return
        trainer.fit_loop.max_epochs = target
        steps = math.ceil(trainer.num_training_batches / max(1, trainer.accumulate_grad_batches))
        for schedule in adjustable:
            schedule.total_steps = max(1, target * steps)
        self.changes.append((done, target))
        self.on_change(target)

    def _can_grow(self, done: int, planned: int, per_config: list) -> bool:
        # A measured epoch besides the first, the first half of the run, and every schedule (one per
        # parameter group in each scheduler) able to follow (one-cycle's phases are fixed when built).
        return (
            len(self.durations) > 1
            and done * 2 <= planned
            and all(schedules and all(hasattr(s, "total_steps") for s in schedules) for schedules in per_config)
        )

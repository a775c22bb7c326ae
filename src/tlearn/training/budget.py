"""``--time-budget SECONDS``: the stage that fits a run's epochs, and so its LR schedule, to a
wall-clock budget before training (:func:`fit_to_budget`); :mod:`.budget_keeper` keeps the plan
during training.

Before training, a few real training steps of the run's own objective (its loss terms, under its
autocast) and an inference batch are timed on a copy of the trainable module, with the random
generators saved and restored, so the run itself is exactly the one a fixed ``--epochs`` would
give. From them: the seconds of one epoch (steps plus validation), of the test evaluation and of
writing the outputs; the run gets as many whole epochs as fit in what is left of the budget
(counted from the start of ``tlearn train``'s process, or of the ``train()`` call in Python). The
cosine schedule then decays over exactly those epochs. The chosen number is reported, saved in
config.yaml (as ``epochs``) and in metrics.json.

When the budget leaves fewer than ``MIN_EPOCH_SHARE`` of the configured epochs, more epochs are
worth more than what buys them. Two levers, in this order: :func:`lighter_freeze` freezes the
high-resolution stages, then, if still too few fit, :func:`smaller_size` shrinks the images. The
run is reconfigured for each (:meth:`~.run.Run.reconfigure`). What each lever measured is in the
benchmark docs (docs/performance.md).
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Optional

import torch

from ..config import FreezeSpec
from ..data.augment import BatchPreprocessor
from ..messages import say
from ..models.depthwise import small_map_depthwise
from ..models.folding import folded_copy
from ..runtime import BatchSizeTuner, autocast_dtype, eval_mode, inference_batch_size
from .objective import batch_loss
from .optim import OptimSettings, make_optimizer
from .run import frozen_words

if TYPE_CHECKING:
    from .run import Run

# Saving the model, drawing the plots and the report, and the process's exit.
OUTPUT_SECONDS = 2.0
# Lightning's own work per epoch: checkpoints written, metrics logged.
EPOCH_OVERHEAD_SECONDS = 0.4
# The estimates are good to a few per cent; a reserve keeps the run inside the budget.
SAFETY = 0.92
# The median of a few steps; the epochs are re-fitted from real epochs as the run goes (the keeper).
TIMED_STEPS = 3
# Timed passes of each inference batch size; each size's time is their median (the fastest single
# pass picks the luckiest of a noisy few).
TIMED_PASSES = 2
# A whole evaluation costs more than its timed passes: the batch-size tuner's trial and re-check
# batches at slower sizes, each batch's preprocessing, the folded copy. Nothing re-fits the test
# afterwards, so the estimate carries it (a calibration, measured in docs/performance.md).
EVALUATION_OVERHEAD = 1.15
MIN_EPOCH_SHARE = 0.6
# The smallest image size tried, as a share of the configured one (rounded to a multiple of 8).
MIN_SIZE_SHARE = 0.7


@dataclass
class BudgetPlan:
    """What the budget allows, and the measurements it was planned from."""

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

    @property
    def deadlines(self) -> tuple[float, float]:
        """When training must end: ``(with the reserve kept, at the latest)``, in seconds from the start."""
        after_training = self.evaluation_seconds + OUTPUT_SECONDS
        return self.budget_seconds * SAFETY - after_training, self.budget_seconds - after_training


def fit_to_budget(run: Run) -> BudgetPlan:
    """The budget stage: plan ``run``'s epochs; if too few fit, freeze its high-resolution stages,
    then shrink its images (reconfiguring the run for each). The run's config ends with plain
    ``epochs``/``freeze``/``image_size`` and no budget, saved in config.yaml, so it reproduces the
    run and a resume does not plan again."""
    plan = plan_epochs(run)
    freeze = lighter_freeze(run, plan)
    if freeze is not None:
        # Freezing always shortens a step (less backward); it is not compared with the timing above,
        # whose noise on a shared CPU is as large as the gain. The test evaluation runs the whole
        # model either way, so its timing is kept.
        words = f"{plan.epochs} epoch(s) fit with {frozen_words(run.config.freeze)} frozen"
        say(f"Time budget: {words}; freezing {frozen_words(freeze)} (the high-resolution stages)")
        run.reconfigure(freeze=freeze)
        plan = plan_epochs(run, per_example=plan.example_seconds)
    smaller = smaller_size(run, plan, restart_seconds=run.seconds_spent())
    if smaller is not None:
        say(f"Time budget: {plan.epochs} epoch(s) fit at {plan.image_size} px; training at {smaller.image_size} px")
        run.reconfigure(image_size=smaller.image_size)
        plan = refit(run, smaller)
    say(plan.summary())
    run.reconfigure(epochs=plan.epochs, time_budget=None)
    run.save_config()
    return plan


def _probe_preprocessor(run: Run, size: Optional[int]) -> Optional[BatchPreprocessor]:
    """A preprocessor like the run's (training at ``size`` when given), with generators of its own."""
    if run.feed.preprocessor is None:
        return None
    probe = BatchPreprocessor(run.feed.preprocessor.prep, run.config.augment)
    probe.train_size = size
    return probe


def _time_steps(run: Run, size: Optional[int] = None) -> float:
    """Median seconds of a training step (forward, the run's own loss, backward, update) on a copy of
    the trainable module under the run's autocast, on the run's first batch (trained at ``size``
    to estimate another image size)."""
    device = torch.device(run.device)
    module = copy.deepcopy(run.feed.module).to(device).train()
    optimizer = make_optimizer(module, OptimSettings.of(run.config), total_steps=1)["optimizer"]  # the run's own
    preprocessor = _probe_preprocessor(run, size)
    terms = run.loss_terms()
    weights = terms.class_weights.to(device) if terms.class_weights is not None else None
    batch = [t.to(device) for t in run.feed.first_batch()]
    dtype = autocast_dtype(run.config.precision)
    times = []
    with small_map_depthwise(module, enabled=not run.config.compile):  # as the fit will run it
        for _ in range(TIMED_STEPS + 1):  # the first step pays one-off allocations: not counted
            started = time.perf_counter()
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss, _, _ = batch_loss(module, batch, True, preprocessor, terms.mix, terms.label_smoothing, weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def _resized(inputs: torch.Tensor, size: Optional[int]) -> torch.Tensor:
    if size is None or size == inputs.shape[-1] or inputs.dim() != 4:
        return inputs
    return torch.nn.functional.interpolate(inputs, size=(size, size), mode="bilinear", align_corners=False)


@torch.inference_mode()
def _time_inference(run: Run, size: Optional[int] = None) -> float:
    """Seconds per evaluated example through the BatchNorm-folded trainable module; on the CPU, at the
    fastest of the batch sizes the evaluation's tuner tries first (``BatchSizeTuner.candidate_sizes``).
    Each size's time is the median of ``TIMED_PASSES`` passes."""
    device = torch.device(run.device)
    module = copy.deepcopy(run.feed.module).to(device)
    batch = inference_batch_size(device)
    sizes = BatchSizeTuner.candidate_sizes(batch) if device.type == "cpu" else [batch]
    source = run.feed.test_inputs
    if torch.is_tensor(source):
        inputs = source[:batch].to(device)
    else:
        inputs = BatchPreprocessor(run.preprocessing)(next(iter(source.batches(batch))).to(device))
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


def _plan(run: Run, step: float, per_example: float, elapsed: float, size: int) -> BudgetPlan:
    config, splits = run.config, run.splits
    steps = math.ceil(len(run.feed.train_loader) / config.accumulate) * config.accumulate
    evaluated = per_example * EVALUATION_OVERHEAD
    validation = evaluated * len(splits.val) if splits.val is not None else 0.0
    epoch = steps * step + validation + EPOCH_OVERHEAD_SECONDS
    evaluation = evaluated * len(splits.test) * config.tta
    available = config.time_budget * SAFETY - elapsed - evaluation - OUTPUT_SECONDS
    epochs = max(1, int(available // epoch))
    freeze = str(config.freeze)
    return BudgetPlan(config.time_budget, epochs, size, elapsed, step, per_example, epoch, evaluation, freeze)


def plan_epochs(run: Run, per_example: Optional[float] = None) -> BudgetPlan:
    """The epochs that fit in the run's ``time_budget``, from its speed measured now.
    ``per_example``: the evaluation's seconds per example where already timed (freezing leaves it)."""
    with torch.random.fork_rng(devices=[]):  # the timing steps draw no number the run will draw
        step = _time_steps(run)
        if per_example is None:
            per_example = _time_inference(run)
    return _plan(run, step, per_example, run.seconds_spent(), run.preprocessing.image_size)


def refit(run: Run, plan: BudgetPlan) -> BudgetPlan:
    """``plan``'s step time applied to the run reconfigured at its size, with the evaluation timed
    again at that size (interpolated from two other sizes it came out short); the step's error is
    corrected by the keeper from real epochs."""
    with torch.random.fork_rng(devices=[]):
        per_example = _time_inference(run)
    return _plan(run, plan.step_seconds, per_example, run.seconds_spent(), plan.image_size)


def too_few_epochs(configured: int, plan: BudgetPlan) -> bool:
    """Whether ``plan`` leaves fewer than ``MIN_EPOCH_SHARE`` of the ``configured`` epochs."""
    return plan.epochs < math.ceil(MIN_EPOCH_SHARE * configured)


def lighter_freeze(run: Run, plan: BudgetPlan) -> Optional[FreezeSpec]:
    """``until:<stage>`` freezing the high-resolution stages (see ``Backbone.high_resolution_end``)
    when ``plan`` has too few epochs and less is frozen now; None otherwise.

    Those stages cost much of a step and learn least from a few images. It is taken without timing
    the frozen step against the other: it is always the shorter, and on a shared CPU the timings'
    noise is as large as the gain. Not with gradual unfreezing (it schedules the freezing itself)
    or on cached activations (the frozen part is paid for already).
    """
    config = run.config
    if not too_few_epochs(config.epochs, plan) or config.schedule == "gradual" or run.feed.cache.used:
        return None
    if config.freeze.kind == "backbone":
        return None
    backbone = run.model.backbone
    end = backbone.high_resolution_end(run.preprocessing.in_chans, run.preprocessing.image_size)
    if end is None:
        return None
    if config.freeze.kind == "until" and backbone.stages.index(config.freeze.stage) >= backbone.stages.index(end):
        return None
    return FreezeSpec("until", end)


def smaller_size(run: Run, plan: BudgetPlan, restart_seconds: float) -> Optional[BudgetPlan]:
    """The plan at a smaller image size where ``MIN_EPOCH_SHARE`` of the configured epochs fit (or
    where the most fit, if none reaches it), when the configured size leaves fewer; None to keep it.

    Not for cached activations (their cost is paid before the fit) or models that take one size
    only. ``restart_seconds`` is what reconfiguring the run costs. Only the smallest size is timed;
    the sizes between are interpolated in the pixel count (each timing costs seconds of the budget).
    """
    configured = run.config.epochs
    wanted = math.ceil(MIN_EPOCH_SHARE * configured)
    lowest = max(32, 8 * round(MIN_SIZE_SHARE * plan.image_size / 8))
    if not too_few_epochs(configured, plan) or run.feed.cache.used or lowest >= plan.image_size:
        return None
    try:
        with torch.random.fork_rng(devices=[]):
            low = _time_steps(run, lowest), _time_inference(run, lowest)
    except RuntimeError:  # a model built for one input size
        return None
    high = plan.step_seconds, plan.example_seconds
    best = plan
    for size in range(plan.image_size - 8, lowest - 1, -8):
        share = (size**2 - lowest**2) / (plan.image_size**2 - lowest**2)
        step, per_example = (lo + share * (hi - lo) for lo, hi in zip(low, high))
        candidate = _plan(run, step, per_example, plan.elapsed_before + restart_seconds, size)
        if candidate.epochs > best.epochs:
            best = candidate
        if candidate.epochs >= wanted:
            break
    return best if best is not plan else None

"""``--recipe``: how a run trains, chosen from the data itself (``auto``) or forced by name.

Fine-tuning the top of a pretrained backbone pays on some photo sets and loses to a plain linear
probe on others, so no fixed recipe suits them all. The recipes:

- ``probe``: a linear head on the frozen backbone's pooled features;
- ``last-block``: the backbone's last block (and what follows it) fine-tuned with the head;
- ``last-two-blocks``: the last two blocks fine-tuned with the head (forced only: its scoring
  would cost more than the default's time target allows).

``auto`` scores the probe and ``last-block`` by cross-validation on the run's own training images,
all on the activations the feature cache stored once at the run's cut (a candidate's inputs are
computed from those, never from the images again). Each is trained on each fold's training part as
the final run trains it (the run's LR, weight decay, optimiser, batch size and loss) over a
third of its epochs (the schedule compressed with them, so that scoring costs about as much as the
final training), and scored on the held-out part. The simplest candidate whose mean accuracy is
within one standard error of the best wins: a near-tie goes to the probe. The run is then
reconfigured to the winner and trains on all its training images; the winner's activations are
stored in the cache from the ones already computed, so the refit reads them instead of running
the images again.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Optional

import torch

from ..config import FreezeSpec
from ..data.loaders import tensor_loader
from ..errors import ConfigError
from ..inference.engine import batched_inference
from ..messages import say
from ..models.views import MiddlePart, TopModel
from .cache import CachePlan, store_activations
from .distributed import per_process_batch
from .feed import CacheReport, Feed
from .head_loop import HeadLoopSettings, train_head
from .optim import OptimSettings

if TYPE_CHECKING:
    from .run import Run

# The candidates ``auto`` scores, from the simplest: a near-tie goes to the earlier one.
SCORED = ("probe", "last-block")
# Folds by training-set size: three where a single split would be noisy, one holdout where the set
# is large enough for it (and three trainings would cost the most).
FOLDS_BY_SIZE = ((3000, 3),)
HOLDOUT_SHARE = 0.2
# Scoring trains each candidate over this share of its epochs (at least MIN_SCORING_EPOCHS).
SCORING_EPOCH_SHARE = 1 / 3
MIN_SCORING_EPOCHS = 3


@dataclass(frozen=True)
class Candidate:
    """A way to train the run: its name and the options it sets (what trains: the freezing; the
    LR, epochs and every other training option stay as configured)."""

    name: str
    changes: dict


@dataclass
class CandidateScore:
    """A candidate's cross-validated accuracy (one per fold) and the seconds it took."""

    name: str
    changes: dict
    fold_accuracies: list[float]
    seconds: float
    inputs: Optional[torch.Tensor] = field(default=None, repr=False)  # what it trained on: the refit stores them

    @property
    def accuracy(self) -> float:
        return sum(self.fold_accuracies) / len(self.fold_accuracies)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "accuracy": round(self.accuracy, 5),
            "folds": self.fold_accuracies,
            "seconds": round(self.seconds, 2),
            **self.changes,
        }


@dataclass
class RecipeChoice:
    """What the recipe stage chose and why (``metrics.json``'s ``recipe``)."""

    asked: str
    chosen: str
    scheme: str = "forced"
    tolerance: float = 0.0
    candidates: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        if not self.candidates:
            return f"Recipe: {self.chosen} ({self.note or 'as asked'})"
        scores = ", ".join(f"{c['name']} {100 * c['accuracy']:.2f}%" for c in self.candidates)
        return (
            f"Recipe: {self.chosen}, chosen by {self.scheme} on the training images ({scores}; "
            f"the simplest within {100 * self.tolerance:.2f} pt of the best wins) in {self.seconds:.1f} s"
        )


def block_stages(stages: list[str]) -> list[str]:
    """The backbone's numbered blocks (``blocks.3``, ``layer4``, ``stages.2``, ``features.7``), in order."""
    import re

    return [s for s in stages if re.fullmatch(r"(blocks|layer|stages|features)\.?\d+", s)]


def candidates(stages: list[str]) -> list[Candidate]:
    """The recipes this backbone allows, simplest first (fine-tuning needs three or more blocks)."""
    blocks = block_stages(stages)
    found = [Candidate("probe", {"freeze": "backbone"})]
    for name, kept in (("last-block", 2), ("last-two-blocks", 3)):
        if len(blocks) > kept:
            found.append(Candidate(name, {"freeze": f"until:{blocks[-kept]}"}))
    return found


def recipe_stage(run: Run) -> Optional[RecipeChoice]:
    """Apply ``run.config.recipe``: score the candidates (``auto``) or take the one named, then
    reconfigure the run to it. None for ``none``."""
    asked = run.config.recipe
    if asked == "none":
        return None
    options = {c.name: c for c in candidates(run.model.backbone.stages)}
    if asked != "auto":
        if asked not in options:
            raise ConfigError(f"--recipe {asked} needs a backbone with numbered blocks; {run.config.backbone} has none")
        choice = RecipeChoice(asked, asked)
        scored = None
    else:
        choice, scored = _choose(run, [options[name] for name in SCORED if name in options])
    if choice.chosen in options:
        _apply(run, options[choice.chosen], scored)
    say(choice.summary())
    return choice


def _choose(run: Run, options: list[Candidate]) -> tuple[RecipeChoice, Optional[CandidateScore]]:
    """Cross-validate ``options`` on the run's cached training activations and pick one; the
    choice, and the winner's score (None when nothing could be scored)."""
    started = time.perf_counter()
    why_not = _why_not_scorable(run)
    if why_not:
        return RecipeChoice("auto", "as configured", note=why_not), None
    activations = run.feed.train_loader.dataset.tensors[0]
    labels = run.splits.train.labels
    folds, scheme = cross_validation_folds(labels, run.config.seed)
    cut = _cut(run)
    options = [option for option in options if _target(run, option) < 0 or _target(run, option) >= cut]
    scores = [_score(run, option, activations, labels, folds) for option in options]
    chosen, tolerance = pick(scores, sum(len(held_out) for _, held_out in folds))
    listed = [score.to_dict() for score in scores]
    seconds = time.perf_counter() - started
    return RecipeChoice("auto", chosen.name, scheme, round(tolerance, 5), listed, round(seconds, 2)), chosen


def pick(scores: list[CandidateScore], held_out: int) -> tuple[CandidateScore, float]:
    """The first (simplest) of ``scores`` whose accuracy is within one standard error of the best,
    and that tolerance: the binomial standard error of the best accuracy over the ``held_out``
    images every candidate was scored on (at least that of one error in 10,000)."""
    best = max(score.accuracy for score in scores)
    tolerance = math.sqrt(max(best * (1 - best), 1e-4) / held_out)
    return next(score for score in scores if score.accuracy >= best - tolerance), tolerance


def _why_not_scorable(run: Run) -> str:
    """Why the candidates cannot be scored on this run's cached activations ('' when they can)."""
    cache = run.feed.cache
    if not cache.used or cache.boundary is None or cache.whole_backbone:
        return f"no activations cached below the blocks ({cache.reason or 'no cache'})"
    if cache.views != 1:
        return "the cache holds augmented views"
    if len(torch.unique(run.splits.train.labels)) < 2:
        return "the training images hold one class"
    return ""


def cross_validation_folds(labels: torch.Tensor, seed: int) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], str]:
    """Stratified folds ``(train indices, held-out indices)`` and the scheme's name: k-fold for
    small sets (see ``FOLDS_BY_SIZE``), one stratified holdout for large ones."""
    generator = torch.Generator().manual_seed(seed + 7)
    n = labels.numel()
    k = next((folds for limit, folds in FOLDS_BY_SIZE if n <= limit), 1)
    parts = k if k > 1 else round(1 / HOLDOUT_SHARE)
    assignment = torch.empty(n, dtype=torch.long)
    for cls in torch.unique(labels):  # each class dealt round the folds from a random start
        members = torch.nonzero(labels == cls).flatten()
        members = members[torch.randperm(members.numel(), generator=generator)]
        offset = int(torch.randint(parts, (1,), generator=generator))
        assignment[members] = (torch.arange(members.numel()) + offset) % parts
    folds = [(torch.nonzero(assignment != f).flatten(), torch.nonzero(assignment == f).flatten()) for f in range(k)]
    scheme = f"{k}-fold cross-validation" if k > 1 else f"a {round(100 * HOLDOUT_SHARE)} % holdout"
    return folds, scheme


def _cut(run: Run) -> int:
    """The stage index the run's cached activations were cut at."""
    return run.model.backbone.stages.index(run.feed.cache.boundary)


def _target(run: Run, option: Candidate) -> int:
    """The stage index ``option`` cuts the backbone at (-1: the whole backbone is frozen)."""
    spec = FreezeSpec.parse(option.changes["freeze"])
    return -1 if spec.kind == "backbone" else run.model.backbone.stages.index(spec.stage)


def _inputs_for(run: Run, option: Candidate, activations: torch.Tensor) -> tuple[torch.Tensor, int, bool]:
    """``option``'s inputs computed from the run's cached activations (cut at or below the
    option's own cut): ``(inputs, cut, pooled)``."""
    cut, target = _cut(run), _target(run, option)
    if target == cut:
        return activations, cut, False
    pooled = target < 0 and run.model.head_input == "pooled"
    return _run_stages(run, activations, target), target, pooled


def _run_stages(run: Run, activations: torch.Tensor, target: int) -> torch.Tensor:
    """The activations at ``target`` (-1: what the head takes) from the cached ones, in batches."""
    return batched_inference(MiddlePart(run.model, _cut(run), target), None, activations, 256, run.device, fold=False)


def _score(run: Run, option: Candidate, activations, labels, folds) -> CandidateScore:
    started = time.perf_counter()
    inputs, cut, pooled = _inputs_for(run, option, activations)
    config = run.config.with_changes(**option.changes)
    epochs = max(MIN_SCORING_EPOCHS, round(config.epochs * SCORING_EPOCH_SHARE))
    settings = HeadLoopSettings(epochs, False, False, config.label_smoothing, OptimSettings.of(config))
    weights = run.loss_terms().class_weights
    accuracies = []
    for fold, (train, held_out) in enumerate(folds):
        model = copy.deepcopy(run.model)
        model.freeze(config.freeze)
        generator = torch.Generator().manual_seed(config.seed + fold)
        batch = per_process_batch(config)
        top = TopModel(model, cut, pooled, config.channels_last)
        loader = tensor_loader(inputs[train], labels[train], batch, generator)
        feed = Feed(top, None, loader, None, None, CacheReport(used=True, reason="recipe"))
        with torch.random.fork_rng(devices=[]):  # candidates draw no number the final run will draw
            torch.manual_seed(config.seed + fold)
            train_head(settings, feed, None, run.device, weights)
        # Scored once, after the last epoch, in batches of the training size: the held-out part
        # of a fold in one batch runs the block's wide expansions far slower than small batches.
        logits = batched_inference(top, None, inputs[held_out], batch if cut >= 0 else 512, run.device, fold=False)
        accuracies.append(round(int((logits.argmax(1) == labels[held_out]).sum()) / len(held_out), 5))
    seconds = time.perf_counter() - started
    return CandidateScore(option.name, option.changes, accuracies, seconds, inputs)


def _apply(run: Run, chosen: Candidate, scored: Optional[CandidateScore]) -> None:
    """Reconfigure ``run`` to ``chosen``, first storing its activations where the refit reads them
    (the training images' from its score, when it was scored)."""
    cache = run.feed.cache
    if cache.used and not cache.whole_backbone and cache.views == 1 and run.feed.preprocessor is None:
        _store_for(run, chosen, scored.inputs if scored is not None else None)
    run.reconfigure(recipe=chosen.name, **chosen.changes)


def _store_for(run: Run, chosen: Candidate, inputs: Optional[torch.Tensor]) -> None:
    activations = run.feed.train_loader.dataset.tensors[0]
    if inputs is None:
        inputs = _inputs_for(run, chosen, activations)[0]
    if inputs is activations:
        return  # the same cut: the cache holds them already
    target = _target(run, chosen)
    spec = FreezeSpec.parse(chosen.changes["freeze"])
    boundary = "backbone" if spec.kind == "backbone" else spec.stage
    plan = CachePlan(boundary, target, 1, pooled=target < 0 and run.model.head_input == "pooled")
    store_activations(run.model, run.preprocessing, plan, run.splits.train, run.config.cache_dir, inputs)
    test = _run_stages(run, run.feed.test_inputs, target)
    store_activations(run.model, run.preprocessing, plan, run.splits.test, run.config.cache_dir, test)

"""--time-budget: the planned epochs are saved, the run equals a fixed-epoch run, the high-resolution
stages frozen and then a smaller image size when too few epochs fit, the probe step is the run's own,
the keeper re-plans through public trainer API; --ema: the averaged weights are the model."""

import json
from types import SimpleNamespace

import pytest
import torch
import yaml

from tlearn.config import make_config
from tlearn.inference import evaluate_run
from tlearn.runs.spec import load_run
from tlearn.training.budget import BudgetPlan, lighter_freeze
from tlearn.training.budget_keeper import BudgetKeeper
from tlearn.training.distributed import launch_environment
from tlearn.training.optim import CosineWithWarmup, reschedule
from tlearn.training.pipeline import train
from tlearn.training.run import Run

TINY = {
    "image_size": 32,
    "batch_size": 32,
    "progress": False,
    "train_size": 96,
    "test_size": 40,
    "val_size": 32,
    "backbone": "resnet18",
    "weights": "none",
}


def _config(root, out, **changes):
    return make_config({**TINY, "data_dir": str(root), "out": str(out), **changes})


def test_a_budgeted_run_saves_its_epochs_and_equals_a_run_with_those_epochs(tiny_mnist, tmp_path, capsys, monkeypatch):
    # Re-fitting after each epoch depends on the machine's speed (tested below); here the first fit stands.
    monkeypatch.setattr(BudgetKeeper, "epoch_done", lambda self, done, seconds, learner: None)
    budgeted = train(_config(tiny_mnist, tmp_path / "budget", time_budget=15, epochs=3))
    fit = budgeted.metrics["time_budget"]
    assert fit["epochs"] == budgeted.metrics["epochs"] >= 1 and fit["image_size"] == 32
    assert fit["step_seconds"] > 0 and fit["evaluation_seconds"] > 0 and fit["refits"] == []
    assert f"Time budget 15 s: {fit['epochs']} epoch(s) at 32 px" in capsys.readouterr().out
    saved = yaml.safe_load((budgeted.run_dir / "config.yaml").read_text())
    assert saved["epochs"] == fit["epochs"] and saved["time_budget"] is None
    # Timing the steps draws no random number the run draws: the same run as a fixed --epochs.
    fixed = train(make_config({**saved, "out": str(tmp_path / "fixed")}))
    assert [row["train_loss"] for row in fixed.metrics["history"]] == [
        row["train_loss"] for row in budgeted.metrics["history"]
    ]
    assert fixed.metrics["test_accuracy"] == budgeted.metrics["test_accuracy"]


def test_too_few_epochs_at_the_configured_size_train_at_a_smaller_one(tiny_mnist, tmp_path, capsys, monkeypatch):
    # Steps of a tiny model cost the same at any size. Made to cost as pixels do (1 s at 48 px), about 6
    # of the 20 epochs fit in 30 s at 48 px, 9 at 40 px and 13 at 32 px (the smallest tried, 0.7 of 48),
    # however long the set-up took: the run is prepared again at 32 px.
    from tlearn.training import budget

    monkeypatch.setattr(budget, "_time_steps", lambda run, size=None: ((size or run.config.image_size) / 48) ** 2)
    monkeypatch.setattr(budget, "_time_inference", lambda run, size=None: 1e-4)
    monkeypatch.setattr(BudgetKeeper, "epoch_done", lambda self, done, seconds, learner: None)  # real epochs are faster
    # Augmented, so the frozen stem is not cached (its cost is paid before the fit): freezing it first
    # (as too few epochs fit) gains nothing here, and the size is the lever that does.
    config = _config(tiny_mnist, tmp_path / "run", image_size=48, time_budget=30, epochs=20, augment="digits")
    result = train(config)
    fit = result.metrics["time_budget"]
    assert fit["image_size"] == 32 and fit["epochs"] == result.metrics["epochs"] and fit["freeze"] == "until:layer1"
    assert "epoch(s) fit at 48 px; training at 32 px" in capsys.readouterr().out
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert saved["image_size"] == 32 and saved["epochs"] == fit["epochs"]
    assert json.loads((result.run_dir / "model.json").read_text())["preprocessing"]["image_size"] == 32


def test_too_few_epochs_with_nothing_frozen_freeze_the_high_resolution_stages(
    tiny_mnist, tmp_path, capsys, monkeypatch
):
    # Steps made to cost 1 s with nothing frozen, 0.1 s with the stem to layer1 frozen: about 6 of
    # the 20 epochs fit in 30 s unfrozen, all 20 frozen, so the run freezes and keeps its size.
    from tlearn.training import budget

    monkeypatch.setattr(budget, "_time_steps", lambda run, size=None: 1.0 if not run.config.freeze.any else 0.1)
    monkeypatch.setattr(budget, "_time_inference", lambda run, size=None: 1e-4)
    monkeypatch.setattr(BudgetKeeper, "epoch_done", lambda self, done, seconds, learner: None)
    result = train(_config(tiny_mnist, tmp_path / "run", image_size=48, time_budget=30, epochs=20))
    fit = result.metrics["time_budget"]
    assert fit["freeze"] == "until:layer1" and fit["image_size"] == 48 and fit["epochs"] >= 12
    out = capsys.readouterr().out
    assert "epoch(s) fit with nothing frozen; freezing the stem to layer1 (the high-resolution stages)" in out
    assert "training at" not in out  # enough epochs fit at 48 px
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert saved["freeze"] == "until:layer1" and saved["epochs"] == fit["epochs"]
    # Run.prepare() seeds before building, so a fresh one holds the run's initial weights.
    with launch_environment():  # as train() does: it seeds, and Lightning's seed variables must not leak
        initial = Run.prepare(make_config({**saved, "out": str(tmp_path / "unused")})).model.backbone.model
    trained = load_run(result.run_dir).model.backbone.model
    assert torch.equal(trained.layer1[0].conv1.weight, initial.layer1[0].conv1.weight)
    assert not torch.equal(trained.layer2[0].conv1.weight, initial.layer2[0].conv1.weight)


def _lever(config_changes: dict, epochs: int = 2):
    from types import SimpleNamespace

    from tlearn.models.backbones import create_backbone

    config = make_config({**TINY, "epochs": 20, **config_changes})
    run = SimpleNamespace(
        config=config,
        model=SimpleNamespace(backbone=create_backbone("resnet18", "none")),
        preprocessing=SimpleNamespace(in_chans=3, image_size=32),
        feed=SimpleNamespace(cache=SimpleNamespace(used=False)),
    )
    return lighter_freeze(run, BudgetPlan(60.0, epochs, 32, 1.0, 0.1, 1e-4, 1.0, 1.0))


def test_the_test_evaluation_is_estimated_with_what_an_evaluation_costs_beyond_its_timed_passes():
    # 10,000 test images at 1 ms each in the timed passes: 10 s of passes, 11.5 s of evaluation,
    # and the epochs (32 steps of 0.1 s) fill what the reserve, the set-up and the outputs leave.
    from tlearn.training import budget

    config = make_config({**TINY, "time_budget": 60, "epochs": 20})
    run = SimpleNamespace(
        config=config,
        splits=SimpleNamespace(val=None, test=range(10_000)),
        feed=SimpleNamespace(train_loader=range(32)),
    )
    fit = budget._plan(run, 0.1, 1e-3, 5.0, 32)
    assert budget.EVALUATION_OVERHEAD > 1 and fit.evaluation_seconds == pytest.approx(10.0 * budget.EVALUATION_OVERHEAD)
    left = 60 * budget.SAFETY - 5.0 - fit.evaluation_seconds - budget.OUTPUT_SECONDS
    assert fit.epochs == int(left // (32 * 0.1 + budget.EPOCH_OVERHEAD_SECONDS)) == 10


def test_freezing_is_a_lever_only_when_too_few_epochs_fit_and_less_is_frozen():
    assert str(_lever({})) == "until:layer1"
    assert str(_lever({"freeze": "until:bn1"})) == "until:layer1"
    assert _lever({}, epochs=12) is None  # 0.6 of the 20 epochs fit
    assert _lever({"freeze": "until:layer1"}) is None and _lever({"freeze": "until:layer3"}) is None
    assert _lever({"freeze": "backbone"}) is None
    assert _lever({"schedule": "gradual", "freeze": "until:layer2"}) is None


def test_ema_weights_are_the_saved_model(tiny_mnist, tmp_path):
    result = train(_config(tiny_mnist, tmp_path / "ema", epochs=2, ema=0.9))
    assert result.metrics["keep"] == "ema"
    assert "the average of the weights (EMA)" in (result.run_dir / "report.html").read_text()
    again = evaluate_run(load_run(result.run_dir), str(tiny_mnist), test_size=40)
    assert again["accuracy"] == pytest.approx(result.metrics["test_accuracy"], abs=1e-9)


class _Learner:
    """What BudgetKeeper asks of the LightningModule: a schedule of 10 steps an epoch that follows re-plans."""

    def __init__(self, epochs: int, schedule: str, param_groups: int = 1):
        groups = [{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(param_groups)]
        optimizer = torch.optim.SGD(groups, lr=0.1)
        if schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, CosineWithWarmup(epochs * 10))
        else:
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=epochs * 10)
        self.scheduler = scheduler

    def reschedule(self, epochs: int) -> bool:
        return reschedule([self.scheduler], epochs * 10)


def _keeper(seconds_left: float, planned: int = 8, first_epoch: float | None = None):
    """A keeper planned for ``planned`` epochs whose clock leaves ``seconds_left`` before its
    reserve-kept deadline; with ``first_epoch``, one epoch of that many seconds is already behind it."""
    plan = BudgetPlan(60, planned, 64, 10.0, 0.2, 0.001, 4.0, 5.0)  # 60 s: a reserve of 4.8 s
    saved = []
    keeper = BudgetKeeper(plan, lambda: keeper.deadline - seconds_left, saved.append)
    if first_epoch is not None:
        keeper.durations.append(first_epoch)
    return keeper, saved


def _after_epoch(keeper, learner, epoch: int, seconds: float = 5.0) -> int:
    keeper.epoch_done(epoch, seconds, learner)
    return keeper.planned


def test_the_keeper_shortens_a_run_that_falls_behind_and_its_schedule_with_it():
    keeper, saved = _keeper(seconds_left=20.0)
    learner = _Learner(8, "cosine")
    assert _after_epoch(keeper, learner, 1) == 5  # 20 s left at 5 s an epoch: 4 more, 5 in all
    assert saved == [5] and keeper.changes == [(1, 5)]
    assert learner.scheduler.lr_lambdas[0].total_steps == 50


def test_the_keeper_keeps_a_plan_that_ends_inside_the_reserve():
    # 18 s before the reserve-kept deadline, 22.8 s before the whole budget's: at 5 s an epoch
    # 3 more fit the first and 4 the second.
    keeper, _ = _keeper(seconds_left=18.0, planned=5)
    assert _after_epoch(keeper, _Learner(5, "cosine"), 1) == 5 and keeper.changes == []
    keeper, _ = _keeper(seconds_left=18.0, planned=6)
    assert _after_epoch(keeper, _Learner(6, "cosine"), 1) == 4 and keeper.changes == [(1, 4)]


def test_the_keeper_lengthens_only_early_after_a_second_epoch_and_a_schedule_that_can_follow():
    first, _ = _keeper(seconds_left=60.0)  # the first epoch's time includes one-off set-up
    assert _after_epoch(first, _Learner(8, "cosine"), 1) == 8 and first.changes == []
    keeper, _ = _keeper(seconds_left=60.0, first_epoch=9.0)
    assert _after_epoch(keeper, _Learner(8, "cosine"), 2) == 14  # 12 more at 5 s, the first epoch aside
    grouped, _ = _keeper(seconds_left=60.0, first_epoch=9.0)
    learner = _Learner(8, "cosine", param_groups=2)  # as a real run: decayed and undecayed weights
    assert _after_epoch(grouped, learner, 2) == 14
    assert [s.total_steps for s in learner.scheduler.lr_lambdas] == [140, 140]
    late, _ = _keeper(seconds_left=60.0, first_epoch=9.0)
    # 6 of 8 done: the LR is low, a longer schedule would raise it
    assert _after_epoch(late, _Learner(8, "cosine"), 6) == 8 and late.changes == []
    one_cycle, _ = _keeper(seconds_left=60.0, first_epoch=9.0)
    assert _after_epoch(one_cycle, _Learner(8, "onecycle"), 2) == 8 and one_cycle.changes == []
    capped, _ = _keeper(seconds_left=600.0, planned=2, first_epoch=9.0)
    assert _after_epoch(capped, _Learner(2, "cosine"), 1) == 2 * 4  # at most GROWTH_LIMIT times the plan


def test_the_keeper_state_round_trips():
    keeper, _ = _keeper(seconds_left=20.0, first_epoch=9.0)
    _after_epoch(keeper, _Learner(8, "cosine"), 2)
    fresh, _ = _keeper(seconds_left=20.0)
    fresh.load_state_dict(keeper.state_dict())
    assert (fresh.planned, fresh.durations, fresh.changes) == (keeper.planned, keeper.durations, keeper.changes)


def test_a_replan_in_a_real_run_stops_it_ends_its_schedule_and_is_saved(tiny_mnist, tmp_path, monkeypatch):
    # A budget far larger than the run needs plans many epochs; the keeper is made to find only 2 fit:
    # it shortens the run after the first, the LR schedule ends with the second, and config.yaml says 2.
    monkeypatch.setattr(BudgetKeeper, "epochs_that_fit", lambda self, done, deadline=None: 2)
    result = train(_config(tiny_mnist, tmp_path / "run", time_budget=3000, epochs=3))
    planned = result.metrics["time_budget"]["epochs"]
    assert planned > 2 and [list(change) for change in result.metrics["time_budget"]["refits"]] == [[1, 2]]
    assert result.metrics["epochs"] == 2 and len(result.metrics["history"]) == 2
    history = result.metrics["history"]
    assert history[-1]["lr"] < 0.1 * history[0]["lr"]  # the cosine schedule decayed over 2 epochs, not the plan
    assert yaml.safe_load((result.run_dir / "config.yaml").read_text())["epochs"] == 2
    state = torch.load(result.run_dir / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]
    assert any(key.startswith("BudgetKeeper") and value["planned"] == 2 for key, value in state.items())


def test_the_probe_step_is_the_runs_own_objective_under_its_autocast(tiny_mnist, tmp_path, monkeypatch):
    from tlearn.training import budget

    seen = []
    real = budget.batch_loss

    def recording(module, batch, train, preprocessor=None, mix=None, label_smoothing=0.0, class_weights=None):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"), label_smoothing))
        return real(module, batch, train, preprocessor, mix, label_smoothing, class_weights)

    monkeypatch.setattr(budget, "batch_loss", recording)
    config = _config(tiny_mnist, tmp_path / "run", precision="bf16-mixed", label_smoothing=0.1, device="cpu")
    with launch_environment():
        run = Run.prepare(config)
        assert budget._time_steps(run) > 0
    assert seen and all(entry == (True, torch.bfloat16, 0.1) for entry in seen)

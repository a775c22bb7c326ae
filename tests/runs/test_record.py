"""metrics.json as a typed record: round trip, files of earlier versions, unknown keys, damaged files."""

import dataclasses
import json

import pytest

from tlearn.runs.directory import RunResult, run_metrics
from tlearn.runs.record import (
    SCHEMA_VERSION,
    UNTYPED_VERSION,
    BudgetRecord,
    CacheRecord,
    MachineRecord,
    RecipeRecord,
    RunRecord,
    read_record,
)

# metrics.json's keys, in the order tlearn writes them (the untyped files had the same, less schema_version).
KEYS = [
    "schema_version",
    "test_accuracy",
    "balanced_accuracy",
    "test_loss",
    "test_samples",
    "tta_views",
    "test_accuracy_single_view",
    "train_samples",
    "skipped_files",
    "skipped_examples",
    "val_source",
    "val_samples",
    "final_val_accuracy",
    "final_train_accuracy",
    "epochs",
    "backbone",
    "weights",
    "freeze",
    "image_size",
    "device",
    "machine",
    "seed",
    "macro_f1",
    "per_class",
    "confusion_matrix",
    "history",
    "keep",
    "model_epoch",
    "stopped_early",
    "train_seconds",
    "eval_seconds",
    "feature_cache",
    "resumed",
    "processes",
    "trainer",
    "time_budget",
    "recipe",
    "total_seconds",
    "complete",
]
# What the first versions of tlearn wrote: no schema_version, the cache as a flag, no machine or kept epoch.
FIRST_VERSION = {
    "test_accuracy": 0.91,
    "test_loss": 0.3,
    "test_samples": 4,
    "train_samples": 8,
    "val_source": "holdout",
    "val_samples": 2,
    "final_val_accuracy": 0.5,
    "final_train_accuracy": 0.75,
    "epochs": 2,
    "backbone": "resnet18",
    "weights": "imagenet",
    "freeze": "backbone",
    "image_size": 32,
    "device": "cpu",
    "seed": 0,
    "feature_cache": False,
    "macro_f1": 0.9,
    "per_class": {
        "a": {"precision": 1.0, "recall": 0.5, "f1": 0.666667, "support": 2},
        "b": {"precision": 0.666667, "recall": 1.0, "f1": 0.8, "support": 2},
    },
    "confusion_matrix": [[1, 1], [0, 2]],
    "history": [{"epoch": 1, "train_loss": 0.9}, {"epoch": 2, "train_loss": 0.5}],
    "train_seconds": 1.5,
    "eval_seconds": 0.2,
    "total_seconds": 3.25,
    "complete": True,
}


def _current(**changes) -> dict:
    """A metrics.json as this version writes it."""
    data = {
        **FIRST_VERSION,
        "balanced_accuracy": 0.75,
        "tta_views": 1,
        "test_accuracy_single_view": 0.91,
        "skipped_files": 1,
        "skipped_examples": ["bad.jpg"],
        "machine": {"cpu": "AMD EPYC", "cpu_threads": 2, "accelerator": None},
        "keep": "best",
        "model_epoch": 1,
        "stopped_early": True,
        "feature_cache": {"used": True, "reason": "", "seconds": 0.5, "boundary": "backbone", "views": 1},
        "resumed": False,
        "processes": 1,
        "trainer": "head loop",
        "time_budget": {
            "budget_seconds": 60.0,
            "epochs": 3,
            "image_size": 32,
            "elapsed_before": 2.5,
            "step_seconds": 0.01,
            "example_seconds": 0.001,
            "epoch_seconds": 1.2,
            "evaluation_seconds": 0.4,
            "freeze": "backbone",
            "refits": [(1, 2)],
        },
        "recipe": {"asked": "auto", "chosen": "probe", "scheme": "5-fold cross-validation", "candidates": []},
    }
    return {**data, **changes}


def test_a_record_writes_the_keys_in_order_and_reads_back_equal(tmp_path):
    record = RunRecord.model_validate(_current())
    assert record.schema_version == SCHEMA_VERSION == 2
    record.write(tmp_path)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert list(on_disk) == KEYS and on_disk == record.to_json_dict()
    assert on_disk["time_budget"]["refits"] == [[1, 2]] and list(on_disk["feature_cache"])[:2] == ["used", "reason"]
    again = read_record(tmp_path)
    assert again == record and again.time_budget.freeze == "backbone" and again.per_class["a"].support == 2
    assert again.machine.cpu == "AMD EPYC" and again.feature_cache.boundary == "backbone"
    assert again.recipe.chosen == "probe" and again.recipe.tolerance == 0.0


def test_a_file_of_an_earlier_version_loads_with_defaults(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps(FIRST_VERSION))
    record = read_record(tmp_path)
    assert record is not None and record.schema_version == UNTYPED_VERSION
    assert record.test_accuracy == 0.91 and record.per_class["b"].f1 == 0.8
    assert record.feature_cache == CacheRecord(used=False, reason="")  # was written as a flag
    assert (record.keep, record.model_epoch, record.stopped_early, record.tta_views) == ("last", None, False, 1)
    assert record.machine is None and record.time_budget is None and record.recipe is None
    assert record.balanced_accuracy is None
    # a budget of the first budgeted versions: no per-example time, no freeze, no re-plans
    later = ("example_seconds", "freeze", "refits")
    old_budget = {k: v for k, v in _current()["time_budget"].items() if k not in later}
    assert RunRecord.from_json_dict({**FIRST_VERSION, "time_budget": old_budget}).time_budget.refits == []


def test_unknown_keys_are_kept_through_a_round_trip(tmp_path):
    data = _current(notes={"by": "hand"}, machine={"cpu": "x", "cpu_threads": 1, "accelerator": None, "ram": 8})
    (tmp_path / "metrics.json").write_text(json.dumps({**data, "schema_version": 3}))
    record = read_record(tmp_path)
    assert record.schema_version == 3 and record.model_extra == {"notes": {"by": "hand"}}
    record.write(tmp_path / "copy")
    again = json.loads((tmp_path / "copy" / "metrics.json").read_text())
    assert again["notes"] == {"by": "hand"} and again["machine"]["ram"] == 8 and list(again)[-1] == "notes"


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[1, 2]",
        json.dumps({"complete": False, "interrupted": True, "resumable": True}),  # an unfinished run
        json.dumps({k: v for k, v in FIRST_VERSION.items() if k != "test_accuracy"}),
        json.dumps({**FIRST_VERSION, "test_accuracy": "high"}),
        json.dumps({**FIRST_VERSION, "per_class": {"a": {"precision": 1.0}}}),
    ],
)
def test_a_damaged_or_unfinished_file_has_no_record(tmp_path, text):
    (tmp_path / "metrics.json").write_text(text)
    assert read_record(tmp_path) is None


def test_a_missing_file_has_no_record_and_the_unfinished_state_stays_a_dict(tmp_path):
    assert read_record(tmp_path / "nowhere") is None and run_metrics(tmp_path) == {}
    (tmp_path / "metrics.json").write_text(json.dumps({"complete": False, "resumable": False}))
    assert run_metrics(tmp_path) == {"complete": False, "resumable": False}


def test_run_result_gives_the_record_and_the_plain_mapping(tmp_path):
    record = RunRecord.model_validate(_current())
    result = RunResult(tmp_path, record)
    assert result.metrics == record.to_json_dict() and result.metrics["schema_version"] == SCHEMA_VERSION
    assert result.test_accuracy == 0.91 and result.metrics["feature_cache"]["used"] is True


def test_the_nested_records_have_the_fields_training_writes():
    from tlearn.runtime import machine
    from tlearn.training.budget import BudgetPlan
    from tlearn.training.feed import CacheReport
    from tlearn.training.recipe import RecipeChoice

    assert list(CacheRecord.model_fields) == [f.name for f in dataclasses.fields(CacheReport)]
    assert list(BudgetRecord.model_fields) == [f.name for f in dataclasses.fields(BudgetPlan)] + ["refits"]
    assert list(MachineRecord.model_fields) == list(machine("cpu"))
    assert list(RecipeRecord.model_fields) == [f.name for f in dataclasses.fields(RecipeChoice)]

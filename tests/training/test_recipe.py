"""--recipe: candidates scored by cross-validation on the training images, the simplest near-tie wins,
a named recipe is trained as asked, and runs without a recipe are untouched."""

import pytest
import torch
import yaml

from tests.helpers import make_folder, real_flowers_root
from tlearn.config import load_preset, make_config, preset_names, resolve_config
from tlearn.training.pipeline import train
from tlearn.training.recipe import CandidateScore, candidates, cross_validation_folds, pick


def _score(name: str, accuracy: float) -> CandidateScore:
    return CandidateScore(name, {}, [accuracy], 0.0)


def test_the_simplest_candidate_within_a_standard_error_of_the_best_wins():
    # 400 held-out images at 90 %: a standard error of 1.5 pt.
    chosen, tolerance = pick([_score("probe", 0.89), _score("last-block", 0.90)], 400)
    assert chosen.name == "probe" and tolerance == pytest.approx(0.015)
    chosen, _ = pick([_score("probe", 0.85), _score("last-block", 0.90)], 400)
    assert chosen.name == "last-block"
    chosen, _ = pick([_score("probe", 0.95), _score("last-block", 0.90)], 400)
    assert chosen.name == "probe"


def test_folds_are_stratified_and_hold_out_every_image_once():
    labels = torch.tensor([0] * 30 + [1] * 12 + [2] * 6)
    folds, scheme = cross_validation_folds(labels, seed=0)
    assert scheme == "3-fold cross-validation" and len(folds) == 3
    held_out = torch.cat([val for _, val in folds])
    assert sorted(held_out.tolist()) == list(range(48))
    for kept, val in folds:
        assert set(kept.tolist()).isdisjoint(val.tolist())
        assert torch.bincount(labels[val], minlength=3).tolist() == [10, 4, 2]
    again, _ = cross_validation_folds(labels, seed=0)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(folds, again))
    big, scheme = cross_validation_folds(torch.arange(5000) % 4, seed=0)
    assert scheme == "a 20 % holdout" and len(big) == 1 and len(big[0][1]) == 1000


def test_the_candidates_come_from_the_backbones_numbered_blocks():
    stages = ["conv_stem", "bn1", *[f"blocks.{i}" for i in range(7)], "conv_head", "bn2"]
    named = {c.name: c.changes["freeze"] for c in candidates(stages)}
    assert named == {"probe": "backbone", "last-block": "until:blocks.5", "last-two-blocks": "until:blocks.4"}
    assert [c.name for c in candidates(["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"])] == [
        "probe",
        "last-block",
        "last-two-blocks",
    ]
    assert [c.name for c in candidates(["patch_embed", "norm"])] == ["probe"]


def _patterns_config(tmp_path, **values):
    data = tmp_path / "patterns"
    if not data.is_dir():
        make_folder(data, {"train": 30, "test": 10}, bad_files=0, size=40)
    base = {"dataset": "folder", "data_dir": str(data), "backbone": "resnet18", "weights": "none", "image_size": 32}
    base.update(freeze="until:layer3", val_source="none", progress=False, cache_dir=str(tmp_path / "cache"))
    return make_config({**base, "out": str(tmp_path / "run"), **values})


def test_where_fine_tuning_overfits_auto_picks_the_probe_and_the_choice_is_repeatable(tmp_path):
    # Three pattern classes, 30 training images each: the frozen features separate them; training
    # the last block as well scores lower on the held-out folds.
    result = train(_patterns_config(tmp_path, recipe="auto"))
    recipe = result.metrics["recipe"]
    scores = {c["name"]: c["accuracy"] for c in recipe["candidates"]}
    assert recipe["chosen"] == "probe" and scores["probe"] >= scores["last-block"], recipe
    assert result.metrics["freeze"] == "backbone" and result.metrics["feature_cache"]["boundary"] == "backbone"
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert saved["recipe"] == "probe" and saved["freeze"] == "backbone"  # the saved config trains the same
    again = train(_patterns_config(tmp_path, recipe="auto", out=str(tmp_path / "again")))

    def scored(run):
        return [(c["name"], c["folds"]) for c in run.metrics["recipe"]["candidates"]]

    assert scored(again) == scored(result) and again.metrics["recipe"]["chosen"] == "probe"  # same seed, same choice
    assert again.metrics["test_accuracy"] == result.metrics["test_accuracy"]


def test_a_named_recipe_is_trained_as_asked_with_the_other_options_as_given(tmp_path):
    result = train(_patterns_config(tmp_path, recipe="last-block", epochs=2, lr=0.01))
    assert result.metrics["recipe"]["chosen"] == "last-block" and result.metrics["recipe"]["candidates"] == []
    assert result.metrics["freeze"] == "until:layer3" and result.metrics["epochs"] == 2
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert saved["recipe"] == "last-block" and saved["lr"] == 0.01


def _sign_digits():
    flowers = real_flowers_root()
    folder = flowers.parent / "sign_digits" if flowers else None
    return folder if folder and (folder / "train").is_dir() else None


@pytest.mark.skipif(_sign_digits() is None, reason="the shared photo suite is not here")
def test_where_fine_tuning_pays_auto_picks_it(tmp_path):
    # Hand gestures: ImageNet's pooled features tell them apart poorly, the last block learns them.
    config = resolve_config(
        "photos",
        overrides={
            "dataset": "folder",
            "data_dir": str(_sign_digits()),
            "train_size": 200,
            "test_size": 50,
            "epochs": 6,
            "progress": False,
            "cache_dir": str(tmp_path / "cache"),
            "out": str(tmp_path / "run"),
        },
    )
    result = train(config)
    recipe = result.metrics["recipe"]
    scores = {c["name"]: c["accuracy"] for c in recipe["candidates"]}
    assert recipe["chosen"] == "last-block", recipe
    assert scores["last-block"] >= scores["probe"] + 0.05, recipe  # a wide margin, on any CPU
    assert result.metrics["freeze"] == "until:blocks.5"


def test_runs_without_a_recipe_are_untouched():
    for name in preset_names():
        expected = "auto" if name == "photos" else "none"
        assert load_preset(name).get("recipe", "none") == expected, name
    assert make_config({}).recipe == "none"  # MNIST and the built-in sets train as configured

"""The validated config: errors that name the field and its source, YAML, presets, freeze specs,
sections and reset words."""

import typing

import pytest

from tlearn.config import (
    RESET,
    SECTIONS,
    FreezeSpec,
    TrainConfig,
    config_to_yaml,
    field_section,
    load_preset,
    make_config,
    preset_names,
    read_yaml,
    reset_word,
    resolve_config,
)
from tlearn.errors import ConfigError


def test_defaults_are_valid():
    cfg = TrainConfig()
    assert cfg.backbone == "efficientnet_lite0" and cfg.train_size is None and cfg.test_size is None


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"learning_rate": 0.1}, "unknown option 'learning_rate'"),
        ({"lr": 0}, "'lr'"),
        ({"lr": -1.0}, "'lr'"),
        ({"lr": float("nan")}, "'lr'"),
        ({"epochs": "ten"}, "'epochs'"),
        ({"epochs": 0}, "'epochs'"),
        ({"batch_size": -4}, "'batch_size'"),
        ({"train_size": 0}, "'train_size'"),
        ({"freeze": "sometimes"}, "'freeze'"),
        ({"augment": "mixup"}, "'augment'"),
        ({"optimizer": "lion"}, "'optimizer'"),
        ({"in_chans": 2}, "'in_chans'"),
        ({"dropout": 1.5}, "'dropout'"),
    ],
)
def test_bad_values_name_the_field(values, fragment):
    with pytest.raises(ConfigError) as err:
        make_config(values, "options.yaml")
    message = str(err.value)
    assert fragment in message and "\n" not in message


def test_yaml_round_trip(tmp_path):
    cfg = make_config({"backbone": "resnet18", "lr": 0.01, "freeze": "until:layer3"})
    path = tmp_path / "c.yaml"
    path.write_text(config_to_yaml(cfg))
    assert make_config(read_yaml(path)) == cfg


def test_malformed_yaml_is_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("lr: [0.1\nepochs: 3\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        read_yaml(path)


def test_yaml_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        read_yaml(path)


def test_precedence_preset_file_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\nlr: 0.5\n")
    cfg = resolve_config("seed000-vgg16", path, {"lr": 0.01, "seed": None})
    assert cfg.backbone == "vgg16"  # preset
    assert cfg.epochs == 3  # file over preset
    assert cfg.lr == 0.01  # flag over file


def test_error_names_the_layer_it_came_from(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: -3\n")
    with pytest.raises(ConfigError, match=str(path)):
        resolve_config(None, path, {"lr": 0.01})
    with pytest.raises(ConfigError, match="^invalid value for --lr: "):
        resolve_config("default", None, {"lr": -1.0})


def test_presets_are_shipped_and_valid():
    names = preset_names()
    assert {"default", "seed000-vgg16", "seed002-resnet50"} <= set(names)
    for name in names:
        make_config(load_preset(name), name)


def test_seed000_preset_matches_the_tutorial():
    cfg = make_config(load_preset("seed000-vgg16"))
    assert (cfg.backbone, str(cfg.freeze), cfg.head, cfg.image_size, cfg.normalize) == (
        "vgg16",
        "backbone",
        "mlp",
        224,
        "none",
    )
    assert (cfg.augment, cfg.optimizer, cfg.epochs, cfg.train_size, cfg.test_size) == ("seed", "adam", 10, 1000, 200)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'nope'; available: .*seed000-vgg16"):
        load_preset("nope")


def test_freeze_is_parsed_once_into_a_spec():
    cfg = make_config({"freeze": "until:blocks.4"})
    assert cfg.freeze == FreezeSpec("until", "blocks.4") and cfg.freeze.any
    assert cfg.model_dump()["freeze"] == "until:blocks.4" and "freeze: until:blocks.4" in config_to_yaml(cfg)
    assert not make_config({}).freeze.any and str(make_config({"freeze": "backbone"}).freeze) == "backbone"


def test_with_changes_validates():
    cfg = make_config({})
    assert cfg.with_changes(freeze="backbone").freeze.kind == "backbone"
    with pytest.raises(ConfigError, match="'lr'"):
        cfg.with_changes(lr=-1)


def test_every_field_has_a_description():
    assert all(field.description for field in TrainConfig.model_fields.values())


def test_a_seed_numpy_cannot_take_is_refused_up_front():
    assert make_config({"seed": 2**32 - 1}).seed == 2**32 - 1
    with pytest.raises(ConfigError, match="seed"):
        make_config({"seed": 2**32})


def test_every_field_declares_its_section():
    """--help groups the flags by the section each field declares; a field made without one is caught here."""
    missing = [
        name for name, field in TrainConfig.model_fields.items() if "section" not in (field.json_schema_extra or {})
    ]
    assert not missing, missing
    assert {field_section(name) for name in TrainConfig.model_fields} == set(SECTIONS)
    assert (field_section("dataset"), field_section("backbone"), field_section("epochs")) == (
        "data",
        "model",
        "optimisation",
    )
    assert field_section("out") == "execution"


def test_every_optional_field_and_only_those_declare_a_reset_word():
    for name, field in TrainConfig.model_fields.items():
        optional = type(None) in typing.get_args(field.annotation)
        assert (reset_word(name) is not None) == optional, name
        assert not optional or field.default is None, name
    words = {name: reset_word(name) for name in ("train_size", "test_size", "image_size", "ema", "num_workers")}
    assert words == {
        "train_size": "all",
        "test_size": "all",
        "image_size": "native",
        "ema": "off",
        "num_workers": "auto",
    }


def test_reset_overrides_a_preset_and_a_file(tmp_path):
    """RESET puts a field back to its natural value over every layer below; None still means "not given"."""
    assert resolve_config("mnist1000-fast").train_size == 1000
    reset = resolve_config("mnist1000-fast", overrides={"train_size": RESET, "image_size": RESET, "lr": None})
    assert reset.train_size is None and reset.image_size is None and reset.lr == load_preset("mnist1000-fast")["lr"]
    path = tmp_path / "c.yaml"
    path.write_text("ema: 0.99\ntime_budget: 60\n")
    from_file = resolve_config(None, path, {"ema": RESET, "time_budget": None})
    assert from_file.ema is None and from_file.time_budget == 60
    assert make_config({"train_size": RESET, "epochs": RESET}).train_size is None  # any field: its default
    assert make_config({"epochs": RESET}).epochs == TrainConfig().epochs


def test_null_in_a_config_file_still_resets(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train_size: null\nimage_size: null\n")
    cfg = resolve_config("mnist1000-fast", path)
    assert cfg.train_size is None and cfg.image_size is None


def test_reset_of_an_unknown_option_is_named():
    with pytest.raises(ConfigError, match="^unknown option --nope "):
        resolve_config(None, None, {"nope": RESET})

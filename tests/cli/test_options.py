"""CLI options come from the config's fields: same names, types and help; every training command has them."""

import pytest
import typer
from typer.testing import CliRunner

from tlearn.cli import app, main
from tlearn.cli.options import cli_type, flag
from tlearn.config import RESET, SECTIONS, TrainConfig, field_section, reset_word

COMMANDS = typer.main.get_command(app).commands
# What each command sets itself instead of taking from the config (the grid of compare, the output folders).
OWN = {"train": set(), "lr-find": {"out"}, "compare": {"backbone", "weights", "freeze", "train_size", "out"}}


def _options(command: str) -> dict:
    return {param.name: param for param in COMMANDS[command].params}


def test_every_config_field_is_an_option_with_its_type_and_help():
    for command, own in OWN.items():
        options = _options(command)
        for name, field in TrainConfig.model_fields.items():
            if name in own:
                continue
            option = options[name]
            assert flag(name) in option.opts, (command, name)
            assert option.help.startswith(field.description) and field.description, (command, name)
            kind = cli_type(field.annotation)
            argv = [flag(name)] if kind is bool else [flag(name), {int: "3", float: "0.5", str: "x"}[kind]]
            parsed = COMMANDS[command].make_context(command, argv).params[name]  # parsed, not run
            assert type(parsed) is kind, (command, name, parsed)
            if kind is bool:
                assert f"--no-{name.replace('_', '-')}" in option.secondary_opts


def test_cli_type_strips_optional_and_choices():
    fields = TrainConfig.model_fields
    assert cli_type(fields["train_size"].annotation) is int
    assert cli_type(fields["dataset"].annotation) is str
    assert cli_type(fields["in_chans"].annotation) is int
    assert cli_type(fields["freeze"].annotation) is str
    assert cli_type(fields["lr"].annotation) is float


def test_no_help_text_is_written_twice():
    """The config holds each option's help; the CLI modules restate none of them."""
    from pathlib import Path

    import tlearn.cli

    source = "".join(p.read_text() for p in Path(tlearn.cli.__file__).parent.glob("*.py"))
    for field in TrainConfig.model_fields.values():
        assert field.description not in source


def test_each_option_is_listed_under_the_section_its_field_declares():
    options = _options("train")
    for name in TrainConfig.model_fields:
        assert options[name].rich_help_panel == f"{field_section(name).capitalize()} options", name
    panels = [options[name].rich_help_panel for name in TrainConfig.model_fields]
    assert list(dict.fromkeys(panels)) == [f"{s.capitalize()} options" for s in SECTIONS]


def test_a_reset_word_is_in_the_help_and_metavar_and_parses_to_reset():
    options = _options("train")
    for name in TrainConfig.model_fields:
        word = reset_word(name)
        if word is None:
            continue
        assert f"'{word}'" in options[name].help and options[name].metavar.endswith(f"|{word}"), name
        parsed = COMMANDS["train"].make_context("train", [flag(name), word]).params[name]
        assert parsed is RESET, name
    parsed = COMMANDS["train"].make_context("train", ["--train-size", "all", "--ema", "0.99", "--out", "runs/x"]).params
    assert (parsed["train_size"], parsed["ema"], parsed["out"]) == (RESET, 0.99, "runs/x")
    assert COMMANDS["train"].make_context("train", ["--out", "./default"]).params["out"] == "./default"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--train-size", "x"], "--train-size takes a whole number or 'all', not 'x'"),
        (["train", "--image-size", "big"], "--image-size takes a whole number or 'native', not 'big'"),
        (["lr-find", "--ema", "none"], "--ema takes a number or 'off', not 'none'"),
        (["compare", "--num-workers", "2.5"], "--num-workers takes a whole number or 'auto', not '2.5'"),
        (["evaluate", "run", "--test-size", "half"], "--test-size takes a whole number or 'all', not 'half'"),
    ],
)
def test_a_bad_value_for_a_reset_flag_names_the_flag_and_its_forms(argv, message, capsys):
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2 and "Traceback" not in result.output and message in result.output
    with pytest.raises(SystemExit) as stop:  # the console script: one line on stderr
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and err.startswith(f"tlearn: error: {message} (see ")

"""CLI options come from the config's fields: same names, types and help; every training command has them."""

import typer

from tlearn.cli import app
from tlearn.cli.options import cli_type, flag
from tlearn.config import TrainConfig

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
            assert option.help == field.description and field.description, (command, name)
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

"""Every CLI command has help text (as sqlite-utils' docs test)."""

import pytest
from click.testing import CliRunner

from labeling.cli import cli

COMMANDS = sorted(cli.commands)


def test_design_commands_exist():
    assert {"ingest", "predict", "queue", "label", "train", "export", "evaluate", "scripts", "sequences", "rate",
            "serve"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name):
    command = cli.commands[name]
    assert command.help and len(command.help) > 20
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    for param in command.params:
        if param.param_type_name == "option" and param.name not in ("help",):
            assert param.help, f"{name} --{param.name} has no help"

"""Every CLI command has help text (as sqlite-utils' docs test), subcommands of groups included."""

import click
import pytest
from click.testing import CliRunner

from labeling.cli import cli


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


COMMANDS = dict(_commands(cli))


def test_design_commands_exist():
    assert {("ingest",), ("predict",), ("queue",), ("label",), ("train",), ("export",), ("evaluate",), ("scripts",),
            ("sequences",), ("rate",), ("serve",), ("users", "add"), ("users", "list"), ("users", "remove"),
            ("users", "passwd")} <= set(COMMANDS)


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_every_command_has_help(path):
    command = COMMANDS[path]
    assert command.help and len(command.help) > 20
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    for param in command.params:
        if param.param_type_name == "option" and param.name not in ("help",):
            assert param.help, f"{' '.join(path)} --{param.name} has no help"

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


# --- the README's map of the house -------------------------------------------------------------

def _layout_map() -> str:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Where things live", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1]


def test_the_readme_map_names_every_subpackage():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    layout = _layout_map()
    packages = sorted(init.parent.relative_to(repo) for top in ("labeling", "models", "store", "app_pages")
                      for init in (repo / top).rglob("__init__.py"))
    assert len(packages) > 10
    assert [str(p) for p in packages if f"{p.name}/" not in layout] == []


def test_every_file_the_readme_map_names_exists():
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    named = set(re.findall(r"\b[\w]+\.py\b", _layout_map()))
    existing = {p.name for p in repo.rglob("*.py") if ".venv" not in p.parts}
    assert named and sorted(named - existing) == []

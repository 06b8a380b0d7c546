"""The documents point at things that exist: every test docs/reliability.md names."""

from __future__ import annotations

import re

from tests.conftest import ROOT

REFERENCE = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def test_every_test_named_in_the_reliability_table_exists():
    text = (ROOT / "docs" / "reliability.md").read_text()
    named = sorted(set(REFERENCE.findall(text)))
    assert len(named) > 100
    missing = [f"{path}::{name}" for path, name in named
               if not (ROOT / path).is_file()
               or not re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M)]
    assert missing == []


def test_docs_commands_holds_every_commands_help_as_printed():
    """docs/commands.md is every command's --help; the README points at it."""
    from bnn_edge.cli.help import commands_markdown

    page = (ROOT / "docs" / "commands.md").read_text()
    assert page == commands_markdown(), ("docs/commands.md is out of date: "
                                         "python -m bnn_edge.cli.help > docs/commands.md")
    assert "docs/commands.md" in (ROOT / "README.md").read_text()

"""``--help`` of the Hydra commands: what the command does, then every option it takes.

The options are the command's composed configuration (``conf/<app>.yaml`` and the files of
its config groups, with any ``key=value`` given beside ``--help``), each with its default
and the comment written above it in its YAML file; a group lists its choices. Nothing
here imports torch, so ``--help`` answers at once.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bnn_edge.cli.app import CONF_DIR, app_groups, group_choices
from bnn_edge.errors import BnnEdgeError

#: help text width: fits an 80-column terminal
WIDTH = 80
#: the column where an option's description starts (a longer option puts it on a new line)
COLUMN = 32
_KEY = re.compile(r"^(\s*)([A-Za-z_][\w-]*)\s*:")


def yaml_comments(path: Path) -> tuple[str, dict[str, str]]:
    """(the file's opening comment, {dotted key: the comment block right above it}).

    The opening comment describes the file (a config group's choice); ``@package`` lines
    are left out. A blank line ends a comment block.
    """
    header: list[str] = []
    comments: dict[str, str] = {}
    block: list[str] = []
    stack: list[tuple[int, str]] = []
    opening = True
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            text = stripped.lstrip("#").strip()
            if not text.startswith("@package"):
                (header if opening else block).append(text)
            continue
        opening = opening and not stripped and not header
        if not stripped:
            block = []
            continue
        match = _KEY.match(line)
        if match is None:  # a list item or a continued value
            block = []
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(2)))
        if block:
            comments[".".join(key for _, key in stack)] = " ".join(" ".join(block).split())
        block = []
    return " ".join(" ".join(header).split()), comments


def _package(path: Path, group: str) -> str:
    """Where a group file's keys land: ``group.`` by default, nothing for ``_global_``."""
    head = path.read_text().split("\n", 3)[:3]
    return "" if any("@package _global_" in line for line in head) else f"{group}."


def first_sentence(text: str) -> str:
    """``"The paper's Fig. 7: ... reported. Seeds ..."`` -> up to the first full stop that
    ends a sentence (not before a number, as in "Fig. 7")."""
    match = re.search(r"\.(?=\s+\D|$)", text)
    return text[: match.start() + 1] if match else text


def shown(value) -> str:
    """A default as it is written on the command line (interpolations left as written)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ",".join(shown(v) for v in value) + "]"
    if value == "":
        return "''"
    return str(value)


def option_lines(option: str, text: str = "", indent: int = 2) -> list[str]:
    """One option: ``option`` then its description in a column, wrapped."""
    lead = " " * indent + option
    if not text:
        return [lead]
    pad = " " * COLUMN
    if len(lead) + 2 <= COLUMN:
        return textwrap.wrap(text, WIDTH, initial_indent=lead.ljust(COLUMN),
                             subsequent_indent=pad, break_on_hyphens=False)
    return [lead, *textwrap.wrap(text, WIDTH, initial_indent=pad, subsequent_indent=pad,
                                 break_on_hyphens=False)]


def _is_text_table(node) -> bool:
    """A mapping of long texts (a parameter set's ``sources``): shown as one entry."""
    return (isinstance(node, dict) and len(node) > 1
            and all(isinstance(v, str) and len(v) > WIDTH // 2 for v in node.values()))


def _objects_only(node) -> bool:
    """A mapping whose every entry is an object to build (a callback, a logger)."""
    return (isinstance(node, dict) and bool(node)
            and all(isinstance(v, dict) and "_target_" in v for v in node.values()))


def _leaves(node: dict, prefix: str, comments: dict[str, str], indent: int) -> list[str]:
    """Every option under ``node``: a value per line; an object to build (``_target_``)
    as its class; a mapping of texts as one line."""
    lines = []
    for key, value in node.items():
        if str(key).startswith("_"):
            continue
        path = f"{prefix}{key}"
        text = comments.get(path, "")
        if isinstance(value, dict) and "_target_" in value:
            target = value["_target_"].rpartition(".")[2]
            lines += option_lines(f"{path}: {target}", text, indent)
        elif _is_text_table(value):
            lines += option_lines(f"{path}.<name>=TEXT",
                                  text or f"{len(value)} texts, one per name", indent)
        elif isinstance(value, dict) and value:
            lines += _leaves(value, f"{path}.", comments, indent)
        else:
            lines += option_lines(f"{path}={shown(value)}", text, indent)
    return lines


def _group_files(group: str, choice: str) -> list[Path]:
    """The file of ``group=choice`` and the files of its own defaults list (same group)."""
    path = CONF_DIR / group / f"{choice}.yaml"
    if not path.is_file():
        return []
    files = [path]
    for entry in OmegaConf.load(path).get("defaults", []) or []:
        if isinstance(entry, str) and entry != "_self_":
            files += _group_files(group, entry)
    return files


def options_help(app: str, cfg: DictConfig) -> list[str]:
    """The option lines of ``conf/<app>.yaml`` composed as ``cfg`` (with its hydra node)."""
    choices = dict(cfg.hydra.runtime.choices)
    _, comments = yaml_comments(CONF_DIR / f"{app}.yaml")
    groups = app_groups(app)
    for group in groups:
        for path in reversed(_group_files(group, str(choices.get(group)))):
            package = _package(path, group)
            comments |= {f"{package}{k}": v for k, v in yaml_comments(path)[1].items()}
    listed = OmegaConf.to_container(OmegaConf.load(CONF_DIR / f"{app}.yaml"))["defaults"]
    defaults = {k: v for entry in listed if isinstance(entry, dict) for k, v in entry.items()}
    body = OmegaConf.to_container(cfg, resolve=False)
    body.pop("hydra", None)
    lines = ["Options (option=default; give any as option=value):"]
    for key, value in body.items():
        if key in groups or _objects_only(value):  # objects a group file adds for another app
            continue
        if isinstance(value, dict):
            lines += _leaves(value, f"{key}.", comments, 2)
        else:
            lines += option_lines(f"{key}={shown(value)}", comments.get(key, ""))
    for group in groups:
        lines.append("")
        choice = choices.get(group)
        allowed = group_choices(group)
        given = defaults.get(group)
        follows = f"; default {given}" if isinstance(given, str) and "${" in given else ""
        header = ""
        if choice is not None:
            header = yaml_comments(CONF_DIR / group / f"{choice}.yaml")[0]
        lines += option_lines(f"{group}={shown(choice)}",
                              f"one of {', '.join(allowed)}{follows}. {header}".strip())
        if choice is None:  # nothing chosen: what each choice is
            for name in allowed:
                about = first_sentence(yaml_comments(CONF_DIR / group / f"{name}.yaml")[0])
                lines += option_lines(f"{group}={name}", about, 4)
        value = body.get(group)
        if isinstance(value, dict):
            lines += _leaves(value, f"{group}.", comments, 4)
    return lines


def compose_for_help(app: str, overrides: list[str]) -> DictConfig:
    """``conf/<app>.yaml`` composed with ``overrides`` (a sweep's first values), Hydra's
    node included."""
    from hydra import compose, initialize_config_dir

    from bnn_edge.cli.app import _first_values, check_cli_choices, one_line

    check_cli_choices(overrides, groups=app_groups(app))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        try:
            return compose(app, overrides=_first_values(overrides), return_hydra_config=True)
        except Exception as e:  # an unknown key: Hydra's many lines made one
            raise BnnEdgeError(one_line(e)) from None


def app_help(app: str, usage: str, about: str, overrides: list[str] = ()) -> str:
    """The whole ``--help`` text of a Hydra command: ``usage``, ``about`` (paragraphs
    separated by a blank line), the options composed with ``overrides``, Hydra's flags."""
    cfg = compose_for_help(app, list(overrides))
    paragraphs = [textwrap.fill(p, WIDTH) for p in about.strip().split("\n\n")]
    return "\n".join([usage, "", "\n\n".join(paragraphs), "", *options_help(app, cfg), "",
                      textwrap.fill(HYDRA_FLAGS, WIDTH)]) + "\n"


#: what every Hydra command's help ends with
HYDRA_FLAGS = ("Hydra: --cfg job prints the configuration these options make, --hydra-help "
               "lists Hydra's own flags; key=value options given with --help show the "
               "options they select (model=eeg --help: the EEG data options).")


def command_help(command: str | None) -> str:
    """``bnn-edge <command> --help`` as printed (``bnn-edge --help`` for ``None``)."""
    from importlib import import_module

    from bnn_edge.cli.app import usage

    if command is None:
        from bnn_edge.cli.main import usage as main_usage

        return main_usage() + "\n"
    module = import_module(f"bnn_edge.cli.{command}")
    if command == "report":
        return module.help_text()
    return app_help(command, usage(command, module.ARGS), module.ABOUT)


def commands_markdown() -> str:
    """docs/commands.md: every command's ``--help``, as printed."""
    parts = ["# Commands\n\n"
             "Every command's `--help`, as printed (`python -m bnn_edge.<command> --help` is the "
             "same). Regenerate this page after changing a command or its configuration: "
             "`python -m bnn_edge.cli.help > docs/commands.md` (tests/test_docs.py checks it).\n"]
    from bnn_edge.cli.main import COMMANDS

    for command in (None, *COMMANDS):
        name = "bnn-edge" if command is None else f"bnn-edge {command}"
        parts.append(f"\n## {name}\n\n```\n$ {name} --help\n{command_help(command)}```\n")
    return "".join(parts)


if __name__ == "__main__":
    print(commands_markdown(), end="")

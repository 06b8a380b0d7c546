"""Adds the config folders of tasks from other packages to bnn_edge's Hydra search path.

A task registered under the ``bnn_edge.tasks`` entry-point group names a
``config_package`` holding ``model/<name>.yaml`` and ``data/<name>.yaml``
(docs/adding_a_task.md); with it on the search path ``model=<name>`` works in every command.
Other Hydra apps in the same environment are left alone.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


def _is_bnn_edge(path: str | None) -> bool:
    import bnn_edge

    conf = (Path(bnn_edge.__file__).resolve().parent / "conf").as_posix()
    return bool(path) and (path.removeprefix("file://") == conf or path == "pkg://bnn_edge.conf")


class TaskConfigs(SearchPathPlugin):
    """Appends ``pkg://<config_package>`` of every registered task that has one."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if not any(_is_bnn_edge(e.path) for e in search_path.get_path()):
            return
        from bnn_edge.tasks import config_packages

        for name, package in config_packages().items():
            search_path.append(provider=f"bnn_edge-task-{name}", path=f"pkg://{package}")

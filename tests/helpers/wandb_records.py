"""Reading back offline W&B runs: the ``.wandb`` record file parsed into wandb's own protobuf
``Record`` messages, no network.

wandb 0.31 writes the file from its Go service and ships no Python reader (the old
``wandb.sdk.internal.datastore`` is gone), so the framing is read here: a 7-byte header
(``:W&B``, magic 0xBEE1, version 0), then LevelDB-log blocks of 32 KiB whose chunks carry
a 7-byte header (CRC-32C, length, type: full, first, middle, last).
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

HEADER = struct.Struct("<4sHB")
CHUNK = struct.Struct("<IHB")
BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> list:
    """Every complete record of a ``.wandb`` file, as ``wandb_internal_pb2.Record``."""
    from wandb.proto.wandb_internal_pb2 import Record

    data = Path(path).read_bytes()
    ident, magic, version = HEADER.unpack_from(data)
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), (ident, magic, version)
    pos, pending, payloads = HEADER.size, b"", []
    while pos + CHUNK.size <= len(data):
        left = BLOCK - pos % BLOCK
        if left < CHUNK.size:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = CHUNK.unpack_from(data, pos)
        if kind == 0:
            break
        chunk = data[pos + CHUNK.size: pos + CHUNK.size + length]
        pos += CHUNK.size + length
        if kind == FULL:
            payloads.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            payloads.append(pending + chunk)
    records = []
    for payload in payloads:
        record = Record()
        record.ParseFromString(payload)
        records.append(record)
    return records


def _set(tree: dict, keys: list[str], value) -> None:
    for key in keys[:-1]:
        tree = tree.setdefault(key, {})
    tree[keys[-1]] = value


@dataclass
class OfflineRun:
    """What an offline run recorded: its run settings, merged config, logged keys."""

    folder: Path
    name: str = ""
    group: str = ""
    job_type: str = ""
    project: str = ""
    entity: str = ""
    notes: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)  # key -> its last logged value (JSON)
    summary: dict = field(default_factory=dict)

    def tables(self) -> dict[str, dict]:
        """The logged tables (a plot's data is ``<key>_table``): key -> its file record."""
        return {k: v for k, v in self.history.items()
                if isinstance(v, dict) and v.get("_type") == "table-file"}


def read_run(folder: Path, seconds: float = 60.0) -> OfflineRun:
    """The offline run in ``folder`` (``.../wandb/offline-run-*``), once its exit record is
    written (wandb's service writes asynchronously and can lag on a loaded machine)."""
    (path,) = Path(folder).glob("*.wandb")
    deadline = time.monotonic() + seconds
    while True:
        records = read_records(path)
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            break
        assert time.monotonic() < deadline, f"{path}: no exit record after {seconds} s"
        time.sleep(0.5)
    run = OfflineRun(Path(folder))
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.name, run.group, run.job_type = r.display_name, r.run_group, r.job_type
            run.project, run.entity, run.notes = r.project, r.entity, r.notes
            run.tags = list(r.tags)
        target, updates = {"run": (run.config, record.run.config.update),
                           "config": (run.config, record.config.update),
                           "history": (run.history, record.history.item),
                           "summary": (run.summary, record.summary.update)}.get(kind, ({}, ()))
        for item in updates:
            _set(target, [item.key] if item.key else list(item.nested_key),
                 json.loads(item.value_json))
    return run


def offline_runs(root: Path) -> list[OfflineRun]:
    """Every offline run under ``root``, read back, in folder order."""
    return [read_run(p) for p in sorted(Path(root).rglob("offline-run-*")) if p.is_dir()]

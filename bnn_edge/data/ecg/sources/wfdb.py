"""Any folder of WFDB records (``*.hea``, searched recursively), at any sampling rate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from bnn_edge.data.ecg.sources.records import (
    FileSource,
    Record,
    RecordProblem,
    SkipLog,
    check_root,
    files_fingerprint,
    prepare_wfdb_signal,
    read_wfdb,
)
from bnn_edge.errors import DataError
from bnn_edge.progress import track


class WFDBSource(FileSource):
    """Every WFDB record (``*.hea``, searched recursively, sorted by path) under a folder.

    Any sampling rate; the 12 standard leads are matched by name, case-insensitively
    (other channels are ignored); signals in V or uV are converted to mV. Records with
    missing leads, bad signals or that wfdb cannot read are skipped and counted.
    """

    name, labelled, group_by = "wfdb", False, "record"

    def __init__(self, root: Path, max_records: int | None = None):
        expected = "a folder of 12-lead WFDB records (.hea headers with their signal files)"
        check_root(root, expected)
        self.root, self.max_records = root, max_records
        self.headers = sorted(root.rglob("*.hea"))
        if not self.headers:
            raise DataError(f"{root}: no WFDB header files (*.hea) found; data.source=wfdb "
                            f"expects {expected}, searched recursively")
        if max_records is not None:
            self.headers = self.headers[:max_records]

    def _record_files(self) -> list[Path]:
        """Each header and the files next to it sharing its name (its signal files)."""
        listing: dict[Path, list[str]] = {}
        files = []
        for hea in self.headers:
            names = listing.setdefault(hea.parent, sorted(p.name for p in hea.parent.iterdir()))
            files += [hea.parent / n for n in names if n.startswith(f"{hea.stem}.")]
        return files

    def settings(self) -> dict:
        return {"root": str(self.root), "max_records": self.max_records,
                "files": files_fingerprint(self._record_files())}

    def describe(self) -> str:
        return f"12-lead WFDB records from {self.root}"

    def records(self, skips: SkipLog, progress: bool = False) -> Iterator[Record]:
        heads = self.headers
        for hea in track(heads, f"Reading {len(heads)} WFDB records", progress):
            name = hea.relative_to(self.root).with_suffix("").as_posix()
            try:
                signal, fields = read_wfdb(hea.with_suffix(""))
            except Exception as e:  # any folder: skip what wfdb cannot read, and count it
                skips.add(RecordProblem("unreadable", f"{name}: wfdb cannot read it "
                                                      f"({type(e).__name__}: {e})"))
                continue
            try:
                x = prepare_wfdb_signal(signal, fields, name)
            except RecordProblem as p:
                skips.add(p)
                continue
            yield Record(name, x, name, float(fields["fs"]))

    @classmethod
    def from_options(cls, root: Path, max_records: int | None = None, **_) -> WFDBSource:
        return cls(root, max_records)

"""PhysioNet PTB-XL: ``ptbxl_database.csv`` plus WFDB records, grouped by patient."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from bnn_edge.data.ecg.sources.records import (
    PTBXL_TABLE,
    FileSource,
    Record,
    RecordProblem,
    SkipLog,
    check_root,
    edge_margin,
    files_fingerprint,
    prepare_wfdb_signal,
    read_wfdb,
)
from bnn_edge.errors import DataError
from bnn_edge.progress import track

SAMPLINGS = (500, 100)


class PTBXLSource(FileSource):
    """PTB-XL: ``ptbxl_database.csv`` plus WFDB records in ``records500/`` or ``records100/``.

    Records are taken in ``ecg_id`` order and trimmed by 25 samples (0.1 s) at each end
    after resampling at either rate; those with a non-empty ``electrodes_problems``
    entry are left out (counted) unless ``exclude_electrode_problems`` is false. Trials
    are grouped by ``patient_id``; ``strat_fold`` is kept for :func:`strat_fold_split`.
    """

    name, labelled, group_by = "ptbxl", False, "patient_id"

    def __init__(self, root: Path, sampling: int = 500, exclude_electrode_problems: bool = True,
                 max_records: int | None = None):
        self.root, self.sampling = root, sampling
        self.exclude, self.max_records = exclude_electrode_problems, max_records
        expected = (f"the PTB-XL folder holding {PTBXL_TABLE}, records100/ and records500/ "
                    f"(see docs/ecg_data.md)")
        check_root(root, expected)
        self.table = root / PTBXL_TABLE
        if not self.table.is_file():
            hint = [p.parent for p in sorted(root.glob(f"*/{PTBXL_TABLE}"))]
            also = f"; did you mean data.root={hint[0]}?" if hint else ""
            raise DataError(f"{self.table}: not found; data.root must be {expected}{also}")
        self.folder = root / f"records{sampling}"
        if not self.folder.is_dir():
            raise DataError(f"{self.folder}: not found; data.sampling={sampling} reads the "
                            f"{sampling} Hz records from records{sampling}/ of the PTB-XL copy")
        self.column = "filename_hr" if sampling == 500 else "filename_lr"
        # the same margin at either rate, so that data.sampling changes resolution, not windows
        self.margin = edge_margin(min(SAMPLINGS))
        self._rows: tuple[list[dict], list[dict]] | None = None
        with open(self.table, newline="") as f:
            header = next(csv.reader(f), [])
        self._require_columns(header)

    def _require_columns(self, header: list[str]) -> None:
        need = ["ecg_id", "patient_id", "strat_fold", self.column]
        if self.exclude:
            need.append("electrodes_problems")
        missing = [c for c in need if c not in header]
        if missing:
            raise DataError(f"{self.table}: missing column(s) {', '.join(missing)}; expected "
                            f"PTB-XL's database table (ecg_id, patient_id, strat_fold, "
                            f"filename_lr, filename_hr, electrodes_problems, ...)")

    def rows(self) -> tuple[list[dict], list[dict]]:
        """(records to read, records left out for electrode problems), in ecg_id order."""
        if self._rows is None:
            keep, excluded = [], []
            with open(self.table, newline="") as f:
                for line, row in enumerate(csv.DictReader(f), start=2):
                    try:
                        rec = {"ecg_id": int(float(row["ecg_id"])),
                               "patient": str(int(float(row["patient_id"]))),
                               "strat_fold": int(float(row["strat_fold"])),
                               "file": row[self.column].strip(),
                               "problem": (row.get("electrodes_problems") or "").strip()}
                    except (TypeError, ValueError) as e:
                        raise DataError(f"{self.table}, line {line}: cannot read ecg_id, "
                                        f"patient_id or strat_fold ({e})") from None
                    if not rec["file"]:
                        raise DataError(f"{self.table}, line {line}: empty {self.column}")
                    (excluded if self.exclude and rec["problem"] else keep).append(rec)
            keep.sort(key=lambda r: r["ecg_id"])
            if self.max_records is not None:
                keep = keep[: self.max_records]
            self._rows = keep, excluded
        return self._rows

    def settings(self) -> dict:
        keep, _ = self.rows()
        files = [self.table]
        for rec in keep:
            files += [self.root / f"{rec['file']}.hea", self.root / f"{rec['file']}.dat"]
        return {"root": str(self.root), "sampling": self.sampling, "max_records":
                self.max_records, "exclude_electrode_problems": self.exclude,
                "files": files_fingerprint(files, f"{PTBXL_TABLE} (the PTB-XL copy is "
                                                  f"incomplete: download it whole or set "
                                                  f"data.max_records)")}

    def describe(self) -> str:
        return f"PTB-XL 12-lead ECGs from {self.root} (records{self.sampling}, {self.sampling} Hz)"

    def records(self, skips: SkipLog, progress: bool = False) -> Iterator[Record]:
        keep, excluded = self.rows()
        for rec in excluded:
            skips.add(RecordProblem("electrodes_problems",
                                    f"{rec['file']}: electrodes_problems={rec['problem']!r} "
                                    f"in {PTBXL_TABLE}"))
        for rec in track(keep, f"Reading {len(keep)} PTB-XL records", progress):
            path = self.root / rec["file"]
            try:
                signal, fields = read_wfdb(path)
            except FileNotFoundError as e:
                raise DataError(f"{path}: record files missing ({e}); {PTBXL_TABLE} lists it "
                                f"(ecg_id {rec['ecg_id']}): the PTB-XL copy is incomplete") from e
            except Exception as e:  # wfdb raises many types on a corrupt header or signal file
                raise DataError(f"{path}: cannot read this WFDB record "
                                f"({type(e).__name__}: {e})") from e
            try:
                x = prepare_wfdb_signal(signal, fields, rec["file"], exactly_12=True,
                                        margin=self.margin)
            except RecordProblem as p:
                skips.add(p)
                continue
            yield Record(rec["file"], x, rec["patient"], float(fields["fs"]), rec["strat_fold"])

    @classmethod
    def from_options(cls, root: Path, sampling: int = 500, exclude_electrode_problems: bool = True,
                     max_records: int | None = None, **_) -> PTBXLSource:
        return cls(root, sampling, exclude_electrode_problems, max_records)

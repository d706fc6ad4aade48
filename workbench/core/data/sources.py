"""A table to read: a dataset version (``churn@3``) or a data file not yet added.

Drift compares two of these and scoring reads one, so both accept a new batch as a
file without making the user add it first. Nothing is read until asked: the rows come
from the version's record or a count over the lazy scan, and columns load one at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import DataError

if TYPE_CHECKING:
    import polars as pl

    from workbench.core.data.datasets import Datasets


# Planned columns are read in groups of about this size (see ``Table.plan``)
GROUP_BYTES = 64 << 20

_DATA_SUFFIXES = {".csv", ".tsv", ".parquet", ".jsonl", ".ndjson", ".json", ".txt"}


class Table:
    def __init__(self, datasets: Datasets, spec: str, keep_columns: bool = False) -> None:
        import polars as pl

        from workbench.core.data import ingest

        self.spec = spec
        path = Path(spec).expanduser()
        try:
            is_file = path.is_file()
        except OSError:  # a name too long to be a path is a reference (and a bad one)
            is_file = False
        if is_file:
            src = ingest.open_source(path)
            self.label = path.name
            self.version = None
            self.lf = ingest.scan(src)
            # the first rows through the same reader as `data add`: the same refusals
            # (a quote never closed, bad JSON, short rows) in the same words
            try:
                self._check_first_rows(src, ingest.INFER_ROWS)
            except ingest.NeedsFullInference:  # a later value needs wider types
                self.lf = ingest.scan(src, infer_rows=None)
                self._check_first_rows(src, None)
            try:
                self.schema = self.lf.collect_schema()
                self.rows = int(self.lf.select(pl.len()).collect().item())
            except Exception as exc:
                raise ingest.data_error(src, exc) from None
        else:
            if "/" in spec or path.suffix.lower() in _DATA_SUFFIXES:
                ingest.open_source(path)  # says what is there instead: a folder, nothing
                raise DataError(f"no such file: {path}")
            self.version = datasets.resolve(spec, sums=True)  # its scan checks them
            self.label = self.version.ref
            self.lf = datasets.scan(self.version)
            self.schema = self.lf.collect_schema()
            self.rows = self.version.n_rows
        # Keeping columns costs their memory until the table goes: only worth it for a
        # reference that a timeline compares again and again.
        self.keep_columns = keep_columns
        self._cache: dict[str, pl.Series] = {}
        self._plan: list[str] = []  # columns still to read, a group at a time (``plan``)
        self._fetched: dict[str, pl.Series] = {}  # read with a group, each handed out once
        self._lock = threading.Lock()  # one thread reads a group; another waits for it
        self._making: dict[tuple[Any, ...], threading.Lock] = {}  # see ``derived``
        self._making_lock = threading.Lock()

    @staticmethod
    def _check_first_rows(src: Any, infer_rows: int | None) -> None:
        from workbench.core.data import ingest

        first = next(iter(ingest.batches(src, chunk_rows=2000, infer_rows=infer_rows)), None)
        if first is not None and first.width and first.get_column(first.columns[-1]).null_count():
            ingest.check_short_rows(src, first.width)  # short rows leave the last column null

    @classmethod
    def of_frame(cls, label: str, df: pl.DataFrame) -> Table:
        """A table over a frame already in memory (e.g. a model's predictions)."""
        t = cls.__new__(cls)
        t.spec, t.label, t.version = label, label, None
        t.lf, t.schema, t.rows = df.lazy(), df.schema, df.height
        t.keep_columns = True
        t._cache = {c: df.get_column(c) for c in df.columns}
        t._plan, t._fetched, t._lock = [], {}, threading.Lock()
        t._making, t._making_lock = {}, threading.Lock()
        return t

    @property
    def content_id(self) -> str | None:
        """The version's content hash; None for a file (hashing it would cost a full read)."""
        return self.version.id if self.version else None

    def derived(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        """A value made from this table's columns, made once when the table keeps its
        columns (monitoring compares one training table with window after window).

        Made once even when threads ask at the same time: a first monitor report's
        windows derive the training columns while another thread prepares them from
        the last column back, and whichever comes to a column first makes it while
        the other waits for that column only."""
        if not self.keep_columns:
            return make()
        memo: dict[tuple[Any, ...], Any] = self.__dict__.setdefault("_derived", {})
        if key in memo:
            return memo[key]
        with self._making_lock:  # not _lock: that one is held while a group is read
            lock = self._making.setdefault(key, threading.Lock())
        with lock:
            if key not in memo:
                memo[key] = make()
        return memo[key]

    def plan(self, names: list[str]) -> None:
        """Say which columns will be asked for, in order: ``column`` then reads them a
        group at a time (about GROUP_BYTES a group) rather than one by one. One read of
        several columns decodes them on every core at once and opens each file once:
        a drift report of 1M rows x 25 columns a side took 0.96-1.00 s instead of
        1.03-1.17 (a CSV side, read column by column, was parsed once per column),
        while the memory held is a group or two, not the table (reading each side
        whole was as quick, at twice the peak)."""
        self._plan = [n for n in dict.fromkeys(names) if n in self.schema and n not in self._cache]

    def _group_of(self, name: str) -> list[str]:
        """``name`` and the planned columns after it, up to GROUP_BYTES (estimated from
        the types: 8 bytes a number or time, 32 a text value)."""
        at = self._plan.index(name)
        group: list[str] = []
        size = 0
        for n in self._plan[at:]:
            dtype = self.schema[n]
            size += (8 if dtype.is_numeric() or dtype.is_temporal() else 32) * max(1, self.rows)
            if group and size > GROUP_BYTES:
                break
            group.append(n)
        return group

    def column(self, name: str) -> pl.Series:
        """One column (kept for the next call when ``keep_columns``)."""
        s = self._cache.get(name)
        if s is not None:
            return s
        if name in self._plan or name in self._fetched:
            with self._lock:  # another thread may be reading this column's group
                if name not in self._fetched and name in self._plan:
                    group = self._group_of(name)
                    frame = self.lf.select(group).collect()
                    self._plan = [n for n in self._plan if n not in group]
                    self._fetched.update((n, frame.get_column(n)) for n in group)
                s = self._fetched.pop(name, None)
        if s is None:
            s = self.lf.select(name).collect().get_column(name)
        if self.keep_columns:
            self._cache[name] = s
        return s

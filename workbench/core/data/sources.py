"""A table to read: a dataset version (``churn@3``) or a data file not yet added.

Drift compares two of these and scoring reads one, so both accept a new batch as a
file without making the user add it first. Nothing is read until asked: the rows come
from the version's record or a count over the lazy scan, and columns load one at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import DataError

if TYPE_CHECKING:
    import polars as pl

    from workbench.core.data.datasets import Datasets


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
            self.version = datasets.resolve(spec)
            self.label = self.version.ref
            self.lf = datasets.scan(self.version)
            self.schema = self.lf.collect_schema()
            self.rows = self.version.n_rows
        # Keeping columns costs their memory until the table goes: only worth it for a
        # reference that a timeline compares again and again.
        self.keep_columns = keep_columns
        self._cache: dict[str, pl.Series] = {}

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
        return t

    @property
    def content_id(self) -> str | None:
        """The version's content hash; None for a file (hashing it would cost a full read)."""
        return self.version.id if self.version else None

    def derived(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        """A value made from this table's columns, made once when the table keeps its
        columns (monitoring compares one training table with window after window)."""
        if not self.keep_columns:
            return make()
        memo: dict[tuple[Any, ...], Any] = self.__dict__.setdefault("_derived", {})
        if key not in memo:
            memo[key] = make()
        return memo[key]

    def column(self, name: str) -> pl.Series:
        """One column (kept for the next call when ``keep_columns``)."""
        s = self._cache.get(name)
        if s is None:
            s = self.lf.select(name).collect().get_column(name)
            if self.keep_columns:
                self._cache[name] = s
        return s

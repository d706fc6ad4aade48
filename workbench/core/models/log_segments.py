"""Typed segments of the prediction log: a model version's logged rows as Parquet columns.

The catalog keeps each logged row's inputs and outputs as JSON (right for SQL, labels
and any model's shape), and JSON is slow to turn back into columns: 1M rows of 25 inputs
take DuckDB about 2 s. Monitoring reads whole versions again and again, so it reads
these segments instead: Parquet files under ``.workbench/cache/predictions/``, one folder
per model version, each holding whole requests as typed columns (the signature's inputs
and the outputs), ``request_id``, ``row`` and ``ts``.

They are derived data, never the record. ``workbench predict`` writes its scoring's
segment as it scores (it has the typed columns in hand); served traffic is turned into a
segment the first time it is read. Every read checks the segments against the catalog,
request by request (rows per request): a request the catalog no longer holds (pruned by
retention) or holds otherwise drops its segment, and what no segment holds is read from
the JSON into a new one. Each file's XXH3 is in the folder's manifest and checked on
read; a file that fails is dropped and rebuilt, so a damaged cache costs time, never a
wrong answer. Deleting the folder is always safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import polars as pl

    from workbench.core.store.catalog import Catalog

FORMAT = 2  # of the segments and manifest; another value rebuilds them
HELD_MAX = 256  # requests a file's manifest entry lists (a served folder's hold thousands)
ORDER = ["ts", "request_id", "row"]
MANIFEST = "manifest.json"
COMPACT_AT = 32  # segments in a folder: more are merged into one at the next read
# LZ4, not Parquet's usual zstd: a log is mostly float inputs and scores, which zstd
# shrinks by 4%, and a report reads them back whole. 1M logged rows of 25 inputs read
# in 0.019 s from LZ4 against 0.073 s from zstd, for 5% more disk (174 MB against 165).
CODEC: Final = "lz4"
_DUCK = {"Boolean": "BOOLEAN", "Date": "DATE", "String": "VARCHAR", "Utf8": "VARCHAR"}


def duck_type(text: str) -> str:
    """The DuckDB type a signature's polars dtype string is read as from JSON."""
    if text in _DUCK:
        return _DUCK[text]
    if text == "Categorical" or text.startswith("Enum"):
        return "VARCHAR"
    if text.startswith("Datetime"):
        return "TIMESTAMP"
    if re.fullmatch(r"U?Int(8|16|32|64|128)|Float(32|64)|Decimal.*", text):
        return "DOUBLE"
    return "VARCHAR"


def folder_of(store_dir: Path, model: str, version: int) -> Path:
    """A version's segment folder (the model's name hashed: any name makes a path)."""
    key = hashlib.sha256(model.encode()).hexdigest()[:16]
    return store_dir / "cache" / "predictions" / f"{key}-{version}"


def layout(inputs: dict[str, str], outputs: list[str]) -> dict[str, Any]:
    """What a folder's segments hold; a folder made for another layout is rebuilt."""
    return {"format": FORMAT, "inputs": inputs, "outputs": outputs}


def typed(
    frame: pl.DataFrame, inputs: dict[str, str], outputs: list[str], label: str
) -> pl.DataFrame:
    """``request_id``, ``row``, ``ts``, the inputs as the signature types them and the
    outputs (a classifier's ``prediction`` as text, scores and values as floats): the
    one schema a segment has, whichever way its rows came."""
    import polars as pl

    from workbench.core.models.inputs import conform

    x = conform(frame.select(list(inputs)), inputs, label)
    text_prediction = len(outputs) > 1
    outs = [
        pl.col(c).cast(pl.String if c == "prediction" and text_prediction else pl.Float64)
        for c in outputs
    ]
    head = frame.select(
        pl.col("request_id").cast(pl.String),
        pl.col("row").cast(pl.Int32),
        pl.col("ts").cast(pl.Datetime("us")),
    )
    return pl.concat([head, x, frame.select(outs)], how="horizontal")


def _name(first: datetime, seq: int) -> str:
    """Segments are named by their earliest row's time, so that reading them in name
    order is (nearly always) reading the log in time order."""
    return f"seg-{first:%Y%m%dT%H%M%S%f}-{seq:05d}-{uuid.uuid4().hex[:8]}.parquet"


def _key(frame: pl.DataFrame, i: int) -> tuple[Any, Any, Any]:
    return tuple(frame.get_column(c)[i] for c in ORDER)


def files_in_order(frame: pl.DataFrame, rows: list[int] | None) -> bool:
    """Whether files read one after another (``rows`` each, every one sorted by
    (ts, request_id, row) when written) run in order: only where one file meets the
    next can they not, so only those rows are compared. Without the counts, every row."""
    if rows is None or sum(rows) != frame.height:
        return in_order(frame)
    at = 0
    for n in rows[:-1]:
        at += n
        if 0 < at < frame.height and _key(frame, at - 1) > _key(frame, at):
            return False
    return True


def _skip(frame: pl.DataFrame, start: Callable[[pl.DataFrame], int] | None) -> pl.DataFrame:
    return frame if start is None else frame.slice(start(frame.select(ORDER)))


@dataclass(frozen=True)
class ReadFiles:
    """The segment files a ``Segments.read`` took its rows from, in order, with the rows
    each holds: further columns of those rows come from them, checked moments ago,
    without any of that read's bookkeeping again."""

    paths: list[Path]
    rows: list[int]

    def holding(self, at: int) -> tuple[int, int]:
        """The first file that holds row ``at`` (of all rows, read one file after
        another), and the rows before it."""
        first, before = 0, 0
        while first < len(self.rows) - 1 and before + self.rows[first] <= at:
            before += self.rows[first]
            first += 1
        return first, before

    def more(self, columns: list[str], at: int, n: int | None = None) -> pl.DataFrame | None:
        """``columns`` (with request_id and row, to join by) of the rows from ``at`` on
        (``n`` of them, or all), in the order the read gave them. None when a file has
        gone since (another process compacted the folder): then read again."""
        import polars as pl

        first, before = self.holding(at)
        last = len(self.paths) if n is None else self.holding(at + max(n, 1) - 1)[0] + 1
        try:
            return (
                pl.scan_parquet(self.paths[first:last], glob=False)
                .select(["request_id", "row", *columns])
                .slice(at - before, n)
                .collect()
            )
        except (OSError, pl.exceptions.PolarsError):
            return None


def in_order(frame: pl.DataFrame) -> bool:
    """Whether rows run by (ts, request_id, row) already: a check far cheaper than the
    sort it spares."""
    import polars as pl

    if frame.height < 2:
        return True
    ts, rid, row = pl.col("ts"), pl.col("request_id"), pl.col("row")
    step = (ts.shift(-1) > ts) | (
        (ts.shift(-1) == ts)
        & ((rid.shift(-1) > rid) | ((rid.shift(-1) == rid) & (row.shift(-1) > row)))
    )
    return bool(frame.select(step.head(frame.height - 1).all()).item())


class Segments:
    """One model version's folder of segments (see the module doc)."""

    def __init__(
        self, store_dir: Path, model: str, version: int, inputs: dict[str, str], outputs: list[str]
    ) -> None:
        self.folder = folder_of(store_dir, model, version)
        self.model, self.version = model, version
        self.inputs, self.outputs = inputs, outputs
        self.layout = layout(inputs, outputs)

    # ---- writing -------------------------------------------------------------------

    def add(self, frames: list[pl.DataFrame]) -> None:
        """Add whole requests (each frame already ``typed``) as one segment."""
        import polars as pl

        if not frames:
            return
        with self._locked():
            manifest = self._manifest()
            self._write(manifest, pl.concat(frames, how="vertical"))
            self._save(manifest)

    def add_files(self, files: list[tuple[Path, str]], first: datetime) -> None:
        """Move segments written elsewhere (``typed`` frames as Parquet, with their XXH3,
        in order, none earlier than ``first``) in; ``workbench predict`` writes its
        scoring's batches so, as it scores."""
        if not files:
            return
        import polars as pl

        with self._locked():
            manifest = self._manifest()
            for i, (path, digest) in enumerate(files):
                name = _name(first, i)
                held = pl.read_parquet(path, columns=ORDER, glob=False)
                if not in_order(held):  # each file must run in order (files_in_order)
                    path.unlink(missing_ok=True)
                    continue  # its rows are read from the JSON into a sorted segment
                os.replace(path, self.folder / name)
                manifest["files"][name] = digest
                self._note(manifest, name, held)
            self._save(manifest)

    def _write(self, manifest: dict[str, Any], frame: pl.DataFrame) -> None:
        import xxhash

        frame = frame.sort(ORDER)
        name = _name(frame.get_column("ts").min(), 0)  # type: ignore[arg-type]
        tmp = self.folder / f".{name}.tmp"
        frame.write_parquet(tmp, compression=CODEC, statistics=False)
        manifest["files"][name] = xxhash.xxh3_128_hexdigest(tmp.read_bytes())
        os.replace(tmp, self.folder / name)
        self._note(manifest, name, frame)

    @staticmethod
    def _note(manifest: dict[str, Any], name: str, frame: pl.DataFrame) -> None:
        """Keep a file's rows, and (when few) its requests' row counts, in the manifest:
        a read then knows where files meet and what each holds without scanning them."""
        import polars as pl

        manifest.setdefault("rows", {})[name] = frame.height
        held = frame.group_by("request_id").agg(pl.len())
        if held.height <= HELD_MAX:
            manifest.setdefault("held", {})[name] = dict(held.iter_rows())

    # ---- reading -------------------------------------------------------------------

    def read(
        self,
        catalog: Catalog,
        from_json: Callable[[list[str]], pl.DataFrame],
        columns: list[str] | None = None,
        start: Callable[[pl.DataFrame], int] | None = None,
    ) -> tuple[pl.DataFrame, ReadFiles | None]:
        """Every row the catalog logged for this version, typed, in time order (then by
        request and row), and (with ``start``) the files they were read from, which
        give more of the same rows' columns (None when the rows came another way).

        ``from_json(request_ids)`` reads requests no segment holds yet (typed); they are
        kept as a new segment. ``columns`` narrows what is read back (all by default; it
        must hold ``ts``, ``request_id`` and ``row`` when ``start`` is given).
        ``start(order)``, shown every row's (ts, request_id, row) in order, says how
        many to skip: the rest of their columns are not read (a monitor report shows
        the latest windows, and a log grows for as long as a model serves)."""
        import polars as pl

        from workbench.core.store.catalog import frame_of

        with catalog.read() as con:
            want = frame_of(
                con,
                """SELECT request_id, count(*)::BIGINT AS n FROM predictions
                   WHERE model = ? AND version = ? GROUP BY request_id""",
                [self.model, self.version],
                {"request_id": pl.String, "n": pl.Int64},
            )
        try:
            paths, rows = self._refresh(want, from_json)
        except OSError:  # a read-only store or a full disk: the JSON, as before segments
            whole = from_json(want.get_column("request_id").to_list()).sort(ORDER)
            return _skip(whole, start), None
        if not paths:
            empty = from_json([])
            return (empty.select(columns) if columns else empty), None
        if start is None or rows is None:
            frame = pl.read_parquet(paths, columns=columns, glob=False)
            ordered = frame if files_in_order(frame, rows) else frame.sort(ORDER)
            return _skip(ordered, start), None
        order = pl.read_parquet(paths, columns=ORDER, glob=False)
        if not files_in_order(order, rows):  # files that overlap in time: read whole
            return _skip(
                pl.read_parquet(paths, columns=columns, glob=False).sort(ORDER), start
            ), None
        files = ReadFiles(paths, rows)
        at = start(order)
        first, before = files.holding(at)
        # a scan, so that the row groups before ``at`` are skipped, not read and dropped;
        # the order columns are in hand already
        lf = pl.scan_parquet(paths[first:], glob=False)
        names = columns or lf.collect_schema().names()
        others = [c for c in names if c not in ORDER]
        if not others:
            return order.slice(at).select(names), files
        rest = lf.select(others).slice(at - before).collect()
        return pl.concat([order.slice(at), rest], how="horizontal").select(names), files

    def _refresh(
        self, want: pl.DataFrame, from_json: Callable[[list[str]], pl.DataFrame]
    ) -> tuple[list[Path], list[int] | None]:
        """Bring the folder in line with the catalog's ``want`` (request_id, n); its
        segment files and their rows (None when the manifest lacks a count)."""
        import polars as pl

        with self._locked():
            manifest = self._manifest()
            files = self._checked(manifest)
            held = self._held(manifest, files)
            # a segment is kept only if each of its requests is whole in the catalog (a
            # scoring's batches may be several segments; two monitors racing would hold
            # a request twice: too many rows, so both go and it is read again)
            total = held.group_by("request_id").agg(pl.col("rows").sum())
            wrong = total.join(want, on="request_id", how="left").filter(
                pl.col("n").is_null() | (pl.col("n") != pl.col("rows"))
            )
            bad = set(
                held.filter(pl.col("request_id").is_in(wrong.get_column("request_id").implode()))
                .get_column("file")
                .to_list()
            )
            for name in bad:
                self._drop(manifest, name)
            kept = [f for f in files if f not in bad]
            covered = held.filter(pl.col("file").is_in(kept)).get_column("request_id")
            missing = want.filter(~pl.col("request_id").is_in(covered.implode()))
            if missing.height:
                new = from_json(missing.get_column("request_id").to_list())
                if new.height:
                    self._write(manifest, new)
            if len(manifest["files"]) > COMPACT_AT:
                self._compact(manifest)
            self._save(manifest)
            names = sorted(manifest["files"])
            counts = manifest.get("rows", {})
            rows = [counts[f] for f in names] if all(f in counts for f in names) else None
        return [self.folder / f for f in names], rows

    def _held(self, manifest: dict[str, Any], files: list[str]) -> pl.DataFrame:
        """file, request_id, rows: what each segment holds (from the manifest where it
        says, else read from the file)."""
        import polars as pl

        schema = {"request_id": pl.String, "rows": pl.Int64, "file": pl.String}
        noted = manifest.get("held", {})
        known = [
            pl.DataFrame(
                {"request_id": list(noted[f]), "rows": list(noted[f].values()), "file": f},
                schema=schema,
            )
            for f in files
            if f in noted
        ]
        parts = [
            pl.scan_parquet(self.folder / f, glob=False)
            .group_by("request_id")
            .agg(pl.len().cast(pl.Int64).alias("rows"))
            .with_columns(file=pl.lit(f))
            for f in files
            if f not in noted
        ]
        found = [*known, *(pl.collect_all(parts) if parts else [])]
        return pl.concat(found) if found else pl.DataFrame(schema=schema)

    def _checked(self, manifest: dict[str, Any]) -> list[str]:
        """The manifest's files whose bytes still hash to what was written: two at a
        time, as a scoring writes several (xxhash lets go of the GIL on mapped pages
        often enough that two threads take 0.7 of one's time)."""
        from concurrent.futures import ThreadPoolExecutor

        from workbench.core.store.objects import fast_sum_file

        def good(item: tuple[str, str]) -> bool:
            try:
                return fast_sum_file(self.folder / item[0]) == item[1]
            except OSError:
                return False

        items = list(manifest["files"].items())
        if len(items) > 1:
            with ThreadPoolExecutor(2) as pool:
                verdicts = list(pool.map(good, items))
        else:
            verdicts = [good(i) for i in items]
        ok = []
        for (name, _), fine in zip(items, verdicts, strict=True):
            if fine:
                ok.append(name)
            else:
                self._drop(manifest, name)
        return ok

    def _compact(self, manifest: dict[str, Any]) -> None:
        import polars as pl
        import xxhash

        names = sorted(manifest["files"])
        name = names[0].replace(".parquet", f"-{uuid.uuid4().hex[:4]}.parquet")
        tmp = self.folder / f".{name}.tmp"
        merged = pl.scan_parquet([self.folder / n for n in names], glob=False).sort(ORDER)
        # sorted: each file runs in order
        merged.sink_parquet(tmp, compression=CODEC, statistics=False)
        manifest["files"][name] = xxhash.xxh3_128_hexdigest(tmp.read_bytes())
        os.replace(tmp, self.folder / name)
        for n in names:
            self._drop(manifest, n)
        self._note(manifest, name, pl.read_parquet(self.folder / name, columns=ORDER, glob=False))

    def _drop(self, manifest: dict[str, Any], name: str) -> None:
        manifest["files"].pop(name, None)
        manifest.get("rows", {}).pop(name, None)
        manifest.get("held", {}).pop(name, None)
        (self.folder / name).unlink(missing_ok=True)

    # ---- the manifest --------------------------------------------------------------

    def _manifest(self) -> dict[str, Any]:
        """The folder's manifest; one of another layout (or unreadable) empties it."""
        try:
            manifest = json.loads((self.folder / MANIFEST).read_text())
            if manifest.get("layout") == self.layout and isinstance(manifest.get("files"), dict):
                known = set(manifest["files"])
                for stray in self.folder.glob("*.parquet*"):  # a write cut short
                    if stray.name not in known:
                        stray.unlink(missing_ok=True)
                return manifest
        except (OSError, ValueError):
            pass
        for old in self.folder.glob("*.parquet*"):
            old.unlink(missing_ok=True)
        return {"layout": self.layout, "files": {}}

    def _save(self, manifest: dict[str, Any]) -> None:
        tmp = self.folder / f".{MANIFEST}.{uuid.uuid4().hex[:8]}"
        tmp.write_text(json.dumps(manifest))
        os.replace(tmp, self.folder / MANIFEST)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One process at a time changes a folder (two monitors at once would each add
        the same missing requests)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a+") as fh:
            try:
                import fcntl
            except ImportError:  # pragma: no cover - not POSIX: no lock to take
                yield
                return
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

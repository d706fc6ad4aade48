"""Many rows into a catalog table in one statement, the quickest way for their number:
what a drift report's results, a monitor report's windows and a batch of audit entries
go in by. Below the catalog (which imports the audit trail), so the trail can use it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb


# polars dtype names (insert_rows' schemas) as the SQL types of bound lists
_SQL_TYPES = {
    "String": "VARCHAR", "Int32": "INTEGER", "Int64": "BIGINT", "Float64": "DOUBLE",
    "Boolean": "BOOLEAN", "Datetime": "TIMESTAMP", "List(String)": "VARCHAR[]",
}  # fmt: skip
# bound VALUES up to this many values (5 rows of 7 columns: 0.68 ms, unnested 0.70;
# 10 rows: 0.86 against 0.69), one unnested list a column past it
VALUES_CELLS = 40
# the objects table's columns: every store that records objects inserts them so
OBJECT_ROWS = {"hash": "String", "size": "Int64", "kind": "String", "created_at": "Datetime"}


def insert_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    rows: list[list[Any]],
    schema: dict[str, str],
    or_ignore: bool = False,
) -> None:
    """Insert ``rows`` (in ``table``'s column order; ``schema``: column -> polars dtype
    name) as one statement, the quickest way for their number: up to ``VALUES_CELLS``
    values as bound VALUES; more as one bound list a column, unnested, whose cost hardly
    grows with the rows (7 columns: 10 rows 0.69 ms against 0.86, 50 rows 0.91 against
    2.54; a drift report's 25 results of 19 columns 1.5 ms against 3.5; 286 rows 3.3 ms
    against 16); many through Arrow (5,000 rows: 14 ms against 29), whose
    first use imports pyarrow (~80 ms), which a drift report of 25 columns must not pay.
    executemany costs about 1 ms a row (3 ms into a table with a primary key: a dataset
    version's 90 object rows took 0.26 s). ``or_ignore``: rows whose key is there
    already are skipped (INSERT OR IGNORE)."""
    if not rows:
        return
    # the columns named, not taken in the table's order: a column a migration added
    # comes last in a store migrated, wherever it is in a store made since
    names = ", ".join(f'"{c}"' for c in schema)
    verb = "INSERT OR IGNORE INTO" if or_ignore else "INSERT INTO"
    insert = f"{verb} {table} ({names})"
    width = len(rows[0])
    if len(rows) * width <= VALUES_CELLS:
        one = "(" + ",".join("?" * width) + ")"
        con.execute(
            f"{insert} VALUES " + ",".join([one] * len(rows)),
            [v for row in rows for v in row],
        )
        return
    if len(rows) <= 10_000:
        lists = ", ".join(f"unnest(?::{_SQL_TYPES[t]}[])" for t in schema.values())
        con.execute(f"{insert} SELECT {lists}", [list(c) for c in zip(*rows, strict=True)])
        return
    import polars as pl

    types = {
        k: pl.List(pl.String) if t == "List(String)" else getattr(pl, t) for k, t in schema.items()
    }
    _wb_rows = pl.DataFrame(rows, schema=types, orient="row").to_arrow()
    # read by DuckDB from this frame's locals (a replacement scan) in a statement of its
    # own: registering a view, or inserting a relation, is refused by DuckDB 2 on a
    # connection whose last query was not read to the end (audit.head's fetchone, before
    # a batch of entries); a new statement closes that result, as in DuckDB 1
    con.execute(f"{insert} SELECT * FROM _wb_rows")

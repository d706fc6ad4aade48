"""Data checks: expectations per dataset, declared in workbench.toml, run on every add.

```toml
[checks.flights]
on_fail = "refuse"                 # or "record": keep the version, marked as failing
rows = [1000, 1000000]             # row count bounds (either may be omitted with -1)
columns = { date = "Date", carrier = "String", delayed = "Int" }   # required, with a type
not_null = ["date", "carrier"]
unique = [["date", "sched_hour", "carrier", "dest"]]   # each entry: one key (1+ columns)
ranges = { temp = [-30, 120], distance = [0, 5000] }
allowed = { origin = ["EWR", "JFK", "LGA"] }
max_null_share = { temp = 0.05, "*" = 0.5 }          # "*": every column
```

A type is a polars type name (``Int64``) or a family: ``Int``, ``Float``, ``Number``,
``String``, ``Date``, ``Datetime``, ``Bool``, or ``*`` for any. Every check reports how
many rows broke it and the first row numbers and values, so a refusal says what to fix.
The checks run on the rows as they will be stored (a LazyFrame over the staged chunks),
so what is checked is exactly what is versioned.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.core.errors import DataError, UsageError
from workbench.core.store import audit

if TYPE_CHECKING:
    import polars as pl

EXAMPLES = 5
FAMILIES = {
    "int": lambda t: t.is_integer(),
    "float": lambda t: t.is_float(),
    "number": lambda t: t.is_numeric(),
    "string": lambda t: t.__class__.__name__ in ("String", "Utf8", "Categorical", "Enum"),
    "date": lambda t: t.__class__.__name__ == "Date",
    "datetime": lambda t: t.__class__.__name__ == "Datetime",
    "bool": lambda t: t.__class__.__name__ == "Boolean",
    "*": lambda t: True,
}
KEYS = {"on_fail", "rows", "columns", "not_null", "unique", "ranges", "allowed", "max_null_share"}


@dataclass
class CheckResult:
    check: str  # e.g. "not_null(carrier)"
    passed: bool
    detail: str  # what was found, in words
    bad_rows: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)  # {"row": n, "value": v}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CheckReport:
    dataset: str
    results: list[CheckResult]
    on_fail: str

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    @property
    def passed(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        if self.passed:
            return f"all {len(self.results)} checks passed"
        parts = []
        for r in self.failed[:4]:
            rows = ", ".join(str(e["row"]) for e in r.examples if e.get("row") is not None)
            parts.append(f"{r.check}: {r.detail}" + (f" (rows {rows})" if rows else ""))
        more = f"; and {len(self.failed) - 4} more" if len(self.failed) > 4 else ""
        return (
            f"{len(self.failed)} of {len(self.results)} checks failed: " + "; ".join(parts) + more
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "passed": self.passed,
            "on_fail": self.on_fail,
            "results": [r.to_dict() for r in self.results],
        }


def spec_for(config: dict[str, Any], dataset: str) -> dict[str, Any] | None:
    """The dataset's ``[checks.NAME]`` table, its values validated; None when it has none.
    Unknown keys are refused before this, with their line, by ``core.config``."""
    spec = config.get("checks", {}).get(dataset)
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise UsageError(f"[checks.{dataset}] in workbench.toml must be a table")
    if spec.get("on_fail", "refuse") not in ("refuse", "record"):
        raise UsageError(f'[checks.{dataset}] on_fail must be "refuse" or "record"')
    _check_shapes(spec, f"[checks.{dataset}]")
    return spec


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_shapes(spec: dict[str, Any], where: str) -> None:
    """Refuse a mistyped expectation with the line to write instead of failing mid-check
    (a hand-edited TOML is user input like any other)."""

    def bad(key: str, want: str) -> UsageError:
        return UsageError(f"{where} {key} must be {want}, not {spec[key]!r}"[:300])

    def table(key: str) -> dict[str, Any]:
        v = spec.get(key, {})
        if not isinstance(v, dict):
            raise bad(key, "a table like { COLUMN = ... }")
        return v

    rows = spec.get("rows", [])
    if not (isinstance(rows, list) and len(rows) <= 2 and all(_number(x) for x in rows)):
        raise bad("rows", "[LOW, HIGH] (numbers; -1 for no bound)")
    if not all(isinstance(t, str) for t in table("columns").values()):
        raise bad("columns", 'a table of type names like { age = "Int" }')
    nn = spec.get("not_null", [])
    if not (isinstance(nn, list) and all(isinstance(c, str) for c in nn)):
        raise bad("not_null", 'a list of column names like ["id", "date"]')
    uq = spec.get("unique", [])
    if not (
        isinstance(uq, list)
        and all(
            isinstance(k, str) or (isinstance(k, list) and k and all(isinstance(c, str) for c in k))
            for k in uq
        )
    ):
        raise bad("unique", 'a list of keys like [["date", "id"]]')
    for b in table("ranges").values():
        if not (isinstance(b, list) and 1 <= len(b) <= 2 and all(_number(x) for x in b)):
            raise bad("ranges", "a table of [LOW, HIGH] number pairs like { age = [0, 120] }")
    if not all(isinstance(v, list) for v in table("allowed").values()):
        raise bad("allowed", 'a table of value lists like { plan = ["basic", "pro"] }')
    for v in table("max_null_share").values():
        if not (_number(v) and 0 <= v <= 1):
            raise bad("max_null_share", 'a table of shares from 0 to 1 like { "*" = 0.5 }')


def _examples(
    lf: pl.LazyFrame, cond: pl.Expr, column: str | None
) -> tuple[int, list[dict[str, Any]]]:
    import polars as pl

    bad = lf.with_row_index("__row", offset=1).filter(cond)
    count = bad.select(pl.len()).collect().item()
    if not count:
        return 0, []
    cols = ["__row"] + ([column] if column else [])
    rows = bad.select(cols).head(EXAMPLES).collect().to_dicts()
    return count, [
        {"row": r["__row"], **({"value": _plain(r[column])} if column else {})} for r in rows
    ]


def _rows(count: int, what: str = "row") -> str:
    return f"{count:,} {what}{'' if count == 1 else 's'}"


def _plain(v: Any) -> Any:
    return v.isoformat() if hasattr(v, "isoformat") else v


def _type_ok(dtype: Any, want: str) -> bool:
    family = FAMILIES.get(want.lower())
    if family is not None:
        return bool(family(dtype))
    return str(dtype).lower() == want.lower() or dtype.__class__.__name__.lower() == want.lower()


def run_checks(lf: pl.LazyFrame, dataset: str, spec: dict[str, Any]) -> CheckReport:
    """Every check of ``spec`` on the rows of ``lf``."""
    import polars as pl

    schema = lf.collect_schema()
    n = lf.select(pl.len()).collect().item()
    out: list[CheckResult] = []

    def missing(col: str, check: str) -> bool:
        if col not in schema:
            out.append(CheckResult(check, False, f"column {col!r} is missing"))
            return True
        return False

    if "rows" in spec:
        lo, hi = [*list(spec["rows"]), -1, -1][:2]
        ok = (lo is None or lo < 0 or n >= lo) and (hi is None or hi < 0 or n <= hi)
        bounds = f"{lo if lo is not None and lo >= 0 else ''}..{hi if hi is not None and hi >= 0 else ''}"
        out.append(CheckResult(f"rows({bounds})", ok, f"{n:,} rows"))
    for col, want in spec.get("columns", {}).items():
        check = f"column({col}: {want})"
        if missing(col, check):
            continue
        ok = _type_ok(schema[col], str(want))
        out.append(CheckResult(check, ok, f"is {schema[col]}" if not ok else "present"))
    for col in spec.get("not_null", []):
        check = f"not_null({col})"
        if missing(col, check):
            continue
        cond = pl.col(col).is_null()
        if schema[col].is_float():
            cond = cond | pl.col(col).is_nan()
        count, ex = _examples(lf, cond, None)
        out.append(
            CheckResult(
                check, count == 0, _rows(count, "null row") if count else "no nulls", count, ex
            )
        )
    for key in spec.get("unique", []):
        cols = [key] if isinstance(key, str) else list(key)
        check = f"unique({', '.join(cols)})"
        if any(missing(c, check) for c in cols):
            continue
        dup = pl.struct(cols).is_duplicated()
        count, ex = _examples(lf, dup, None)
        if ex:
            firsts = lf.with_row_index("__row", offset=1).filter(dup).head(EXAMPLES).collect()
            ex = [
                {"row": r["__row"], "value": {c: _plain(r[c]) for c in cols}}
                for r in firsts.to_dicts()
            ]
        out.append(
            CheckResult(
                check, count == 0, f"{_rows(count)} share a key" if count else "unique", count, ex
            )
        )
    for col, bounds in spec.get("ranges", {}).items():
        lo, hi = [*list(bounds), None, None][:2]
        check = f"range({col}: {'' if lo is None else lo}..{'' if hi is None else hi})"
        if missing(col, check):
            continue
        if not schema[col].is_numeric():
            out.append(CheckResult(check, False, f"is {schema[col]}, not a number"))
            continue
        c = pl.col(col)
        cond = pl.lit(False)
        if lo is not None:
            cond = cond | (c < lo)
        if hi is not None:
            cond = cond | (c > hi)
        if schema[col].is_float():
            cond = cond | c.is_infinite()
        count, ex = _examples(lf, cond.fill_null(False), col)
        out.append(
            CheckResult(
                check,
                count == 0,
                f"{_rows(count, 'value')} out of range" if count else "in range",
                count,
                ex,
            )
        )
    for col, values in spec.get("allowed", {}).items():
        check = f"allowed({col})"
        if missing(col, check):
            continue
        allowed = [str(v) for v in values]
        cond = ~pl.col(col).cast(pl.String).is_in(allowed) & pl.col(col).is_not_null()
        count, ex = _examples(lf, cond, col)
        seen = []
        if count:
            seen = (
                lf.filter(cond)
                .select(pl.col(col).cast(pl.String))
                .unique()
                .head(5)
                .collect()
                .to_series()
                .to_list()
            )
        out.append(
            CheckResult(
                check,
                count == 0,
                f"{_rows(count)} hold other values: {', '.join(map(repr, seen))}"
                if count
                else "allowed values only",
                count,
                ex,
            )
        )
    shares = spec.get("max_null_share", {})
    if shares:
        nulls = lf.select(pl.all().null_count()).collect().row(0, named=True) if n else {}
        for col in schema:
            limit = shares.get(col, shares.get("*"))
            if limit is None:
                continue
            share = nulls.get(col, 0) / n if n else 0.0
            out.append(
                CheckResult(
                    f"max_null_share({col} <= {limit:g})",
                    share <= float(limit),
                    f"{share:.1%} null",
                    int(nulls.get(col, 0)) if share > float(limit) else 0,
                )
            )
        for col in set(shares) - set(schema) - {"*"}:
            out.append(CheckResult(f"max_null_share({col})", False, f"column {col!r} is missing"))
    return CheckReport(dataset, out, spec.get("on_fail", "refuse"))


class ChecksFailed(DataError):
    """A new version broke its dataset's checks and was refused; ``report`` says how."""

    def __init__(self, report: CheckReport) -> None:
        super().__init__(f"{report.dataset}: version refused by its checks, {report.summary()}")
        self.report = report


def store_check(con: Any, dataset: str, number: int, report: CheckReport) -> None:
    con.execute(
        "INSERT INTO dataset_checks VALUES (?, ?, ?, ?, ?)",
        [dataset, number, audit.now(), report.passed, json.dumps(report.to_dict(), default=str)],
    )

"""The run filter language, parsed into parameterised SQL.

Covers MLflow's search syntax and goes past it::

    metrics.val_auc > 0.8 and params.model = 'lightgbm'
    tags.note like '%base%' or (status = 'failed' and not params.seed = 1)
    max(metrics.val_auc_curve) > 0.9          -- aggregates over steps: max min avg count last
    metrics.val_auc_curve@step=100 >= 0.85    -- the value at one step
    params.lr in (0.1, 0.05)   metrics.val_rmse is null   dataset = 'churn@3'
    metrics.`odd key` > 1                     -- backticks for keys with spaces or dots

``not EXPR`` is true where EXPR is false or unknown (a missing key); ``!=``,
``not in`` and ``not like`` are true only where the key exists. Aggregates skip
NaN. Order by: ``metrics.val_auc desc, start_time`` using the same operands.
User text only ever reaches SQL as a bound parameter; identifiers come from a
fixed table. Errors point at the offending position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.core.errors import UsageError

if TYPE_CHECKING:
    from workbench.core.store.catalog import Catalog

ATTRIBUTES = {
    "status": "r.status",
    "name": "r.name",
    "experiment": "r.experiment",
    "run_id": "r.id",
    "id": "r.id",
    "start_time": "r.start_time",
    "end_time": "r.end_time",
    "duration": "date_diff('millisecond', r.start_time, coalesce(r.end_time, now()::TIMESTAMP)) / 1000.0",
    "dataset": "(r.dataset || '@' || r.dataset_version)",
    "parent_id": "r.parent_id",
    "error": "r.error",
}
AGGREGATES = {
    "max": "max",
    "min": "min",
    "avg": "mean",
    "mean": "mean",
    "last": "last",
    "count": "count",
}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
      | (?P<str>'(?:[^']|'')*'|"(?:[^"]|"")*")
      | (?P<op><=|>=|!=|<>|==|=|<|>|\(|\)|,)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.(?:`[^`]+`|[A-Za-z0-9_\-]+))?(?:@step=\d+)?)
    )""",
    re.VERBOSE,
)
KEYWORDS = {"and", "or", "not", "like", "ilike", "in", "is", "null", "asc", "desc", "true", "false"}


@dataclass
class Tok:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Tok]:
    toks, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise UsageError(f"cannot read the filter at position {pos + 1}: {_near(text, pos)}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        start = m.start(kind)
        if kind == "word" and value.lower() in KEYWORDS:
            kind = "kw"
        toks.append(Tok(kind, value, start))
        pos = m.end()
    return toks


def _near(text: str, pos: int) -> str:
    snippet = text[pos : pos + 20]
    return repr(snippet) if snippet else "end of text"


class Joins:
    """The per-key rows a filter and an order read, each joined to ``runs r`` once.

    ``params.model`` is one row of ``params`` keyed (run_id, key), so a LEFT JOIN on
    both gives each run that row or NULLs: the same answer as a correlated scalar
    subquery, which DuckDB plans as a SINGLE join that must also prove at most one row
    per run (at 100k runs 10 ms a key, half of a filtered listing). A key named twice
    (``metrics.auc > 0.8 order by metrics.auc``, ``max(metrics.auc)``) is joined once.
    """

    def __init__(self) -> None:
        self.aliases: dict[tuple[str, str], str] = {}
        self.args: list[Any] = []  # the keys, bound in the order the joins are written

    def alias(self, table: str, key: str) -> str:
        name = self.aliases.get((table, key))
        if name is None:
            name = self.aliases[table, key] = f"_k{len(self.aliases)}"
            self.args.append(key)
        return name

    def sql(self) -> str:
        return "".join(
            f" LEFT JOIN {table} {name} ON {name}.run_id = r.id AND {name}.key = ?"
            for (table, _), name in self.aliases.items()
        )


class _Parser:
    def __init__(self, text: str, joins: Joins | None = None) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.args: list[Any] = []
        self.keys: list[tuple[str, str]] = []  # (metrics|params|tags, key) named
        self.joins = joins if joins is not None else Joins()

    def peek(self) -> Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> Tok:
        tok = self.peek()
        if tok is None:
            raise UsageError(f"the filter ends too early: {self.text!r}")
        self.i += 1
        return tok

    def error(self, tok: Tok | None, expected: str) -> UsageError:
        if tok is None:
            return UsageError(f"expected {expected} at the end of the filter")
        return UsageError(f"expected {expected} at position {tok.pos + 1}, found {tok.text!r}")

    def is_kw(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "kw" and tok.text.lower() == word

    def parse(self) -> str:
        if not self.toks:
            return "TRUE"
        sql = self.or_expr()
        if self.peek() is not None:
            raise self.error(self.peek(), "'and', 'or' or the end")
        return sql

    def or_expr(self) -> str:
        parts = [self.and_expr()]
        while self.is_kw("or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def and_expr(self) -> str:
        parts = [self.not_expr()]
        while self.is_kw("and"):
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def not_expr(self) -> str:
        if self.is_kw("not"):
            self.take()
            return f"(NOT coalesce({self.not_expr()}, FALSE))"
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.take()
            inner = self.or_expr()
            close = self.peek()
            if close is None or close.text != ")":
                raise self.error(close, "')'")
            self.take()
            return inner
        return self.comparison()

    def comparison(self) -> str:
        left, numeric, left_args = self.operand()
        self.left_args = left_args
        tok = self.take() if self.peek() else None
        if tok is None:
            raise self.error(None, "a comparison such as = 'x' or > 0.5")
        word = tok.text.lower()
        if tok.kind == "kw" and word == "is":
            negate = False
            if self.is_kw("not"):
                self.take()
                negate = True
            if not self.is_kw("null"):
                raise self.error(self.peek(), "null")
            self.take()
            self.args += self.left_args
            return f"({left} IS {'NOT ' if negate else ''}NULL)"
        if (
            tok.kind == "kw"
            and word == "not"
            and (self.is_kw("like") or self.is_kw("ilike") or self.is_kw("in"))
        ):
            # Like !=, "not in" and "not like" need the value to exist.
            return f"(NOT coalesce({self._after_op(left, numeric, self.take())}, TRUE))"
        return self._after_op(left, numeric, tok)

    def _after_op(self, left: str, numeric: bool, tok: Tok) -> str:
        word = tok.text.lower()
        if tok.kind == "kw" and word in ("like", "ilike"):
            value = self.value()
            if not isinstance(value, str):
                raise UsageError(f"{word} needs a quoted pattern at position {tok.pos + 1}")
            self.args += [*self.left_args, value]
            return f"(CAST({left} AS VARCHAR) {word.upper()} ?)"
        if tok.kind == "kw" and word == "in":
            open_ = self.take()
            if open_.text != "(":
                raise self.error(open_, "'(' after in")
            values = [self.value()]
            while (nxt := self.peek()) is not None and nxt.text == ",":
                self.take()
                values.append(self.value())
            close = self.take()
            if close.text != ")":
                raise self.error(close, "')' closing the list")
            return "(" + " OR ".join(self._compare(left, numeric, "=", v) for v in values) + ")"
        if tok.kind != "op" or tok.text in ("(", ")", ","):
            raise self.error(tok, "a comparison operator (= != < <= > >= like in is)")
        op = {"==": "=", "<>": "!="}.get(tok.text, tok.text)
        return self._compare(left, numeric, op, self.value())

    def _compare(self, left: str, numeric: bool, op: str, value: Any) -> str:
        if isinstance(value, bool):
            value = "true" if value else "false"
        self.args += self.left_args
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.args.append(float(value))
            expr = left if numeric else f"TRY_CAST({left} AS DOUBLE)"
            return f"({expr} {op} ?)"
        self.args.append(value)
        return f"(CAST({left} AS VARCHAR) {op} ?)"

    def value(self) -> Any:
        tok = self.take()
        if tok.kind == "num":
            return float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
        if tok.kind == "str":
            quote = tok.text[0]
            return tok.text[1:-1].replace(quote * 2, quote)
        if tok.kind == "kw" and tok.text.lower() in ("true", "false"):
            return tok.text.lower() == "true"
        raise self.error(tok, "a number or a quoted string")

    def operand(self) -> tuple[str, bool, list[Any]]:
        """SQL for an operand, whether it is numeric, and the parameters it binds."""
        tok = self.take()
        if tok.kind != "word":
            raise self.error(tok, "metrics.KEY, params.KEY, tags.KEY, an attribute or an aggregate")
        nxt = self.peek()
        if tok.text.lower() in AGGREGATES and nxt is not None and nxt.text == "(":
            self.take()
            inner = self.take()
            kind, key, step = _split_word(inner)
            if kind != "metrics" or step is not None:
                raise UsageError(f"{tok.text}() takes metrics.KEY (position {inner.pos + 1})")
            close = self.take()
            if close.text != ")":
                raise self.error(close, "')'")
            column = AGGREGATES[tok.text.lower()]
            self.keys.append((kind, key))
            return f"{self.joins.alias('metric_summary', key)}.{column}", True, []
        return self._plain(tok)

    def _plain(self, tok: Tok) -> tuple[str, bool, list[Any]]:
        kind, key, step = _split_word(tok)
        if kind is None:
            attr = ATTRIBUTES.get(tok.text.lower())
            if attr is None:
                known = ", ".join(sorted(ATTRIBUTES))
                # a bare key is most often a metric or a param named without its kind
                raise UsageError(
                    f"unknown name {tok.text!r} at position {tok.pos + 1}: write "
                    f"metrics.{tok.text}, params.{tok.text} or tags.{tok.text}, or use one of "
                    f"{known}"
                )
            return attr, tok.text.lower() == "duration", []
        self.keys.append((kind, key))
        if kind == "metrics":
            if step is not None:
                return (
                    (
                        "(SELECT m.value FROM metrics m WHERE m.run_id = r.id AND m.key = ? "
                        "AND m.step = ? ORDER BY m.ts DESC LIMIT 1)"
                    ),
                    True,
                    [key, step],
                )
            return f"{self.joins.alias('metric_summary', key)}.last", True, []
        table = "params" if kind == "params" else "tags"
        return f"{self.joins.alias(table, key)}.value", False, []


_PREFIX = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "tags": "tags",
    "tag": "tags",
}


def _split_word(tok: Tok) -> tuple[str | None, str, int | None]:
    text = tok.text
    step = None
    if "@step=" in text:
        text, _, step_text = text.partition("@step=")
        step = int(step_text)
    if "." not in text:
        if step is not None:
            raise UsageError(f"@step= goes after metrics.KEY (position {tok.pos + 1})")
        return None, text, None
    prefix, _, key = text.partition(".")
    kind = _PREFIX.get(prefix.lower())
    if kind is None:
        raise UsageError(
            f"unknown prefix {prefix!r} at position {tok.pos + 1}: use metrics., params. or tags."
        )
    if key.startswith("`") and key.endswith("`"):
        key = key[1:-1]
    if step is not None and kind != "metrics":
        raise UsageError(f"@step= only applies to metrics (position {tok.pos + 1})")
    return kind, key, step


def where_sql(text: str | None, joins: Joins) -> tuple[str, list[Any]]:
    """``(sql, args)`` for a filter over runs aliased ``r``, to follow ``FROM runs r``
    and the ``joins`` it added (``joins.sql()``, whose ``joins.args`` bind first)."""
    if text is None or not text.strip():
        return "TRUE", []
    if len(text) > 4000:
        raise UsageError("the filter is longer than 4,000 characters")
    p = _Parser(text, joins)
    return p.parse(), p.args


def order_sql(text: str | None, joins: Joins) -> tuple[str, list[Any]]:
    """``(sql, args)`` for ORDER BY (default newest first), over the same ``joins``."""
    if text is None or not text.strip():
        return "r.start_time DESC", []
    p = _Parser(text, joins)
    parts = []
    while True:
        named = len(p.keys)
        expr, numeric, args = p.operand()
        direction = "ASC"
        if p.is_kw("asc") or p.is_kw("desc"):
            direction = p.take().text.upper()
        if not numeric and len(p.keys) > named:  # params/tags: numbers as numbers, then text
            parts += [
                f"TRY_CAST({expr} AS DOUBLE) {direction} NULLS LAST",
                f"{expr} {direction} NULLS LAST",
            ]
            p.args += args + args
        else:
            parts.append(f"{expr} {direction} NULLS LAST")
            p.args += args
        tok = p.peek()
        if tok is None:
            break
        if tok.text != ",":
            raise p.error(tok, "',' or the end of the order")
        p.take()
    return ", ".join([*parts, "r.start_time DESC"]), p.args


_KEYS_OF = {
    "params": "SELECT DISTINCT key FROM params",
    "tags": "SELECT DISTINCT key FROM tags",
    "metrics": "SELECT DISTINCT key FROM metric_summary",
}


def unknown_name(
    catalog: Catalog, filter: str | None = None, columns: list[str] | None = None
) -> str | None:
    """What to say when a filter or a column names a key no run has: ``no run has
    params.num_leaves; did you mean params.`model.num_leaves`?``, or None when every key
    is known. Without it a misspelt key matched nothing and showed as "-" or "No runs
    match", which reads as an answer. Call it when a result is empty or a column blank:
    it reads every key in the catalog."""
    import difflib

    named: list[tuple[str, str]] = []
    if filter and filter.strip():
        p = _Parser(filter)
        p.parse()
        named += p.keys
    for col in columns or []:
        prefix, dot, key = col.strip().partition(".")
        kind = _PREFIX.get(prefix.lower())
        if dot and kind and key:
            named.append((kind, key.strip("`")))
    if not named:
        return None
    with catalog.read() as con:
        known = {
            kind: {k for (k,) in con.execute(_KEYS_OF[kind]).fetchall()}
            for kind in {kind for kind, _ in named}
        }
    for kind, key in named:
        if key in known[kind]:
            continue
        longer = sorted(k for k in known[kind] if k.endswith("." + key))
        near = longer or difflib.get_close_matches(key, sorted(known[kind]), n=1)
        hint = f"; did you mean {kind}.`{near[0]}`?" if near else ""
        return f"no run has {kind}.{key}{hint}"
    return None


_BARE_KEY = re.compile(r"[A-Za-z0-9_\-]+")


def names(catalog: Catalog) -> list[str]:
    """Every name a filter or a column can use, written as the filter language reads it
    (a key with a dot in backticks: params.`model.num_leaves`): what the app completes
    as a user types."""
    out = sorted(ATTRIBUTES)
    with catalog.read() as con:
        for kind, sql in _KEYS_OF.items():
            keys = sorted(k for (k,) in con.execute(sql).fetchall())
            out += [f"{kind}.{k}" if _BARE_KEY.fullmatch(k) else f"{kind}.`{k}`" for k in keys]
    return out

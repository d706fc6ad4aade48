"""``workbench data …``: version, browse, profile, diff and export datasets."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from workbench.cli.context import Ctx, pass_ctx
from workbench.cli.output import (
    console,
    echo,
    escape,
    fmt_num,
    json_option,
    print_json,
    table,
)
from workbench.textfmt import counted, data_cell, human_bytes


def _share(v: float | None) -> str:
    """A null share as `data show` writes it (3.4%), with two decimals below 1% so that a
    few nulls in a big table do not read as none (0.05%, not 0.0%)."""
    if v is None:
        return "-"
    return f"{v:.2%}" if 0 < v < 0.01 else f"{v:.1%}"


@click.group()
def data() -> None:
    """Dataset versions: add, list, show, head, diff, export."""


def _print_changes(changes: dict[str, Any] | None) -> None:
    if not changes:
        return
    c = console()
    c.print("[bold yellow]Schema changed since the previous version:[/]")
    for name in changes["added"]:
        c.print(f"  [green]+ {escape(name)}[/]")
    for name in changes["removed"]:
        c.print(f"  [red]- {escape(name)}[/]")
    for r in changes["retyped"]:
        c.print(f"  [yellow]~ {escape(r['column'])}: {r['from']} -> {r['to']}[/]")


@data.command("add")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--name", "-n", help="Dataset name, e.g. churn (default: the file's name).")
@click.option("--message", "-m", help="What this version is (like a commit message).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "tsv", "parquet", "jsonl"]),
    help="File format (default: from the extension or content).",
)
@json_option
@pass_ctx
def add(
    ctx: Ctx, file: str, name: str | None, message: str | None, fmt: str | None, as_json: bool
) -> None:
    """Add FILE (CSV, TSV, Parquet or JSON Lines) as a new version of dataset NAME (by
    default the file's name without its extension: churn.csv is a version of churn)."""
    res = ctx.project.datasets.add(file, name=name or _name_of(file), message=message, fmt=fmt)
    v = res.version
    if as_json:
        print_json({**v.to_dict(), "created": res.created})
        return
    if not res.created:
        echo(f"{v.ref} already has this content (sha256 {v.id[:12]}); no new version")
        return
    echo(
        f"Added {v.ref}  sha256 {v.id[:12]}  {counted(v.n_rows, 'row')} x {counted(v.n_cols, 'column')}  "
        f"stored {human_bytes(v.stored_bytes)} new of {human_bytes(v.total_bytes)}"
    )
    _print_changes(res.schema_changes)


_EXTENSIONS = {".csv", ".tsv", ".txt", ".parquet", ".pq", ".jsonl", ".ndjson", ".json", ".gz"}


def _name_of(file: str) -> str:
    """The dataset a file is a version of when no --name is given, as `dvc add` needs
    none: its name without the extension(s) the formats use."""
    from workbench.core.errors import UsageError
    from workbench.core.store.refs import NAME_RE

    path = Path(file)
    name = path.name
    while Path(name).suffix.lower() in _EXTENSIONS and Path(name).stem:
        name = Path(name).stem
    if not NAME_RE.match(name):
        raise UsageError(
            f"{path.name!r} does not make a dataset name (letters, digits, '.', '_' or '-'): "
            "give one with --name"
        )
    return name


@data.command("list")
@click.argument("name", required=False)
@json_option
@pass_ctx
def list_(ctx: Ctx, name: str | None, as_json: bool) -> None:
    """List datasets, or the versions of dataset NAME."""
    ds = ctx.project.datasets
    if name:
        versions = ds.versions(name)
        if as_json:
            print_json([v.to_dict() for v in versions])
            return
        rows = [
            [
                f"@{v.number}",
                v.id[:12],
                f"{v.n_rows:,}",
                v.n_cols,
                human_bytes(v.stored_bytes),
                v.created_at.strftime("%Y-%m-%d %H:%M"),
                escape(v.message or ""),
            ]
            for v in versions
        ]
        console().print(
            table(
                f"{name}: {counted(len(versions), 'version')}",
                ["version", "sha256", "rows", "cols", "stored", "created (UTC)", "message"],
                rows,
            )
        )
        return
    items = ds.list()
    if as_json:
        print_json(items)
        return
    if not items:
        echo("No datasets yet. Add one: workbench data add FILE --name NAME")
        return
    rows = [
        [
            escape(d.name),
            d.versions,
            escape(d.latest),
            f"{d.rows:,}",
            d.columns,
            human_bytes(d.stored_bytes),
            f"{d.updated_at:%Y-%m-%d %H:%M}",
        ]
        for d in items
    ]
    console().print(
        table(
            None, ["dataset", "versions", "latest", "rows", "cols", "stored", "updated (UTC)"], rows
        )
    )


@data.command("show")
@click.argument("ref")
@json_option
@pass_ctx
def show(ctx: Ctx, ref: str, as_json: bool) -> None:
    """Schema, profile, size and lineage of a version (REF: name, name@N, name@sha:HASH)."""
    from workbench.core.data.profile import lengths_text

    ds = ctx.project.datasets
    v = ds.resolve(ref)
    prof = ds.profile(v)
    checks = ds.checks_of(v)
    if as_json:
        print_json({**v.to_dict(), "profile": prof, "checks": checks})
        return
    c = console()
    c.print(f"[bold]{escape(v.ref)}[/]  sha256 {v.id}")
    c.print(
        f"  {counted(v.n_rows, 'row')} x {counted(v.n_cols, 'column')}; source {escape(v.source_name)} "
        f"({v.source_format}, {human_bytes(v.source_bytes)})"
    )
    c.print(
        f"  stored {human_bytes(v.stored_bytes)} new, {human_bytes(v.total_bytes)} referenced, "
        f"in {counted(len(v.segments), 'chunk')}"
    )
    lineage = f"{v.dataset}@{v.parent} -> {v.ref}" if v.parent else "first version"
    c.print(f"  created {v.created_at:%Y-%m-%d %H:%M:%S} UTC; lineage: {lineage}")
    if v.message:
        c.print(f"  message: {escape(v.message)}")
    if checks is not None:
        failed = [r["check"] for r in checks["results"] if not r["passed"]]
        c.print(
            f"  checks: [green]all {len(checks['results'])} passed[/]"
            if not failed
            else f"  checks: [red]{len(failed)} failed[/]: {escape(', '.join(failed))}"
        )
    _print_changes(v.schema_changes)
    rows = []
    for col in prof["columns"]:
        if col["kind"] == "numeric":
            summary = (
                f"min {fmt_num(col.get('min'))}  mean {fmt_num(col.get('mean'))}  "
                f"max {fmt_num(col.get('max'))}  std {fmt_num(col.get('std'))}"
            )
            extra = [f"{k} {col[k]}" for k in ("nan", "inf") if col.get(k)]
            if extra:
                summary += "  " + "  ".join(extra)
        elif col.get("top"):
            at_least = "" if col.get("top_exact", True) else ">="  # counts of a column cut
            summary = ", ".join(
                f"{escape(t['value'])} ({at_least}{t['count']:,})" for t in col["top"][:4]
            )
        elif col["kind"] == "datetime":
            summary = f"{col.get('min')} .. {col.get('max')}"
        elif lengths := lengths_text(col):  # text with too many values to count each
            summary = f"{lengths}; too many distinct values to list the most frequent"
        else:
            summary = ""
        spark = _spark(col.get("histogram", {}).get("counts")) if col.get("histogram") else ""
        rows.append(
            [
                escape(col["name"]),
                col["dtype"],
                f"{col['nulls']:,} ({col['null_share']:.1%})",
                f"{col['n_unique']:,}",
                spark,
                summary,
            ]
        )
    c.print(table(None, ["column", "type", "nulls", "distinct", "histogram", "summary"], rows))


def _spark(counts: list[int] | None) -> str:
    if not counts:
        return ""
    bars = " ▁▂▃▄▅▆▇█"
    top = max(counts) or 1
    return "".join(bars[min(8, round(8 * n / top))] if n else " " for n in counts)


@data.command("head")
@click.argument("ref")
@click.option("-n", "n", default=10, show_default=True, help="Number of rows.")
@json_option
@pass_ctx
def head(ctx: Ctx, ref: str, n: int, as_json: bool) -> None:
    """The first rows of a version."""
    df = ctx.project.datasets.head(ref, n)
    if as_json:
        from workbench.core.data.profile import jsonable

        print_json([{k: jsonable(v) for k, v in row.items()} for row in df.iter_rows(named=True)])
        return
    rows = [[escape(data_cell(x)) for x in r] for r in df.iter_rows()]
    console().print(table(None, [escape(c) for c in df.columns], rows))


@data.command("diff")
@click.argument("ref_a")
@click.argument("ref_b")
@click.option("--key", help="Key column: match rows by it and count changed rows.")
@json_option
@pass_ctx
def diff_cmd(ctx: Ctx, ref_a: str, ref_b: str, key: str | None, as_json: bool) -> None:
    """What changed from REF_A to REF_B: schema, rows, column statistics."""
    from workbench.core.data.diff import diff

    d = diff(ctx.project.datasets, ref_a, ref_b, key=key)
    if as_json:
        print_json(d)
        return
    c = console()
    c.print(
        f"[bold]{escape(d['a'])} -> {escape(d['b'])}[/]: {d['rows_a']:,} -> {d['rows_b']:,} rows"
        + ("  (identical content)" if d["identical"] else "")
    )
    _print_changes(d["schema_changes"])
    if "rows_added" in d:
        c.print(
            f"  rows: [green]+{d['rows_added']:,} added[/], [red]-{d['rows_removed']:,} removed[/], "
            f"{d['rows_unchanged']:,} unchanged (compared on {len(d['compared_columns'])} columns)"
        )
    rows = []
    for s in d["column_stats"]:
        if not s["changed"]:
            continue
        cells = [escape(s["column"])]
        for k in ("null_share", "n_unique", "mean", "std", "min", "max"):
            if k in s and s[k]["a"] != s[k]["b"]:
                show = _share if k == "null_share" else fmt_num
                cells.append(f"{show(s[k]['a'])} -> {show(s[k]['b'])}")
            else:
                cells.append("")
        rows.append(cells)
    if rows:
        c.print(
            table(
                "Column statistics that changed",
                ["column", "null share", "distinct", "mean", "std", "min", "max"],
                rows,
            )
        )
    if "by_key" in d:
        k = d["by_key"]
        c.print(
            f"  by key {escape(k['key'])}: {counted(k['rows_added'], 'new key')}, "
            f"{counted(k['rows_removed'], 'key')} gone, {counted(k['rows_changed'], 'row')} changed"
        )
        if k["changed_by_column"]:
            c.print(
                "  changed values per column: "
                + ", ".join(f"{escape(col)} {n:,}" for col, n in k["changed_by_column"].items())
            )
        for ex in k["examples"]:
            changes = "; ".join(
                f"{escape(col)}: {escape(fmt_num(v['a']))} -> {escape(fmt_num(v['b']))}"
                for col, v in ex["changes"].items()
            )
            c.print(f"    {escape(k['key'])}={escape(ex['key'])}: {changes}")


@data.command("export")
@click.argument("ref")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Target file: .csv, .tsv, .parquet or .jsonl.",
)
@pass_ctx
def export(ctx: Ctx, ref: str, output: str) -> None:
    """Write a version out as a file."""
    v = ctx.project.datasets.resolve(ref, sums=True)  # the export checks them
    path = ctx.project.datasets.export(v, output)
    echo(f"Wrote {v.ref} ({counted(v.n_rows, 'row')}) to {path}")


@data.command("check")
@click.argument("ref")
@json_option
@pass_ctx
def check(ctx: Ctx, ref: str, as_json: bool) -> None:
    """Run the dataset's [checks] (workbench.toml) on version REF and record the outcome.

    Exit code 1 when a check fails. The same checks run on every `data add`.
    """
    report = ctx.project.datasets.check(ref)
    if as_json:
        print_json(report.to_dict())
    else:
        rows = []
        for r in report.results:
            examples = ", ".join(
                f"row {e['row']}" + (f": {e['value']!r}" if "value" in e else "")
                for e in r.examples
            )
            verdict = "[green]pass[/]" if r.passed else "[red]FAIL[/]"
            rows.append([verdict, escape(r.check), escape(r.detail), escape(examples)])
        v = ctx.project.datasets.resolve(ref)
        console().print(table(f"Checks of {v.ref}", ["", "check", "found", "e.g."], rows))
        echo(f"{v.ref}: {report.summary()}")
    if not report.passed:
        sys.exit(1)

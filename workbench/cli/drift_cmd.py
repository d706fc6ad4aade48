"""``workbench drift …``: compare dataset versions (or a new file) column by column."""

from __future__ import annotations

from typing import Any

import click

from workbench.cli.context import Ctx, pass_ctx
from workbench.cli.output import (
    console,
    echo,
    echo_chart,
    escape,
    json_option,
    print_json,
    table,
)
from workbench.textfmt import counted


class _DefaultGroup(click.Group):
    """``workbench drift A B`` means ``workbench drift compare A B``; subcommands still work."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args.insert(0, "compare")
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultGroup)
def drift() -> None:
    """Drift between dataset versions: `workbench drift REF CURRENT [CURRENT...]`.

    REF and CURRENT are dataset references (churn@1, churn@sha:1a2b) or data files.
    Several CURRENTs, or a range such as churn@2..12, give a timeline. `drift list`
    shows stored reports, `drift show ID` one of them.
    """


def _split_columns(values: tuple[str, ...]) -> list[str] | None:
    cols = [c.strip() for v in values for c in v.split(",") if c.strip()]
    return cols or None


@drift.command("compare")
@click.argument("reference")
@click.argument("currents", nargs=-1)
@click.option(
    "--model",
    metavar="NAME@ALIAS",
    help="Compare against this model's training data (then REF may be left out), "
    "only its inputs, plus its predictions.",
)
@click.option(
    "--columns", "-c", multiple=True, help="Columns to compare (comma-separated or repeated)."
)
@click.option("--method", help="Method for every column where it applies (see docs/drift.md).")
@click.option("--num-method", help="Method for numeric columns.")
@click.option("--cat-method", help="Method for categorical columns.")
@click.option(
    "--column-method",
    "column_methods",
    multiple=True,
    metavar="COL=METHOD[:THRESHOLD]",
    help="Method (and threshold) for one column; repeatable.",
)
@click.option("--threshold", type=float, help="Threshold for every method (default: the method's).")
@click.option(
    "--drift-share",
    type=float,
    default=0.5,
    show_default=True,
    help="Share of drifted columns that makes the dataset drifted.",
)
@click.option(
    "--plot", "plot_column", metavar="COLUMN", help="Draw reference vs current for COLUMN."
)
@click.option("--report", "report_file", metavar="FILE", help="Write FILE.md or FILE.html.")
@click.option("--no-save", is_flag=True, help="Do not store the report in the catalog.")
@json_option
@pass_ctx
def compare(
    ctx: Ctx,
    reference: str,
    currents: tuple[str, ...],
    model: str | None,
    columns: tuple[str, ...],
    method: str | None,
    num_method: str | None,
    cat_method: str | None,
    column_methods: tuple[str, ...],
    threshold: float | None,
    drift_share: float,
    plot_column: str | None,
    report_file: str | None,
    no_save: bool,
    as_json: bool,
) -> None:
    """Compare CURRENT with REFERENCE, column by column.

    `workbench drift --model churn-model@production new.csv` compares a new batch with
    the data the production model was trained on.
    """
    from workbench.core.drift.columns import Options
    from workbench.core.errors import UsageError
    from workbench.core.store.refs import expand_range

    per_column = {}
    for item in column_methods:
        col, sep, spec = item.partition("=")
        if not sep or not col or not spec:
            raise UsageError(f"invalid --column-method {item!r}: use COLUMN=METHOD[:THRESHOLD]")
        per_column[col] = spec
    opts = Options(
        columns=_split_columns(columns),
        method=method,
        num_method=num_method,
        cat_method=cat_method,
        column_methods=per_column,
        threshold=threshold,
        drift_share=drift_share,
    )
    ref: str | None = reference
    if not currents:
        if not model:
            raise UsageError("give REF and CURRENT (or --model NAME@ALIAS and CURRENT)")
        ref, currents = None, (reference,)
    targets = [t for c in currents for t in expand_range(c)]
    if len(targets) > 1 and (plot_column or report_file):
        raise UsageError("--plot and --report take one CURRENT; a timeline has several")
    if report_file:
        from workbench.app.drift_report import check_path

        check_path(report_file)
    reports = ctx.project.drift.series(ref, targets, opts, save=False, model=model)
    if plot_column:
        reports[0].column(plot_column)  # refuse an unknown column before anything is stored
    if not no_save:
        ctx.project.drift.save_all(reports)
    if as_json:
        out = [r.to_dict() for r in reports]
        print_json(out[0] if len(out) == 1 else out)
    elif len(reports) == 1:
        _print_report(reports[0], saved=not no_save)
    else:
        _print_timeline(reports)
    _file_and_chart(reports[0], report_file, plot_column, as_json)


def _file_and_chart(
    report: Any, report_file: str | None, plot_column: str | None, as_json: bool
) -> None:
    """After the table (or JSON) of one report: --report's file, then --plot's chart
    (`drift` and `drift show` alike)."""
    if report_file:
        from workbench.app.drift_report import write

        echo(f"Wrote {write(report, report_file)}", err=as_json)
    if plot_column:
        from workbench.app.drift_report import plot_text

        width = min(console().width, 120)
        col = report.column(plot_column)
        echo_chart(plot_text(col, report.reference, report.current, width, color=True))


SHOW_MISSING = 20


def _verdict(c: Any) -> str:
    if c.drifted:
        return "[bold red]DRIFT[/]"
    if c.drifted is False:
        return "[green]no[/]"
    return f"[dim]{c.status}[/]"


def _print_report(report: Any, saved: bool = True) -> None:
    from workbench.app.drift_report import HEADER, compared, ordered, row_cells, shared_why

    c = console()
    head = "[bold red]DATASET DRIFT[/]" if report.drifted else "[green]no dataset drift[/]"
    c.print(
        f"Drift {escape(compared(report))}: {head}, "
        f"{report.n_drifted} of {len(report.tested)} columns drifted ({report.share:.0%}; "
        f"threshold {report.drift_share:.0%})"
        + (f"  [dim]report {report.id[:12]}[/]" if saved else "  [dim](not saved)[/]")
    )
    shared = shared_why(report)
    if said := shared.line():
        c.print(f"[dim]{escape(said)}[/]")
    rows = []
    # A wide table compared with a narrow one has thousands of columns on one side only:
    # past a screenful, each such side is one line, not a row per column.
    one_side: dict[str, list[str]] = {}
    many = sum(col.status == "missing" for col in report.columns) > SHOW_MISSING
    for col in ordered(report):
        if many and col.status == "missing":
            one_side.setdefault(col.reason, []).append(col.column)
            continue
        cells = [escape(x) for x in row_cells(col, shared)]
        cells[6] = _verdict(col)
        rows.append(cells)
    c.print(table(None, HEADER, rows))
    for reason, names in one_side.items():
        shown = ", ".join(names[:SHOW_MISSING]) + (", …" if len(names) > SHOW_MISSING else "")
        c.print(f"{counted(len(names), 'column')} {escape(reason)}: {escape(shown)}")


def _print_timeline(reports: list[Any]) -> None:
    from workbench.app.drift_report import fmt

    c = console()
    names = list(dict.fromkeys(col.column for r in reports for col in r.columns))
    rows = []
    for name in names:
        cells = []
        method = "-"
        for r in reports:
            col = next((x for x in r.columns if x.column == name), None)
            if col is None or col.statistic is None:
                cells.append("[dim]-[/]")
                continue
            method = col.method or method
            value = fmt(col.p_value if col.p_value is not None else col.statistic)
            cells.append(f"[bold red]{value}*[/]" if col.drifted else value)
        rows.append([escape(name), method, *cells])
    rows.append(
        [
            "[bold]dataset[/]",
            "share",
            *[(f"[bold red]{r.share:.0%}*[/]" if r.drifted else f"{r.share:.0%}") for r in reports],
        ]
    )
    c.print(
        f"Drift against {escape(reports[0].reference)}: statistic (p-value for tests) per "
        "version; * = drifted"
    )
    c.print(table(None, ["column", "method", *[escape(r.current) for r in reports]], rows))


@drift.command("list")
@click.option("--dataset", help="Only reports that involve this dataset.")
@click.option("--limit", "-n", type=int, default=50, show_default=True)
@click.option(
    "--windows", is_flag=True, help="Also the reports of monitor windows (`workbench monitor`)."
)
@json_option
@pass_ctx
def list_(ctx: Ctx, dataset: str | None, limit: int, windows: bool, as_json: bool) -> None:
    """Stored drift reports, newest first. A monitor window's report (its inputs against
    the model's training data) is listed with --windows, and by its monitor report."""
    items = ctx.project.drift.list(limit=limit, dataset=dataset, windows=windows)
    if as_json:
        print_json(items)
        return
    rows = [
        [
            i["id"][:12],
            f"{i['created_at']:%Y-%m-%d %H:%M}",
            escape(i["reference"]),
            escape(i["current"]),
            escape(i["model"] or "-"),
            f"{i['n_drifted']}/{i['n_tested']}",
            "[bold red]DRIFT[/]" if i["drifted"] else "[green]no[/]",
        ]
        for i in items
    ]
    console().print(
        table(
            None,
            # model: a model-aware report's (its inputs and its prediction compared)
            ["report", "created (UTC)", "reference", "current", "model", "drifted cols", "dataset"],
            rows,
        )
    )
    hidden = 0 if windows else ctx.project.drift.window_reports(dataset)
    if hidden:
        echo(f"{counted(hidden, 'report')} of monitor windows not listed: --windows lists them too")


@drift.command("show")
@click.argument("report_id")
@click.option(
    "--plot", "plot_column", metavar="COLUMN", help="Draw reference vs current for COLUMN."
)
@click.option("--report", "report_file", metavar="FILE", help="Write FILE.md or FILE.html.")
@json_option
@pass_ctx
def show(
    ctx: Ctx, report_id: str, plot_column: str | None, report_file: str | None, as_json: bool
) -> None:
    """One stored report (by id prefix, as `drift list` shows it)."""
    report = ctx.project.drift.get(report_id)
    if as_json:
        print_json(report.to_dict(plots=True))
    else:
        _print_report(report)
    _file_and_chart(report, report_file, plot_column, as_json)

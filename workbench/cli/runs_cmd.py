"""``workbench runs …``: list, show, compare, tag, delete, restore."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from workbench.cli.context import Ctx, pass_ctx
from workbench.cli.output import (
    console,
    echo,
    echo_chart,
    escape,
    fmt_column,
    fmt_num,
    json_option,
    print_json,
    table,
)
from workbench.core.runs.records import best_of
from workbench.textfmt import counted

if TYPE_CHECKING:
    from workbench.core.runs.records import RunInfo, RunSummary


@click.group()
def runs() -> None:
    """Tracked runs: list, show, compare, tag, delete."""


@runs.command("list")
@click.option("--experiment", "-e", help="Only this experiment.")
@click.option(
    "--filter",
    "-f",
    "filter_",
    help="e.g. \"metrics.val_auc > 0.8 and params.model = 'lightgbm'\".",
)
@click.option("--order-by", "-o", help='e.g. "metrics.val_auc desc".')
@click.option("--limit", "-n", default=50, show_default=True, type=click.IntRange(1))
@click.option("--columns", "-c", help="Extra columns, e.g. params.lr,metrics.val_auc.")
@click.option("--deleted", is_flag=True, help="Include deleted runs.")
@click.option(
    "--group-seeds", "-g", "group_seeds", is_flag=True,
    help="One row per configuration: runs that differ only in a seed (seed, random_state, "
    "random_seed) with each metric's mean ± standard deviation. --limit counts runs.",
)  # fmt: skip
@json_option
@pass_ctx
def list_(
    ctx: Ctx,
    experiment: str | None,
    filter_: str | None,
    order_by: str | None,
    limit: int,
    columns: str | None,
    deleted: bool,
    group_seeds: bool,
    as_json: bool,
) -> None:
    """List runs, newest first (or as --order-by says)."""
    asked = [c.strip() for c in columns.split(",") if c.strip()] if columns else []
    # A table reads only the keys it shows (the page's every param and metric is a scan
    # of millions of rows at 100k runs); --json and grouping by seed need them all.
    shown = None if as_json or group_seeds else {"params.model", *(asked or PREFERRED)}

    def listing(keys: set[str] | None) -> list[RunSummary]:
        return ctx.project.runs.list(
            experiment=experiment, filter=filter_, order_by=order_by, limit=limit,
            include_deleted=deleted, keys=keys,
        )  # fmt: skip

    items = listing(shown)
    if shown is not None and not asked and not any(i.metrics for i in items):
        items = listing(None)  # none of the usual metrics: the columns come from all keys
    if (filter_ and not items) or asked:  # a misspelt key is an error, not "-" or no match
        from workbench.core.errors import UsageError
        from workbench.core.runs.search import unknown_name

        problem = unknown_name(ctx.project.catalog, filter_ if not items else None, asked)
        if problem:
            raise UsageError(problem)
    if group_seeds:
        _list_groups(items, columns, filter_ or experiment, as_json)
        return
    if as_json:
        print_json(items)
        return
    if not items:
        echo(
            "No runs match."
            if filter_ or experiment
            else "No runs yet. Train one: workbench train DATASET --target COL"
        )
        return
    extra = asked or _default_columns(items)
    several = len({i.experiment for i in items}) > 1
    header = [
        "run",
        *(["experiment"] if several else []),
        "name",
        "status",
        "dataset",
        "model",
        *extra,
    ]
    # a metric's column reads down with one number of decimals; a param's as given
    texts: dict[str, list[str]] = {}
    for c in extra:
        values = [i.column(c) for i in items]
        texts[c] = fmt_column(values) if c.startswith("metrics.") else [fmt_num(v) for v in values]
    rows = []
    for n, i in enumerate(items):
        cells = [
            i.ref,
            *([escape(i.experiment)] if several else []),
            escape(i.name or ""),
            _status(i.status),
            escape(i.dataset or ""),
            escape(i.params.get("model", "")),
        ]
        cells += [escape(texts[c][n]) for c in extra]
        rows.append(cells)
    console().print(table(None, header, rows))


def _list_groups(
    items: list[RunSummary], columns: str | None, narrowed: str | None, as_json: bool
) -> None:
    from workbench.core.runs.groups import group_by_seed, spread_text

    groups = group_by_seed(items)
    if as_json:
        print_json(groups)
        return
    if not groups:
        echo("No runs match." if narrowed else "No runs yet.")
        return
    extra = [c.strip() for c in columns.split(",")] if columns else _default_columns(items)
    several = len({g.experiment for g in groups}) > 1
    header = ["run", "runs", *(["experiment"] if several else []), "name", "status",
              "dataset", "model", "seeds", *extra]  # fmt: skip
    rows = []
    for g in groups:
        seeds = ",".join(dict.fromkeys(v for v in g.seeds if v))
        cells = [
            g.ref,
            str(g.n),
            *([escape(g.experiment)] if several else []),
            escape(g.name or ""),
            _status(g.status),
            escape(g.dataset or ""),
            escape(g.params.get("model", "")),
            escape(seeds[:30] + ("…" if len(seeds) > 30 else "")),
        ]
        for c in extra:
            s = g.spread(c)
            cells.append(escape(spread_text(s) if s else fmt_num(g.column(c))))
        rows.append(cells)
    console().print(table(None, header, rows))
    echo(
        f"{counted(len(items), 'run')} in {counted(len(groups), 'configuration')} "
        "(mean ± standard deviation)"
    )


DEFAULTS = (["val_auc", "val_log_loss"], ["val_rmse", "val_r2"], ["val_accuracy"])
PREFERRED = [f"metrics.{k}" for pair in DEFAULTS for k in pair]


def _default_columns(items: list[RunSummary]) -> list[str]:
    keys = {k for i in items for k in i.metrics}
    for preferred in DEFAULTS:
        found = [f"metrics.{k}" for k in preferred if k in keys]
        if found:
            return found
    return [f"metrics.{k}" for k in sorted(keys) if not k.endswith("_curve")][:2]


def _status(status: str) -> str:
    color = {"finished": "green", "failed": "red", "killed": "yellow", "running": "cyan"}.get(
        status, "white"
    )
    return f"[{color}]{status}[/]"


@runs.command("show")
@click.argument("run_ref")
@json_option
@pass_ctx
def show(ctx: Ctx, run_ref: str, as_json: bool) -> None:
    """Everything about one run: params, metrics, tags, environment, artifacts."""
    info = ctx.project.runs.get(run_ref)
    if as_json:
        print_json(info)
        return
    c = console()
    c.print(
        f"[bold]{info.ref}[/] {escape(info.name or '')}  {_status(info.status)}"
        f"  experiment {escape(info.experiment)}  dataset {escape(info.dataset_ref or '-')}"
    )
    c.print(
        f"  id {info.id}; started {info.start_time:%Y-%m-%d %H:%M:%S} UTC; {info.duration_s:.1f}s"
    )
    if info.error:
        c.print(f"  [red]error: {escape(info.error)}[/]")
    if info.parent_id:
        c.print(f"  parent run:{info.parent_id[:8]}")
    if info.children:
        c.print(f"  {len(info.children)} child runs")
    c.print(
        table(
            "Params",
            ["param", "value"],
            [[escape(k), escape(v)] for k, v in info.params.items()],
        )
    )
    rows = [
        [escape(k), fmt_num(v.last), v.step, fmt_num(v.min), fmt_num(v.max), v.count]
        for k, v in info.metrics.items()
    ]
    c.print(table("Metrics", ["metric", "last", "step", "min", "max", "points"], rows))
    if info.tags:
        c.print(
            table("Tags", ["tag", "value"], [[escape(k), escape(v)] for k, v in info.tags.items()])
        )
    if info.artifacts:
        c.print(
            table(
                "Artifacts",
                ["path", "kind", "size", "sha256"],
                [[escape(a.path), a.kind, a.size, a.hash[:12]] for a in info.artifacts],
            )
        )
    env = info.environment
    if env:
        pk = ", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items())
        c.print(
            f"  environment: Python {env.get('python')} on {env.get('platform')}; {pk}"
            + (f"; git {env['git_commit'][:10]}" if env.get("git_commit") else "")
        )


@runs.command("compare")
@click.argument("run_refs", nargs=-1, required=True)
@click.option(
    "--plot", "plot_metric", help="Overlay this metric's curve (e.g. val_log_loss_curve)."
)
@json_option
@pass_ctx
def compare(ctx: Ctx, run_refs: tuple[str, ...], plot_metric: str | None, as_json: bool) -> None:
    """Runs side by side: differing params highlighted, best metric marked.

    More runs than fit side by side are shown a run per row, with the params they all
    share said once; past 8 curves, --plot draws them grey and the best one in red.
    """
    from workbench.core.errors import UsageError

    if len(run_refs) < 2:
        raise UsageError("compare needs at least two runs")
    runs_ = ctx.project.runs.get_many(list(run_refs))
    if as_json:
        print_json(runs_)
        return
    # the curves first: a metric no run has is refused before any table is printed
    curves = _curves(ctx, runs_, plot_metric) if plot_metric else {}
    keys = sorted({k for r in runs_ for k in r.params})
    mkeys = sorted({k for r in runs_ for k in r.metrics if not k.endswith("_curve")})
    best = {k: best_of([r.last(k) for r in runs_], k) for k in mkeys}

    def metric_cell(k: str, v: float | None) -> str:
        return f"[bold green]{fmt_num(v)} *[/]" if v is not None and v == best[k] else fmt_num(v)

    def param_cell(v: Any, differs: bool) -> str:
        if v is None:
            return "-"
        return f"[yellow]{escape(v)}[/]" if differs else escape(v)

    differing = {k for k in keys if len({r.params.get(k) for r in runs_}) > 1}
    c = console()
    if len(runs_) <= max(2, (c.width - 24) // 15):  # each run a column of ~15 characters
        header = ["", *[r.ref for r in runs_]]
        prow = [
            [
                f"[bold yellow]{escape(k)}[/]" if k in differing else escape(k),
                *[param_cell(r.params.get(k), k in differing) for r in runs_],
            ]
            for k in keys
        ]
        c.print(table("Params (differences in yellow)", header, prow))
        mrow = [[escape(k), *[metric_cell(k, r.last(k)) for r in runs_]] for k in mkeys]
        c.print(table("Metrics (* best)", header, mrow))
    else:
        # Too many runs to stand side by side (at 30, every value broke over 3 lines):
        # a run per row, the params they share said once.
        same = [k for k in keys if k not in differing]
        if same:
            shared = ", ".join(f"{escape(k)}={escape(runs_[0].params[k])}" for k in same)
            c.print(f"Same in all {len(runs_)} runs: {shared}")
        shown = [k for k in keys if k in differing]
        rows = [
            [
                r.ref,
                escape(r.name or ""),
                *[param_cell(r.params.get(k), True) for k in shown],
                *[metric_cell(k, r.last(k)) for k in mkeys],
            ]
            for r in runs_
        ]
        c.print(
            table(
                "Runs (params that differ in yellow; * best)",
                ["run", "name", *[f"params.{k}" for k in shown], *mkeys],
                rows,
            )
        )
    if plot_metric:
        _plot(runs_, plot_metric, curves)


MAX_LEGEND = 8  # curves drawn each with its own colour and legend entry


def _curves(ctx: Ctx, runs_: list[RunInfo], metric: str) -> dict[str, list[tuple[int, float]]]:
    """Each run's points of ``metric``; none at all is a usage error naming what the runs
    do have."""
    from workbench.core.errors import UsageError

    curves = ctx.project.runs.histories([r.id for r in runs_], metric)
    if not any(curves.values()):
        have = sorted({k for r in runs_ for k, m in r.metrics.items() if m.count > 1})
        hint = f"; they have: {', '.join(have[:12])}" if have else ""
        raise UsageError(f"none of these runs has points for metric {metric!r}{hint}")
    return curves


def _plot(runs_: list[RunInfo], metric: str, curves: dict[str, list[tuple[int, float]]]) -> None:
    import plotext as plt

    from workbench.app.plots import step_axis

    plt.clear_figure()
    steps: list[int] = []
    drawn = [r for r in runs_ if curves[r.id]]
    # Past a few curves a legend no longer fits beside 20 lines (plotext drops it) and
    # colours repeat: every curve is drawn grey and the best by its last value in colour.
    lasts = [curves[r.id][-1][1] for r in drawn]
    best = best_of(lasts, metric) if len(drawn) > MAX_LEGEND else None
    title = metric
    for r, last in zip(drawn, lasts, strict=True):
        xs, ys = zip(*curves[r.id], strict=True)
        steps.extend(xs)
        if best is None:
            plt.plot(list(xs), list(ys), label=r.ref)
        elif last != best:
            plt.plot(list(xs), list(ys), color="gray")
    if best is not None:
        r = drawn[lasts.index(best)]
        xs, ys = zip(*curves[r.id], strict=True)
        plt.plot(list(xs), list(ys), color="red+", label=f"best: {r.ref} ({fmt_num(best)})")
        title = f"{metric}: {len(drawn)} runs in grey, the best by its last value in red"
    step_axis(plt, steps)
    plt.title(title)
    plt.xlabel("step")
    plt.plotsize(min(console().width, 120), 20)
    plt.theme("clear")
    echo_chart(plt.build())


@runs.command("delete")
@click.argument("run_refs", nargs=-1, required=True)
@pass_ctx
def delete(ctx: Ctx, run_refs: tuple[str, ...]) -> None:
    """Soft-delete runs (hidden from listings; `runs restore` brings them back)."""
    for rid in ctx.project.runs.mark_deleted(list(run_refs), True):
        echo(f"Deleted run:{rid[:8]} (restore with: workbench runs restore {rid[:8]})")


@runs.command("restore")
@click.argument("run_refs", nargs=-1, required=True)
@pass_ctx
def restore(ctx: Ctx, run_refs: tuple[str, ...]) -> None:
    """Bring back deleted runs."""
    for rid in ctx.project.runs.mark_deleted(list(run_refs), False):
        echo(f"Restored run:{rid[:8]}")


@runs.command("tag")
@click.argument("run_ref")
@click.argument("pairs", nargs=-1, required=True, metavar="KEY=VALUE|KEY-")
@pass_ctx
def tag(ctx: Ctx, run_ref: str, pairs: tuple[str, ...]) -> None:
    """Set tags (KEY=VALUE) or remove them (KEY-)."""
    from workbench.core.errors import UsageError

    edits: list[tuple[str, str | None]] = []
    for pair in pairs:  # all parsed before any is written: one change or none
        if "=" in pair:
            k, _, v = pair.partition("=")
            edits.append((k, v))
        elif pair.endswith("-"):
            edits.append((pair[:-1], None))
        else:
            raise UsageError(f"expected KEY=VALUE or KEY- , got {pair!r}; nothing changed")
    ctx.project.runs.edit_tags(run_ref, edits)
    echo("Tags updated")

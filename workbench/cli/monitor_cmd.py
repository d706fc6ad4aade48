"""``workbench monitor NAME@ALIAS``: a model's logged predictions watched window by window."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from workbench.cli.context import Ctx, pass_ctx
from workbench.cli.output import console, echo, fmt_num, json_option, print_json, table
from workbench.core.monitor.estimate import MAIN_METRIC
from workbench.core.monitor.windows import WINDOW_HELP, window_name
from workbench.textfmt import counted

if TYPE_CHECKING:
    from workbench.app.monitoring import Monitored

ALERT_EXIT = 3  # for cron and CI: an alert holds on the latest window


@click.command()
@click.argument("model_ref", metavar="NAME@ALIAS")
@click.option("--window", "-w", help=f"How to cut the log: {WINDOW_HELP}. [monitor] window.")
@click.option("--since", help="Only predictions from then: 7d, 24h, 2w ago, or a date.")
@click.option(
    "--metric", help="The metric the table shows (all are in --json): auc, accuracy, "
    "precision, recall, f1, mae or rmse.",
)  # fmt: skip
@click.option(
    "--reference",
    metavar="DATASET@V|FILE",
    help="Labelled rows the model did not train on, for a model not trained by "
    "`workbench train` (its validation rows are used otherwise).",
)
@click.option("--target", help="With --reference: the column holding the true value.")
@click.option("--check", is_flag=True, help=f"Exit {ALERT_EXIT} when an [alerts] one holds.")
@click.option("--no-save", is_flag=True, help="Show the report without storing it or acting.")
@click.option(
    "--no-drift", is_flag=True, help="Leave input and prediction drift out: estimates, "
    "labels and traffic only (a classifier's inputs are then not read).",
)  # fmt: skip
@json_option
@pass_ctx
def monitor(
    ctx: Ctx, model_ref: str, window: str | None, since: str | None, metric: str | None,
    reference: str | None, target: str | None, check: bool, no_save: bool, no_drift: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """Watch MODEL's logged predictions (served, or scored by `workbench predict`), window
    by window: rows, input drift against its training data, prediction drift, its
    performance estimated without labels (CBPE, DLE) with a band, and realised where
    `workbench labels add` gave labels. The report is stored and on the audit trail;
    [alerts] in workbench.toml are checked on the latest window and act once per window.
    """
    from workbench.app.monitoring import run
    from workbench.core.errors import UsageError
    from workbench.core.monitor.alerts import METRICS
    from workbench.core.monitor.windows import parse_since

    if metric is not None and metric not in METRICS:
        raise UsageError(f"unknown metric {metric!r}: one of {', '.join(METRICS)}")
    if target is not None and reference is None:
        raise UsageError("--target goes with --reference (the labelled rows it names)")
    when = parse_since(since) if since else None
    if metric is not None:  # refused before any work when the signature says the task
        mv = ctx.project.models.resolve(model_ref)
        _check_metric(metric, mv.signature.get("task"), mv.ref)
    done = run(ctx.project, model_ref, window, when, reference, target, save=not no_save,
               act=not no_save, drift=not no_drift)  # fmt: skip
    if as_json:
        print_json(done.to_dict())
    else:
        _show(done, metric, not no_save)
    if check and done.fired:
        sys.exit(ALERT_EXIT)


def _check_metric(name: str, task: str | None, ref: str) -> None:
    from workbench.core.errors import UsageError
    from workbench.core.monitor.estimate import REGRESSOR_METRICS

    if task is not None and (name in REGRESSOR_METRICS) != (task == "regression"):
        raise UsageError(f"{ref} is a {task} model: it has no {name}")


def _fixed(v: float | None, digits: int = 3) -> str:
    """A value of a column of like values, every row with the same decimals, so that
    the column reads down ("0.730" under "0.756", not "0.73")."""
    return "-" if v is None else f"{v:,.{digits}f}"


def _band(e: Any) -> str:
    if e is None or e.estimated is None:
        return "-"
    return f"{_fixed(e.estimated)} [{_fixed(e.lower)}, {_fixed(e.upper)}]"


def _show(done: Monitored, metric: str | None, saved: bool) -> None:
    r = done.report
    name = metric or MAIN_METRIC[r.task]
    _check_metric(name, r.task, r.model)
    rows = []
    for w in r.windows:
        e = w.metric(name)
        real = "-"
        if e is not None and e.realised is not None:
            mark = "" if e.within is None else (" ok" if e.within else " OUT")
            real = f"{_fixed(e.realised)}{mark}"
        drift = "-"
        if w.drift_share is not None:
            drift = f"{len(w.drifted_columns())}/{len(w.inputs_tested())}"
            drift += " DRIFT" if w.drifted else ""
        rows.append([
            window_name(r.window, w.label, w.first_ts, w.scored),
            f"{w.rows:,}", f"{w.labelled:,}", drift,
            "yes" if w.prediction_drift else ("no" if w.prediction_drift is not None else "-"),
            _band(e), real,
            "-" if w.error_rate is None else f"{w.error_rate:.1%}",
            _fixed(w.p99_latency_ms, 1), ", ".join(w.alerts) or "",
        ])  # fmt: skip
    title = (
        f"{r.model}"
        + (f" ({r.alias})" if r.alias else "")
        + f": {counted(len(r.windows), 'window')} of "
        f"{r.window}; estimated {name} with its band, realised where labelled"
    )
    columns = ["window", "rows", "labelled", "inputs drifted", "pred. drift",
               f"est. {name} [band]", f"real {name}", "errors", "p99 ms", "alerts"]  # fmt: skip
    console().print(table(title, columns, rows))
    echo(
        f"Reference: {r.reference}. Report monitor:{r.id[:8]}" + ("" if saved else " (not stored)")
    )
    for note in r.notes:
        echo(f"Note: {note}")
    for f in done.firings:
        values = ", ".join(f"{k} = {fmt_num(v, 4)}" for k, v in f.values.items())
        echo(f"ALERT {f.alert.name}: {'; '.join(c.text for c in f.alert.conditions)} ({values})")
        for a in f.actions:
            echo(f"  {a}")

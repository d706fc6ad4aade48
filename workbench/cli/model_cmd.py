"""``workbench model …`` and ``workbench predict``: the registry from the command line."""

from __future__ import annotations

from typing import Any

import click

from workbench.cli.context import Ctx, pass_ctx
from workbench.cli.output import console, echo, escape, fmt_num, json_option, print_json, table
from workbench.textfmt import counted


@click.group()
def model() -> None:
    """Registered models: register, list, show, promote, rollback, archive, card."""


@model.command("register")
@click.argument("run_ref")
@click.option("--name", "-n", required=True, help="Model name, e.g. churn-model.")
@click.option("--description", "-d", help="What the model is for (shown on its card).")
@json_option
@pass_ctx
def register(ctx: Ctx, run_ref: str, name: str, description: str | None, as_json: bool) -> None:
    """Register RUN_REF's model as the next version of NAME."""
    mv = ctx.project.models.register(run_ref, name, description)
    if as_json:
        print_json(mv)
        return
    if ctx.project.models.last_register_existed:
        echo(f"{mv.ref} already holds run:{mv.run_id[:8]}'s model; no new version")
        return
    echo(
        f"Registered {mv.ref} from run:{mv.run_id[:8]} (trained on {mv.dataset_ref or 'unknown data'}, "
        f"{counted(len(mv.inputs), 'input')})"
    )


@model.command("list")
@json_option
@pass_ctx
def list_(ctx: Ctx, as_json: bool) -> None:
    """Models with their latest version and aliases."""
    items = ctx.project.models.list()
    if as_json:
        print_json(items)
        return
    rows = [
        [
            escape(i.name),
            str(i.versions),
            f"v{i.latest}",
            ", ".join(f"{a}=v{v}" for a, v in i.aliases.items()) or "-",
            escape(i.description or ""),
        ]
        for i in items
    ]
    console().print(table(None, ["model", "versions", "latest", "aliases", "description"], rows))


@model.command("show")
@click.argument("ref")
@json_option
@pass_ctx
def show(ctx: Ctx, ref: str, as_json: bool) -> None:
    """NAME (all versions and alias history) or NAME@N / NAME@ALIAS (one version)."""
    from workbench.core.store.refs import parse_ref

    reg = ctx.project.models
    parsed = parse_ref(ref)
    one = parsed.version is not None or parsed.alias is not None
    if one:
        mv = reg.resolve(ref)
        if as_json:
            print_json(mv)
            return
        _print_version(mv)
        return
    versions = reg.versions(parsed.name)
    history = reg.history(parsed.name)
    if as_json:
        print_json({"model": parsed.name, "versions": versions, "history": history})
        return
    metric_keys = sorted({k for v in versions for k in v.metrics if k.startswith("val_")})[:5]
    rows = [
        [
            f"v{v.version}",
            ", ".join(v.aliases) or "-",
            v.status,
            f"run:{v.run_id[:8]}",
            v.dataset_ref or "-",
            *[fmt_num(v.metrics.get(k)) for k in metric_keys],
        ]
        for v in versions
    ]
    c = console()
    c.print(
        table(
            f"{parsed.name}: versions",
            ["version", "aliases", "status", "run", "dataset", *metric_keys],
            rows,
        )
    )
    if history:
        hrows = [
            [
                f"{h.ts:%Y-%m-%d %H:%M}",
                h.alias,
                h.action.removeprefix("model."),
                f"v{h.previous} → v{h.version}" if h.previous else f"→ v{h.version}",
                escape(h.actor),
                escape(h.reason or ""),
            ]
            for h in history
        ]
        c.print(
            table(
                "Alias history (UTC)", ["when", "alias", "action", "change", "by", "reason"], hrows
            )
        )


def _print_version(mv: Any) -> None:
    c = console()
    c.print(
        f"[bold]{escape(mv.ref)}[/]  {mv.status}  aliases: {', '.join(mv.aliases) or '-'}\n"
        f"lineage: {escape(mv.dataset_ref or '?')} → run:{mv.run_id[:8]} → {escape(mv.ref)}\n"
        f"artifact {mv.artifact[:12]}  registered {mv.created_at:%Y-%m-%d %H:%M} UTC"
    )
    if mv.description:
        c.print(escape(mv.description))
    c.print(
        table(
            "Metrics",
            ["metric", "value"],
            [[escape(k), fmt_num(v)] for k, v in sorted(mv.metrics.items())],
        )
    )
    c.print(
        table(
            "Inputs",
            ["column", "type"],
            [[escape(k), escape(v)] for k, v in (mv.signature.get("inputs") or {}).items()],
        )
    )


def _print_gates(results: list[Any]) -> None:
    rows = [
        [
            "[green]pass[/]" if r.passed else "[bold red]FAIL[/]",
            escape(r.gate),
            fmt_num(r.value),
            fmt_num(r.target),
            escape(r.note),
        ]
        for r in results
    ]
    console().print(table("Gates", ["", "gate", "value", "target", "note"], rows))


@model.command("promote")
@click.argument("name")
@click.argument("version", type=int, required=False)
@click.option("--to", "alias", required=True, help="Alias to move, e.g. staging or production.")
@click.option("--reason", "-r", help="Why (kept in the audit trail; required with --force).")
@click.option(
    "--force", is_flag=True, help="Override failing gates (needs --reason; audited as forced)."
)
@click.option("--dry-run", is_flag=True, help="Check the gates only; change nothing.")
@json_option
@pass_ctx
def promote(
    ctx: Ctx,
    name: str,
    version: int | None,
    alias: str,
    reason: str | None,
    force: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Move ALIAS to NAME's VERSION if every gate in workbench.toml passes. The version
    can also be named as a reference: NAME@VERSION, or NAME@ALIAS for the version an
    alias names now (`promote churn-model@staging --to production`)."""
    from workbench.core.errors import UsageError
    from workbench.core.models.versions import PromotionRefused

    reg = ctx.project.models
    if "@" in name:
        if version is not None:
            raise UsageError(f"give NAME VERSION or a reference such as {name}, not both")
        mv = reg.resolve(name)
        name, version = mv.model, mv.version
    elif version is None:
        raise UsageError(
            f"which version of {name}? give NAME VERSION, {name}@VERSION or {name}@ALIAS "
            f"(e.g. {name}@staging)"
        )
    if dry_run:
        _, _, results = reg.check(name, version, alias)
        if as_json:
            print_json(
                {"gates": [r.to_dict() for r in results], "passed": all(r.passed for r in results)}
            )
        else:
            _print_gates(results)
        return
    try:
        res = reg.promote(name, version, alias, reason=reason, force=force)
    except PromotionRefused as exc:
        if as_json:
            print_json({"promoted": False, "gates": [r.to_dict() for r in exc.results]})
        else:
            _print_gates(exc.results)
        raise
    if as_json:
        print_json(
            {
                "promoted": res.moved,
                "model": name,
                "version": version,
                "alias": alias,
                "previous": res.previous,
                "forced": res.forced,
                "gates": [r.to_dict() for r in res.results],
                "drift_reports": res.reports,
            }
        )
        return
    _print_gates(res.results)
    if not res.moved:
        echo(f"{name}@{alias} is already v{version}; nothing changed")
    else:
        was = f" (was v{res.previous})" if res.previous else ""
        forced = " FORCED past failing gates" if res.forced else ""
        echo(f"{name}@{alias} -> v{version}{was}{forced}")
        for rid in res.reports:
            echo(f"drift evidence kept: report {rid[:12]} (workbench drift show {rid[:12]})")


@model.command("rollback")
@click.argument("name")
@click.option("--alias", "-a", default="production", show_default=True)
@click.option("--reason", "-r", help="Why (kept in the audit trail).")
@pass_ctx
def rollback(ctx: Ctx, name: str, alias: str, reason: str | None) -> None:
    """Move ALIAS back to the version that held it before."""
    current, previous = ctx.project.models.rollback(name, alias, reason)
    echo(f"{name}@{alias} -> v{previous} (rolled back from v{current})")


@model.command("archive")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--reason", "-r", help="Why (kept in the audit trail).")
@pass_ctx
def archive(ctx: Ctx, name: str, version: int, reason: str | None) -> None:
    """Retire a version: it stays on record but can no longer be promoted."""
    mv = ctx.project.models.archive(name, version, reason)
    echo(f"Archived {mv.ref}")


@model.command("card")
@click.argument("ref")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file instead.")
@pass_ctx
def card(ctx: Ctx, ref: str, output: str | None) -> None:
    """A Markdown model card for NAME@ALIAS or NAME@N."""
    from workbench.core.models.card import model_card

    text = model_card(ctx.project, ref)
    if output:
        from pathlib import Path

        Path(output).write_text(text, encoding="utf-8")
        echo(f"Wrote {output}")
    else:
        echo(text, nl=False)


@model.command("export")
@click.argument("ref")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mlflow"]),
    default="mlflow",
    show_default=True,
    help="mlflow: an MLflow model (MLmodel, python_function and native flavour).",
)
@pass_ctx
def export(ctx: Ctx, ref: str, dest: str, fmt: str) -> None:
    """Write NAME@ALIAS (or NAME@N) to DEST as a standard MLflow model, for `mlflow models
    serve`, MLServer, KServe, Seldon or SageMaker (docs/serving.md)."""
    from pathlib import Path

    from workbench.core.interop.mlflow_model import export_model

    project = ctx.project
    mv = project.models.resolve(ref)
    example = project.datasets.head(mv.dataset_ref, 5) if mv.dataset_ref else None
    out = export_model(project.models, ref, Path(dest), example=example)
    echo(f"Exported {mv.ref} to {out} (MLflow model: python_function + native flavour)")


@click.command("predict")
@click.argument("model_ref")
@click.argument("input_spec", metavar="INPUT")
@click.option("-o", "--output", required=True, help="FILE.parquet, FILE.csv or FILE.jsonl")
@click.option("--batch-rows", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option(
    "--no-log",
    is_flag=True,
    help="Do not add the rows to the prediction log (monitoring and labels will not see them).",
)
@json_option
@pass_ctx
def predict(
    ctx: Ctx,
    model_ref: str,
    input_spec: str,
    output: str,
    batch_rows: int,
    no_log: bool,
    as_json: bool,
) -> None:
    """Score INPUT (a data file or a dataset version) with MODEL_REF, e.g. churn@production.

    The rows join the prediction log as one request (the scoring's id), for
    `workbench monitor` and `workbench labels add`."""
    from workbench.core.models.scoring import predict as score

    res = score(ctx.project, model_ref, input_spec, output, batch_rows=batch_rows, log=not no_log)
    if as_json:
        print_json(
            {
                "id": res.id,
                "model": res.model,
                "input": res.input,
                "output": str(res.output),
                "rows": res.rows,
                "distribution": res.distribution,
            }
        )
        return
    d = res.distribution
    if d.get("kind") == "classes":
        summary = ", ".join(f"{k} {v:.1%}" for k, v in list(d["classes"].items())[:5])
    else:
        summary = (
            f"mean {fmt_num(d.get('mean'))}, median {fmt_num(d.get('quantiles', {}).get('0.5'))}"
        )
    echo(
        f"Scored {counted(res.rows, 'row')} of {res.input} with {res.model} -> {res.output}"
        f"  ({summary})"
    )
    if not no_log:
        echo(f"Logged as request {res.id} for `workbench monitor` and `workbench labels add`")

"""The ``workbench`` command.

Thin by design: parse, call core, print. Every error a user can cause arrives
here as a WorkbenchError and leaves as one line on stderr with exit code 1
(2 for usage), never as a traceback; ``WORKBENCH_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import os
import sys

import click

from workbench import __version__
from workbench.cli.context import Ctx, pass_ctx
from workbench.core.text import inert_line


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    "project_dir",
    metavar="DIR",
    envvar="WORKBENCH_PROJECT",
    help="Project folder (default: found by walking up from here).",
)
@click.version_option(__version__, prog_name="workbench")
@click.pass_context
def cli(ctx: click.Context, project_dir: str | None) -> None:
    """workbench: datasets, experiments, drift and models in your terminal.

    Run inside a project (see `workbench init`) or pass --project DIR.
    """
    ctx.obj = Ctx(project_dir)
    if ctx.invoked_subcommand is None:
        # `workbench` alone opens the app inside a project on a terminal; else help.
        if sys.stdin.isatty() and sys.stdout.isatty() and _in_project(project_dir):
            _open_ui(ctx.obj)
        else:
            click.echo(ctx.get_help())


def _in_project(project_dir: str | None) -> bool:
    from workbench.core.errors import WorkbenchError
    from workbench.core.project import Project

    try:  # only whether there is a project: a bad workbench.toml is reported when it opens
        Project(project_dir)
    except WorkbenchError:
        return False
    return True


def _open_ui(ctx: Ctx) -> None:
    from workbench.tui.app import run

    run(ctx.project)


@cli.command()
@pass_ctx
def ui(ctx: Ctx) -> None:
    """Open the workbench app (the TUI) on this project."""
    _open_ui(ctx)


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--name", help="Project name (default: the folder's name).")
def init(directory: str, name: str | None) -> None:
    """Create a project in DIRECTORY (default: here)."""
    from workbench.core.project import Project

    project, created = Project.init(directory, name=name)
    if created:
        click.echo(inert_line(f"Created workbench project in {project.root}"))
    else:
        click.echo(inert_line(f"{project.root} is already a workbench project (schema up to date)"))


def _register() -> None:
    from workbench.cli import (
        audit_cmd,
        config_cmd,
        data,
        demo_cmd,
        drift_cmd,
        labels_cmd,
        model_cmd,
        monitor_cmd,
        pipeline_cmd,
        remote_cmd,
        runs_cmd,
        serve_cmd,
        sql_cmd,
        train_cmd,
    )

    cli.add_command(data.data)
    cli.add_command(train_cmd.train)
    cli.add_command(runs_cmd.runs)
    cli.add_command(train_cmd.sweep)
    cli.add_command(train_cmd.rerun)
    cli.add_command(drift_cmd.drift)
    cli.add_command(model_cmd.model)
    cli.add_command(model_cmd.predict)
    cli.add_command(serve_cmd.serve)
    cli.add_command(labels_cmd.labels)
    cli.add_command(monitor_cmd.monitor)
    cli.add_command(audit_cmd.audit)
    cli.add_command(audit_cmd.verify)
    cli.add_command(demo_cmd.demo)
    cli.add_command(sql_cmd.sql)
    cli.add_command(sql_cmd.export)
    cli.add_command(sql_cmd.import_)
    cli.add_command(pipeline_cmd.pipeline)
    cli.add_command(config_cmd.config)
    cli.add_command(remote_cmd.remote)
    cli.add_command(remote_cmd.push)
    cli.add_command(remote_cmd.pull)
    cli.add_command(remote_cmd.bundle)


_register()


def _fail(message: str, code: int) -> None:
    # One line, whatever the message quotes (a CSV parser error cites the bad line)
    click.echo(f"error: {inert_line(' '.join(str(message).split()))}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    from workbench.core.errors import WorkbenchError

    debug = os.environ.get("WORKBENCH_DEBUG") == "1"
    try:
        cli.main(args=argv, prog_name="workbench", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", 130)
    except click.ClickException as exc:
        hint = ""
        ctx = getattr(exc, "ctx", None)  # a UsageError knows its command
        if ctx is not None:
            hint = f" (see `{ctx.command_path} --help`)"
        _fail(" ".join(exc.format_message().split()) + hint, exc.exit_code)
    except WorkbenchError as exc:
        if debug:
            raise
        _fail(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)
    except OSError as exc:  # the machine said no: a full disk, a read-only folder, …
        if debug:
            raise
        from workbench.core.errors import os_error_message

        _fail(os_error_message(exc), 1)
    except Exception as exc:
        if debug:
            raise
        text = " ".join(str(exc).split())[:300]
        _fail(f"unexpected {type(exc).__name__}: {text} (set WORKBENCH_DEBUG=1 for details)", 1)

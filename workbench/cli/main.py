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

# command name -> (module under workbench.cli, attribute): a command's module (and what
# it imports) is loaded only when that command runs, so `workbench runs list` does not
# pay for the imports of `serve`, `monitor` and the rest (about 40 ms of every call).
_LAZY: dict[str, tuple[str, str]] = {
    "data": ("data", "data"),
    "train": ("train_cmd", "train"),
    "runs": ("runs_cmd", "runs"),
    "sweep": ("train_cmd", "sweep"),
    "rerun": ("train_cmd", "rerun"),
    "drift": ("drift_cmd", "drift"),
    "model": ("model_cmd", "model"),
    "predict": ("model_cmd", "predict"),
    "serve": ("serve_cmd", "serve"),
    "labels": ("labels_cmd", "labels"),
    "monitor": ("monitor_cmd", "monitor"),
    "audit": ("audit_cmd", "audit"),
    "verify": ("audit_cmd", "verify"),
    "demo": ("demo_cmd", "demo"),
    "sql": ("sql_cmd", "sql"),
    "export": ("sql_cmd", "export"),
    "import": ("sql_cmd", "import_"),
    "pipeline": ("pipeline_cmd", "pipeline"),
    "config": ("config_cmd", "config"),
    "remote": ("remote_cmd", "remote"),
    "push": ("remote_cmd", "push"),
    "pull": ("remote_cmd", "pull"),
    "bundle": ("remote_cmd", "bundle"),
}

# the commands that open the catalog as soon as they start, for which its database
# instance is started on a thread while their modules load (``catalog.warm_up``)
_OPENS_CATALOG = frozenset(
    {"data", "train", "runs", "sweep", "rerun", "drift", "model", "predict", "labels",
     "monitor", "audit", "verify", "sql", "export", "import", "pipeline", "push", "pull",
     "bundle"}
)  # fmt: skip


class _LazyGroup(click.Group):
    """A group whose subcommands are imported when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_LAZY})

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Before the command's module is imported, start the catalog's database for a
        command that opens it (not for its --help)."""
        opens = args and args[0] in _OPENS_CATALOG and not ctx.resilient_parsing
        if opens and not {"-h", "--help"} & {*args[1:]}:
            from workbench.core.store.catalog import warm_up

            warm_up()
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _LAZY:
            import importlib

            module, attr = _LAZY[cmd_name]
            found = getattr(importlib.import_module(f"workbench.cli.{module}"), attr)
            self.add_command(found, cmd_name)
        return self.commands.get(cmd_name)


@click.group(
    cls=_LazyGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
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


# (young, middle, old) collection thresholds for a command's process; Python's are
# (700, 10, 10)
GC_THRESHOLDS = (50_000, 20, 10)


BLAS_SPIN = "4"  # OpenBLAS's idle threads spin 2**4 cycles, not 2**28, before sleeping


def entry() -> None:
    """The ``workbench`` command (console script and ``python -m workbench``): ``main``,
    then leave without Python's teardown.

    At exit CPython frees every object of Polars, NumPy and DuckDB one by one and runs
    the garbage collector over them: 80-100 ms, a tenth of a drift report of 100k rows,
    spent on memory the OS takes back at once. ``main`` itself stays an ordinary
    function: tests call it in-process.

    The collector is also told to run less often (``GC_THRESHOLDS``): importing Polars,
    NumPy, DuckDB (and for a training run scikit-learn, SciPy and LightGBM) creates
    over a million objects that live to the end, and with the default thresholds each
    full collection walks all of them again: 20 ms of a 100k-row drift report (0.43 ->
    0.41 s), 100 ms of training 300 rows (1.27 -> 1.17 s; A/B medians). Cycles of
    garbage are still collected, in young collections every 50,000 allocations, not 700.

    NumPy's OpenBLAS starts a thread per core that, by default, spins for about 0.1 s
    after start-up and after each BLAS call before it sleeps: 0.09 s of a core in every
    command that imports NumPy, taken from Polars' and DuckDB's threads on a 2-core
    machine (`data add` of a 3M-row Parquet file: 1.79 -> 1.73 s, medians of 4; a
    first monitor report of 1M rows 1.01 -> 1.00 s, 0.07 s less CPU). ``BLAS_SPIN``
    lets them sleep at once; a large product still runs on every core. A user's own
    ``OPENBLAS_THREAD_TIMEOUT`` is kept.

    On a Zen 4 host NumPy is told to use its AVX2 code, not its AVX-512 code, whose sort
    is four times slower there (``host``; a drift report of 1M rows a side 1.94 ->
    1.08 s). A user's own ``NPY_DISABLE_CPU_FEATURES`` is kept."""
    import gc

    from workbench.core.host import numpy_features_off

    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", BLAS_SPIN)
    if "NPY_DISABLE_CPU_FEATURES" not in os.environ and "numpy" not in sys.modules:
        off = numpy_features_off()
        if off is not None:
            os.environ["NPY_DISABLE_CPU_FEATURES"] = off
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        main()
    except SystemExit as exc:
        _leave(exc.code)
    _leave(0)


def _leave(code: object) -> None:
    """Exit with ``code`` as ``sys.exit`` would, but through ``os._exit`` once what an
    ordinary exit does that matters is done: output flushed, ``atexit`` handlers run
    (logging, Ray, temporary folders). A live non-daemon thread (work that an ordinary
    exit would wait for) means an ordinary exit."""
    import atexit
    import contextlib
    import threading

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): the message goes to stderr and the status is 1
        print(code, file=sys.stderr)
        status = 1
    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon and t.is_alive() for t in threading.enumerate()):
        sys.exit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # a reader gone (a closed pipe), or a stream already closed: nothing to deliver
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)

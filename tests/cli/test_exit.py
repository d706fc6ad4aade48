"""The `workbench` command leaves through ``os._exit`` (skipping Python's teardown of
Polars, NumPy and DuckDB): what an ordinary exit guarantees must still hold. Each test
runs the real command as a separate process, as a shell would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl

from tests.conftest import run_subprocess


def _entry(
    prelude: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`workbench ARGS` with some Python run first in the same process."""
    code = f"{prelude}\nfrom workbench.cli.main import entry\nentry()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_long_output_arrives_whole_through_a_pipe(tmp_path: Path) -> None:
    rows = 20_000
    csv = tmp_path / "t.csv"
    pl.DataFrame({"id": range(rows), "label": [f"row {i}" for i in range(rows)]}).write_csv(csv)
    proj = tmp_path / "p"
    assert run_subprocess("init", str(proj)).code == 0
    assert run_subprocess("--project", str(proj), "data", "add", str(csv), "--name", "t").code == 0

    got = run_subprocess("--project", str(proj), "data", "head", "t", "-n", str(rows), "--json")

    assert got.code == 0, got.err
    assert len(got.out) > 500_000  # far beyond any pipe or stdio buffer
    data = json.loads(got.out)
    assert len(data) == rows and data[-1] == {"id": rows - 1, "label": f"row {rows - 1}"}


def test_exit_codes_are_kept(tmp_path: Path) -> None:
    assert run_subprocess("--version").code == 0
    missing = run_subprocess("--project", str(tmp_path / "nowhere"), "data", "list")
    assert missing.code == 1 and missing.err.startswith("error: ") and missing.out == ""
    usage = run_subprocess("no-such-command")
    assert usage.code == 2 and "No such command" in usage.err


def test_atexit_handlers_still_run() -> None:
    got = _entry("import atexit\natexit.register(lambda: print('handler ran'))", "--version")
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines() == ["workbench, version " + _version(), "handler ran"]


def test_a_running_thread_is_waited_for() -> None:
    # A non-daemon thread still working when the command ends: an ordinary exit waits
    # for it, so ours must too (os._exit would kill it mid-work).
    prelude = (
        "import threading, time\n"
        "def work():\n"
        "    time.sleep(0.5)\n"
        "    print('thread finished', flush=True)\n"
        "threading.Thread(target=work).start()"
    )
    got = _entry(prelude, "--version")
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines()[-1] == "thread finished"


def _version() -> str:
    from workbench import __version__

    return __version__


def test_blas_threads_are_told_to_sleep_unless_the_user_said_otherwise() -> None:
    """OpenBLAS's idle threads spin ~0.1 s of a core after start-up by default; the
    command lets them sleep at once, but a user's own setting stands."""
    import os

    show = (
        "import atexit, os\n"
        "atexit.register(lambda: print('timeout', os.environ.get('OPENBLAS_THREAD_TIMEOUT')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    ours = _entry(show, "--version", env=env)
    assert ours.returncode == 0 and "timeout 4" in ours.stdout
    theirs = _entry(show, "--version", env={**env, "OPENBLAS_THREAD_TIMEOUT": "20"})
    assert theirs.returncode == 0 and "timeout 20" in theirs.stdout


# run before the command: note whether the database was started ahead, and at exit
# whether the catalog used that very instance
_WARM_SPY = """
import atexit, sys
from workbench.core.store import catalog
real, seen = catalog.warm_up, {}
def spy():
    real()
    catalog._warm["thread"].join()
    seen["con"] = catalog._warm.get("con")
catalog.warm_up = spy
atexit.register(lambda: print("started ahead", "con" in seen, catalog._Shared.con is seen.get("con"), file=sys.stderr))
"""


def test_a_command_that_opens_the_catalog_starts_its_database_ahead(tmp_path: Path) -> None:
    proj = tmp_path / "p"
    assert run_subprocess("init", str(proj)).code == 0

    listed = _entry(_WARM_SPY, "--project", str(proj), "runs", "list")
    helped = _entry(_WARM_SPY, "--project", str(proj), "drift", "--help")
    configured = _entry(_WARM_SPY, "--project", str(proj), "config", "check")

    assert listed.returncode == 0, listed.stderr
    assert "started ahead True True" in listed.stderr  # and the catalog opened on it
    assert helped.returncode == 0 and "started ahead False" in helped.stderr
    assert configured.returncode == 0 and "started ahead False" in configured.stderr

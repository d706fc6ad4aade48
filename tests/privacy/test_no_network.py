"""No network, ever: the main commands work with every socket call made to fail.

A sitecustomize on PYTHONPATH patches the socket module in every Python process the
commands start (sweep workers included): any attempt to resolve a name, connect, bind
or send on an internet socket raises and is written to a log. The commands must
succeed and the log must stay empty, so neither a failing call that was swallowed nor
one that silently worked goes unnoticed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SITECUSTOMIZE = """
import os, socket

_log = os.environ["WB_NETLOG"]

def _refuse(what):
    def fail(*args, **kwargs):
        with open(_log, "a") as fh:
            fh.write(f"{os.getpid()} {what} {args[1:2]!r}\\n")
        raise OSError(f"network disabled by test: {what}")
    return fail

for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "create_connection"):
    setattr(socket, name, _refuse(name))

_orig = socket.socket

class _Socket(_orig):
    def _inet(self):
        return self.family in (socket.AF_INET, socket.AF_INET6)
    def connect(self, *a):
        if self._inet(): _refuse("connect")(self, *a)
        return super().connect(*a)
    def connect_ex(self, *a):
        if self._inet(): _refuse("connect_ex")(self, *a)
        return super().connect_ex(*a)
    def bind(self, *a):
        if self._inet(): _refuse("bind")(self, *a)
        return super().bind(*a)
    def sendto(self, *a):
        if self._inet(): _refuse("sendto")(self, *a)
        return super().sendto(*a)

socket.socket = _Socket
"""

TUI = """
import asyncio, sys
from workbench.core.project import Project
from workbench.tui.app import WorkbenchApp

async def main():
    app = WorkbenchApp(Project(sys.argv[1]))
    async with app.run_test(size=(120, 40)) as pilot:
        for key in "odrfmas":
            await pilot.press("escape", key)  # out of any text box, then go
            while app.loading:  # this screen's reads have come back (they would fail
                await pilot.pause(0.01)  # here if one needed the network)
            await app.workers.wait_for_complete()
        assert not app.errors_shown, list(app.errors_shown)  # no screen failed to read
        assert type(app.screen).__name__ == "SqlScreen"  # every key went where it was meant
    print("tui ok")

asyncio.run(main())
"""


def test_the_main_commands_work_with_the_network_blocked(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "net.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]),
        "WB_NETLOG": str(log),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("WORKBENCH_PROJECT", None)
    project = tmp_path / "demo"

    # The patch is live: a plain connection attempt fails and is logged.
    probe = subprocess.run(
        [sys.executable, "-c", "import socket; socket.create_connection(('example.org', 80))"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert probe.returncode != 0 and "network disabled by test" in probe.stderr
    log.unlink()

    commands = [
        [
            "demo",
            str(project),
            "--no-ui",
        ],  # init, data add, train, sweep, register, promote, drift, predict
        ["--project", str(project), "runs", "list", "-f", "metrics.val_auc > 0.7"],
        ["--project", str(project), "data", "diff", "flights@9", "flights@12"],
        [
            "--project",
            str(project),
            "drift",
            "flights@4",
            "flights@12",
            "--report",
            str(tmp_path / "d.html"),
        ],
        ["--project", str(project), "model", "card", "flight-delays@production"],
        ["--project", str(project), "sql", "SELECT count(*) FROM metrics"],
        ["--project", str(project), "export", "runs", "-o", str(tmp_path / "runs.parquet")],
        ["--project", str(project), "export", "mlflow", str(tmp_path / "ml")],
        ["--project", str(project), "import", "mlflow", str(tmp_path / "ml")],
        ["--project", str(project), "verify"],
        # a folder remote (a USB stick across an air gap) needs no network either
        ["--project", str(project), "remote", "add", "usb", str(tmp_path / "usb")],
        ["--project", str(project), "push"],
        ["init", str(tmp_path / "across")],
        ["--project", str(tmp_path / "across"), "remote", "add", "usb", str(tmp_path / "usb")],
        ["--project", str(tmp_path / "across"), "pull"],
        ["--project", str(tmp_path / "across"), "verify"],
        ["--project", str(project), "bundle", "create", str(tmp_path / "p.wb")],
        ["init", str(tmp_path / "gapped")],
        ["--project", str(tmp_path / "gapped"), "bundle", "import", str(tmp_path / "p.wb")],
        ["--project", str(tmp_path / "gapped"), "verify"],
    ]
    for args in commands:
        proc = subprocess.run(
            [sys.executable, "-m", "workbench", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, f"{args}: {proc.stderr}"
    tui = subprocess.run(
        [sys.executable, "-c", TUI, str(project)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tui.returncode == 0 and "tui ok" in tui.stdout, tui.stderr
    assert not log.exists(), f"network calls were attempted:\n{log.read_text()}"

"""Commands in processes of their own, forked from one that has imported the libraries.

``tests/reliability/killer.py --zygote`` imports what the commands use once, then forks a
child per command it is sent: its own process and session, stdin from /dev/null, stdout
and stderr to files, the CLI run as ``python -m workbench`` would run it, under
``killer.py``'s write-point hooks. Tests that need a real process per command
(killed at each write point) would otherwise spend 2-3 s importing the ML
stack before each one, most of the suite's time on a slow machine.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import Result

KILLER = Path(__file__).parent / "reliability" / "killer.py"


class Zygote:
    """``killer.py --zygote``: starts each command as a forked child and reports its pid
    and, once it has been reaped, its exit code."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.err = workdir / "zygote.err"
        with self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(KILLER), "--zygote"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        self.buffer = b""
        self.jobs = 0
        assert self.answer(120) == {"ready": True}

    def answer(self, timeout: float | None) -> dict | None:
        """Its next line, or None if none came within ``timeout`` seconds."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            assert chunk, f"the zygote died: {self.err.read_text()[-2000:]}"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def start(self, args: list[str], cwd: Path, env: dict[str, str]) -> Forked:
        """Start ``workbench ARGS`` in a child under ``killer.py``'s write-point hooks;
        ``env`` is its whole environment."""
        self.jobs += 1
        out, err = self.workdir / f"{self.jobs}.out", self.workdir / f"{self.jobs}.err"
        job = {
            "args": args, "cwd": str(cwd), "env": env, "out": str(out), "err": str(err),
        }  # fmt: skip
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(job).encode() + b"\n")
        self.proc.stdin.flush()
        started = self.answer(60)
        assert started is not None and "pid" in started, started
        return Forked(self, started["pid"], args, out, err)

    def run(
        self, args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
    ) -> Result:
        """``workbench ARGS`` to its end, as ``run_subprocess`` would run it (the test's
        environment plus ``env``) but without paying the imports again."""
        proc = self.start(args, cwd, {**os.environ, **(env or {})})
        return Result(proc.finish(timeout), proc.out.read_text(), proc.err.read_text())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(60)


class Forked:
    """A command the zygote started: what ``Popen`` offers of it, for these tests."""

    def __init__(self, zygote: Zygote, pid: int, args: list[str], out: Path, err: Path) -> None:
        self.zygote, self.pid, self.args, self.out, self.err = zygote, pid, args, out, err
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.wait(0.0) if self.returncode is None else self.returncode

    def wait(self, timeout: float) -> int | None:
        if self.returncode is None:
            ended = self.zygote.answer(timeout)
            if ended is not None:
                self.returncode = ended["code"]
        return self.returncode

    def finish(self, timeout: float) -> int:
        """Its exit code once it ends; past ``timeout`` its process group is killed and
        the test fails."""
        code = self.wait(timeout)
        if code is None:
            os.killpg(self.pid, signal.SIGKILL)
            self.wait(60)  # its exit code, so the zygote's next answer is the next command's
            raise AssertionError(f"{self.args} still ran after {timeout} s")
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # not reaped yet, so the pid is still this process's
            os.kill(self.pid, sig)

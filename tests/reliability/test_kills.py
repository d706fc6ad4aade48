"""SIGKILL in the middle of every command that writes, then check the store.

Two ways of killing, both on the real CLI in its own process (and session), forked from
one that has imported the libraries already (``killer.py --zygote``: each kill would
otherwise spend 2-3 s importing first):

- at every write point in turn (``killer.py`` lists them: each rename, half-way
  through each object, each catalog transaction before and after COMMIT, each metric
  flush), so no gap between two writes goes untried; the killed process's own log
  shows it died at that point and no later;
- after a random delay (seeded, so a failure replays) counted from the command's first
  write, not from its start (imports take 2-3 s, and a kill during them proves
  nothing), as a user's ``kill -9`` or a power cut would; this also lands inside
  DuckDB's own COMMIT and in library code.

After each kill: ``verify`` passes (audit chain, registry against the audit trail, no
dangling catalog row, every object, referenced or not, hashes to its name), the store
holds the state from before the command or the one after it and nothing in between
(``kill_cases.py`` says, per command, what that is), a killed run shows as killed with
every point it had flushed, and the same command run again succeeds (or, for a rollback
that landed, refuses in one line) and leaves the state a single uninterrupted run would.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import built_once, run_cli
from tests.forked import Zygote
from tests.reliability.kill_cases import CASES, Case, args_for, build_template, counts
from workbench.core.project import Project
from workbench.core.store.verify import verify

pytestmark = pytest.mark.slow  # a subprocess per write point: minutes

RANDOM_KILLS = 2


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    def build(base: Path) -> str:
        build_template(base)
        return ""

    return built_once(tmp_path_factory, "kills", build)[0]


def _copy(template: Path, dest: Path) -> Project:
    shutil.copytree(template, dest)
    return Project(dest / "proj")


def _whole(p: Project) -> None:
    report = verify(p)
    assert report.ok, report.problems


def _reached(log: Path) -> list[tuple[str, float]]:
    """The write points a process reached, with when (``killer.py`` writes them as it
    goes, so the list survives the kill)."""
    if not log.exists():
        return []
    return [
        (name, float(t)) for name, t in (line.split("\t") for line in log.read_text().splitlines())
    ]


def _run(
    zygote: Zygote, args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """The CLI in its own process (and session) under ``killer.py``."""
    proc = zygote.start(args, cwd, {**os.environ, **(env or {})})
    code = proc.finish(300)
    _group_gone(proc.pid)
    return subprocess.CompletedProcess(args, code, proc.out.read_text(), proc.err.read_text())


def _group_gone(pgid: int) -> None:
    """Wait until no live process of the killed command is left (a sweep's workers die
    with it, a moment later): what a user who runs the next command after a kill
    meets. Fails if one lives on."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[-1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(stat.parent.name)
        if not alive:
            return
        time.sleep(0.02)
    raise AssertionError(f"processes {alive} of the killed command live on")


def _after_kill(case: Case, base: Path, before: dict) -> None:
    p = Project(base / "proj")
    p.runs.reconcile()  # what any later command does first
    _whole(p)
    case.check(before, p, True)
    landed = case.landed is not None and case.landed(before, p)
    state = counts(p) if landed else None
    # the same command again, as the user types it (in this process: the kill is over)
    again = run_cli(*args_for(case, base), cwd=p.root)
    assert "Traceback" not in again.err
    if landed:  # a rollback that already happened: refused in one line, nothing changed
        assert again.code == 1 and again.err.count("\n") == 1, again.err
        assert counts(Project(base / "proj")) == state
    else:
        assert again.code == 0, again.err
    p = Project(base / "proj")
    _whole(p)
    case.check(before, p, False)
    assert list((p.store_dir / "tmp").iterdir()) == []  # stale staging areas cleaned


def _probe(
    zygote: Zygote, factory: pytest.TempPathFactory, name: str, template: Path, tmp_path: Path
) -> tuple[dict, list[str], float]:
    """The command run whole under the killer, once per session for both ways of killing
    it: the state before, the write points it passes and how long it took from the
    first of them to its end."""

    def build(base: Path) -> str:
        case = CASES[name]
        probe = _copy(template, base / "probe")
        log = base / "points.txt"
        before = counts(probe)
        full = _run(zygote, args_for(case, base / "probe"), probe.root, {"WB_KILL_LOG": str(log)})
        ended = time.time()
        assert full.returncode == 0, full.stderr
        case.check(before, Project(probe.root), False)
        points = _reached(log)
        assert points, "the command reached no write point"
        shutil.rmtree(base / "probe")
        return json.dumps({"points": [n for n, _ in points], "span": ended - points[0][1]})

    _, said = built_once(factory, f"kills-probe-{name}", build)
    probed = json.loads(said)
    before = counts(_copy(template, tmp_path / "before"))
    shutil.rmtree(tmp_path / "before")
    return before, probed["points"], probed["span"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_kill_at_every_write_point(
    zygote: Zygote,
    tmp_path_factory: pytest.TempPathFactory,
    template: Path,
    tmp_path: Path,
    name: str,
) -> None:
    case = CASES[name]
    before, points, _ = _probe(zygote, tmp_path_factory, name, template, tmp_path)
    chosen = case.pick(points) if case.pick else list(range(len(points)))
    for k in chosen:
        # A run's metric flushes go on a timer, so a busy machine can pass fewer points
        # than the probe did: a run that ends before point k is killed again at its own
        # last point (at most twice) rather than reported as not killed.
        for _attempt in range(3):
            base = tmp_path / f"k{k}"
            shutil.rmtree(base, ignore_errors=True)
            p = _copy(template, base)
            log = tmp_path / f"k{k}.txt"
            log.unlink(missing_ok=True)
            env = {"WB_KILL_AT": str(k), "WB_KILL_LOG": str(log)}
            res = _run(zygote, args_for(case, base), p.root, env)
            passed = len(_reached(log)) if log.exists() else 0
            if res.returncode != 0 or passed > k or not passed:
                break
            k = passed - 1
        assert res.returncode == -signal.SIGKILL, (k, points[min(k, len(points) - 1)], res.stderr)
        # killed at that point and no later: the (k+1)th write point is its last (which
        # one that is may vary: a run's metric flushes run on a timer)
        died = _reached(log)
        assert len(died) == k + 1, (k, died[-3:])
        try:
            _after_kill(case, base, before)
        except AssertionError as exc:
            raise AssertionError(f"killed at point {k} ({died[-1][0]}): {exc!r}") from exc
        shutil.rmtree(base)
    _record(name, "write points", len(chosen), len(points))


@pytest.mark.parametrize("name", sorted(CASES))
def test_kill_after_a_random_delay(
    zygote: Zygote,
    tmp_path_factory: pytest.TempPathFactory,
    template: Path,
    tmp_path: Path,
    name: str,
) -> None:
    case = CASES[name]
    before, points, span = _probe(zygote, tmp_path_factory, name, template, tmp_path)
    rng = random.Random(f"{name}-kills")
    kills = 0
    for i in range(RANDOM_KILLS):
        share = rng.uniform(0.0, 0.9)
        for _attempt in range(4):  # a slower run may end first: try again sooner
            base = tmp_path / f"r{i}"
            p = _copy(template, base)
            log = tmp_path / f"r{i}.txt"
            log.unlink(missing_ok=True)
            proc = zygote.start(
                args_for(case, base), p.root, {**os.environ, "WB_KILL_LOG": str(log)}
            )
            while not _reached(log) and proc.poll() is None:
                time.sleep(0.005)  # the clock starts at the first write
            time.sleep(share * span)
            proc.send_signal(signal.SIGKILL)
            code = proc.wait(60)
            _group_gone(proc.pid)
            if code == -signal.SIGKILL:
                break
            shutil.rmtree(base)
            # sooner each time, then at the first write itself: a probe timed on a
            # loaded machine may overstate how long a later run takes
            share = share / 2 if _attempt < 2 else 0.0
        else:
            pytest.fail(f"{name} ended before every kill; it never was killed")
        assert _reached(log), "killed before its first write"
        try:
            _after_kill(case, base, before)
        except AssertionError as exc:
            raise AssertionError(
                f"killed {share * span:.2f}s after its first write (of {span:.2f}s): {exc}"
            ) from exc
        kills += 1
        shutil.rmtree(base)
    _record(name, "random delays", kills, len(points))


def _record(name: str, how: str, kills: int, points: int) -> None:
    """Counts for docs/reliability.md (``test_docs.py`` checks its table against
    ``kill_counts()``), printed with -s."""
    print(json.dumps({"case": name, "how": how, "kills": kills, "points": points}))

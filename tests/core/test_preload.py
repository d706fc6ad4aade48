"""``preload``: a module imported on a thread while the command goes on."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def fresh(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a new interpreter: in this one the modules are imported already."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_a_preloaded_module_is_whole_for_whoever_imports_it_meanwhile() -> None:
    """The import on the thread and the command's own import of the same module at once:
    the command waits and gets the whole module (NumPy's random numbers, as a monitor
    report's bands draw them), then the thread is done with it."""
    out = fresh(
        """
        import sys, threading
        from workbench.core.preload import preload
        assert "numpy" not in sys.modules
        preload("numpy", "numpy.random", "numpy.ma")
        import numpy.random  # at once: while the thread is importing it
        rng = numpy.random.default_rng(1)
        print(round(float(rng.random()), 6), numpy.ma.is_masked(numpy.ma.masked_array([1])))
        for t in threading.enumerate():
            if t.name == "workbench-preload":
                t.join(60)
        print(sorted(m for m in ("numpy", "numpy.random", "numpy.ma") if m in sys.modules))
        """
    )
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()
    assert first == "0.511822 False"
    assert second == "['numpy', 'numpy.ma', 'numpy.random']"


def test_a_module_that_fails_to_import_fails_where_it_is_needed() -> None:
    """A preload that fails says nothing on its thread; the import that needs the module
    raises as it would have."""
    out = fresh(
        """
        import sys, threading
        from workbench.core.preload import preload
        assert "json" not in sys.modules
        preload("no_such_module_here", "json")
        for t in threading.enumerate():
            if t.name == "workbench-preload":
                t.join(60)
        print("json" in sys.modules)  # the one after the failure was still imported
        import json
        print(json.dumps([1]))
        try:
            import no_such_module_here
        except ModuleNotFoundError as exc:
            print("refused:", exc.name)
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == ["True", "[1]", "refused: no_such_module_here"]
    assert out.stderr == ""

"""On a Zen 4 host the command steers NumPy to its AVX2 code (its AVX-512 sort is four
times slower there); elsewhere, or when the user has said otherwise, NumPy is left be."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cli.test_exit import _entry
from workbench.core.host import (
    avx512_names,
    numpy_features_off,
    slow_compress_store,
    sort_slow,
)


def _cpu(vendor: str, family: int, flags: str) -> str:
    return (
        "processor\t: 0\n"
        f"vendor_id\t: {vendor}\n"
        f"cpu family\t: {family}\n"
        "model\t\t: 17\n"
        "model name\t: a CPU: with a colon\n"
        f"flags\t\t: fpu sse4_2 avx2 {flags} bmi2\n"
    )


@pytest.mark.parametrize(
    ("cpuinfo", "slow"),
    [
        (_cpu("AuthenticAMD", 25, "avx512f avx512dq avx512vl"), True),  # Zen 4
        (_cpu("AuthenticAMD", 25, ""), False),  # Zen 3: no AVX-512
        (_cpu("AuthenticAMD", 26, "avx512f avx512dq avx512vl"), False),  # Zen 5
        (_cpu("GenuineIntel", 6, "avx512f avx512dq avx512vl"), False),  # Ice Lake, SPR
        (_cpu("AuthenticAMD", 25, "avx512_vnni"), False),  # not avx512f itself
        ("", False),
    ],
)
def test_only_zen4_counts_as_slow(cpuinfo: str, slow: bool) -> None:
    assert slow_compress_store(cpuinfo) is slow


def test_names_follow_the_numpy_release() -> None:
    assert avx512_names('version = "2.4.6"\n') == "X86_V4 AVX512_ICL AVX512_SPR"
    assert avx512_names('x = 1\nversion = "3.0.0rc1"\n') == "X86_V4 AVX512_ICL AVX512_SPR"
    for old in ('version = "2.3.5"', 'version: str = "1.26.4"', "version = '2.0.0'"):
        names = avx512_names(old + "\n")
        assert names is not None and "AVX512_SKX" in names and "X86_V4" not in names
    assert avx512_names('full_version = "2.4.6"\n') is None
    assert avx512_names("") is None


def test_the_installed_numpy_takes_its_names_without_a_warning() -> None:
    """NumPy reads the names as it is imported: an unknown one is an ImportWarning
    (an error here), and each name given must end up off."""
    numpy_dir = Path(np.__file__).parent
    names = avx512_names((numpy_dir / "version.py").read_text("utf-8"))
    assert names is not None
    show = (
        "from numpy._core._multiarray_umath import __cpu_features__ as f\n"
        "import sys\n"
        "print(sorted(n for n in sys.argv[1].split() if f.get(n, True)))"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", show, names],
        env={**os.environ, "NPY_DISABLE_CPU_FEATURES": names},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_command_sets_it_here_only_on_zen4_and_never_over_the_user() -> None:
    show = (
        "import atexit, os\n"
        "atexit.register(lambda: print('off', os.environ.get('NPY_DISABLE_CPU_FEATURES')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "NPY_DISABLE_CPU_FEATURES"}
    ours = _entry(show, "--version", env=env)
    assert ours.returncode == 0
    assert f"off {numpy_features_off()}" in ours.stdout
    theirs = _entry(show, "--version", env={**env, "NPY_DISABLE_CPU_FEATURES": ""})
    assert theirs.returncode == 0 and "off \n" in theirs.stdout


ZEN4 = _cpu("AuthenticAMD", 25, "avx512f avx512dq avx512vl")


def test_the_sort_is_slow_only_where_numpy_sorts_with_avx512_on_a_zen4() -> None:
    assert sort_slow(ZEN4, {"X86_V4": True, "AVX512_SKX": True})
    assert sort_slow(ZEN4, {"AVX512_SKX": True})  # NumPy before 2.4 names no X86_V4
    # the environment turned AVX-512 off: NumPy reports those features off
    assert not sort_slow(ZEN4, {"X86_V4": False, "AVX512_SKX": False, "AVX2": True})
    assert not sort_slow(_cpu("GenuineIntel", 6, "avx512f"), {"X86_V4": True})
    assert not sort_slow(_cpu("AuthenticAMD", 26, "avx512f"), {"X86_V4": True})


def test_numpy_told_to_use_avx2_is_never_taken_for_slow() -> None:
    names = avx512_names((Path(np.__file__).parent / "version.py").read_text("utf-8"))
    assert names is not None
    done = subprocess.run(
        [sys.executable, "-c",
         "from workbench.core.host import numpy_sort_slow; print(numpy_sort_slow())"],
        env={**os.environ, "NPY_DISABLE_CPU_FEATURES": names},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_drift_sorted_by_polars_gives_the_same_report_as_by_numpy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where NumPy's sort is the slow one, Polars sorts: NaN, infinities, nulls, ties,
    negative zero and integers wider than a float's mantissa come out the same."""
    import polars as pl

    from workbench.core.data.sources import Table
    from workbench.core.drift import columns
    from workbench.core.drift.columns import Options, compare_column

    rng = np.random.default_rng(7)
    n = 5_000

    def side(shift: float) -> pl.DataFrame:
        x = rng.normal(shift, 1, n)
        x[::97] = np.nan
        x[::89] = np.inf
        x[::83] = -np.inf
        x[::79] = -0.0
        x[::73] = 0.0
        return pl.DataFrame(
            {
                "x": pl.Series(x).set(pl.Series(np.arange(n) % 61 == 0), None),
                "ties": rng.integers(0, 5, n).astype(float) + shift,
                "big": rng.integers(2**60, 2**60 + 1000, n) + int(shift * 10),
                "small": rng.integers(-3, 4, n),
            }
        )

    ref, cur = side(0.0), side(0.2)
    reports = {}
    for slow in (False, True):
        monkeypatch.setattr(columns, "numpy_sort_slow", lambda slow=slow: slow)
        for method in ("ks", "wasserstein", "psi", "anderson"):
            opts = Options(method=method)
            for name in ref.columns:
                a, b = Table.of_frame("ref", ref), Table.of_frame("cur", cur)
                got = compare_column(name, a, b, opts, explicit=True)
                reports[(slow, method, name)] = (got.statistic, got.p_value, got.drifted)
    for (slow, method, name), found in reports.items():
        if slow:
            assert found == reports[(False, method, name)], (method, name)
    assert any(r[0] is not None for r in reports.values())

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
from workbench.cli.host import avx512_names, numpy_features_off, slow_compress_store


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

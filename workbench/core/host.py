"""The CPU's quirks that change how fast NumPy is, and what is done about them: the
``workbench`` command sets NumPy's features before importing it (``numpy_features_off``);
in a process that imported NumPy first (a script using the API), drift sorts with
Polars instead where NumPy's sort is the slow one (``numpy_sort_slow``).

AMD's Zen 4 runs AVX-512 ``vpcompress`` with a memory operand as microcode (over 100
cycles each, where Intel's cores and Zen 5 take a few), and NumPy's sort (x86-simd-sort)
partitions with exactly that instruction on every vector. On a 2-core Zen 4 host
(EPYC, family 25 model 17) ``np.sort`` of 1M doubles took 55 ms on NumPy's AVX-512
path and 11-13 ms on its AVX2 path; a drift report sorts every numeric column of both
sides, and one of 1M rows a side took 1.94 s on the first and 1.08 s on the second
(medians of 5). OpenJDK made the same choice for its own sort on Zen 4 (JDK-8317976).
Nothing else measured there got slower (`data add` of a 1M-row file took the same time
either way): Zen 4 runs 512-bit vectors as two 256-bit halves.

Zen 4 is the one AMD family 25 (0x19) with AVX-512: Zen 3, the other, has none, and
Zen 5 is family 26.
"""

from __future__ import annotations

import functools
import os

# NumPy's names of its AVX-512 code paths: 2.4 groups the common ones as X86_V4, older
# releases name each. A name the installed NumPy does not dispatch costs an ImportWarning
# in older releases, so only the installed NumPy's names are given.
_AVX512_SINCE_2_4 = "X86_V4 AVX512_ICL AVX512_SPR"
_AVX512_BEFORE_2_4 = (
    "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"
)

_VERSION = r"""^version\s*(?::\s*str\s*)?=\s*["'](\d+)\.(\d+)"""


def cpu_fields(cpuinfo: str) -> dict[str, str]:
    """A block of /proc/cpuinfo as its fields ("cpu family" -> "25", "flags" -> ...)."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def slow_compress_store(cpuinfo: str) -> bool:
    """Whether the CPU described by ``cpuinfo`` (its first block of /proc/cpuinfo) is a
    Zen 4: AMD, family 25, with AVX-512."""
    fields = cpu_fields(cpuinfo)
    return (
        fields.get("vendor_id") == "AuthenticAMD"
        and fields.get("cpu family") == "25"
        and "avx512f" in fields.get("flags", "").split()
    )


@functools.cache
def first_cpu() -> str:
    """The first block of /proc/cpuinfo (one processor's), or "" where there is none:
    read once a process, though the command's start and drift's sort both ask."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            first: list[str] = []
            for line in f:
                if not line.strip():
                    break
                first.append(line)
        return "".join(first)
    except (OSError, ValueError):
        return ""


def sort_slow(cpuinfo: str, features: dict[str, bool]) -> bool:
    """Whether NumPy, with CPU ``features`` on (its ``__cpu_features__``: a feature the
    environment turned off reads False), sorts on its AVX-512 path on a Zen 4."""
    avx512 = features.get("X86_V4", False) or features.get("AVX512_SKX", False)
    return bool(avx512) and slow_compress_store(cpuinfo)


@functools.cache
def numpy_sort_slow() -> bool:
    """Whether this process's NumPy sorts on its slow path (see the module doc); False
    when that cannot be told (NumPy's feature table is private and may move)."""
    import importlib

    for where in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            features = importlib.import_module(where).__cpu_features__
        except (ImportError, AttributeError):
            continue
        return sort_slow(first_cpu(), dict(features))
    return False


def avx512_names(numpy_version_py: str) -> str | None:
    """NumPy's names for its AVX-512 paths, given the text of its ``numpy/version.py``
    (None when that text names no version)."""
    import re  # here: this module is imported by every command, this runs on a Zen 4

    found = re.search(_VERSION, numpy_version_py, re.MULTILINE)
    if found is None:
        return None
    return _AVX512_SINCE_2_4 if tuple(map(int, found.groups())) >= (2, 4) else _AVX512_BEFORE_2_4


def numpy_features_off() -> str | None:
    """The value for ``NPY_DISABLE_CPU_FEATURES`` on this host, or None to leave NumPy
    as it is: not a Zen 4, not Linux, or no NumPy found. Reads the first block of
    /proc/cpuinfo and NumPy's version.py (well under a millisecond) rather than import
    ``importlib.metadata`` (39 ms)."""
    import importlib.util

    try:
        if not slow_compress_store(first_cpu()):
            return None
        spec = importlib.util.find_spec("numpy")
        if spec is None or spec.origin is None:
            return None
        with open(os.path.join(os.path.dirname(spec.origin), "version.py"), encoding="utf-8") as f:
            return avx512_names(f.read())
    except (OSError, ValueError, ImportError):
        return None

"""Plain-text formatting shared by the CLI and the TUI (no Rich, no Textual here)."""

from __future__ import annotations


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 row``, ``2 rows``, ``1,000 new keys``: a count and its noun, agreeing."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def data_cell(v: object) -> str:
    """A value from a dataset's rows as its type writes it: a year stays ``2014`` and a
    zip code ``98005`` (no thousands separators, which belong to counts, not data), an
    integral float stays a float (``3.0``), a float keeps up to 10 significant digits."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v != v:
            return "NaN"
        text = f"{v:.10g}"
        return text if any(ch in text for ch in ".einn") else f"{text}.0"
    return str(v)


def step_ticks(lo: int, hi: int, most: int = 6) -> list[int]:
    """Whole-number ticks for a step axis (1, 50, 100, … rather than plotext's 1.0, 50.8,
    100.5): the first step, then round multiples of 1, 2 or 5 × 10^k up to the last."""
    if hi - lo < most:
        return list(range(lo, hi + 1))
    raw = (hi - lo) / (most - 1)
    scale = 10 ** (len(str(int(raw))) - 1)
    step = next(m * scale for m in (1, 2, 5, 10) if m * scale >= raw)
    first = (lo // step + 1) * step
    ticks = [lo] + [t for t in range(first, hi + 1, step) if t - lo >= step / 3]
    return ticks


def _brief_value(v: object) -> str | None:
    """One value of an audit entry's details, short: run and report ids cut to 8
    characters as every list shows them, digests to 12, numbers as a table shows them,
    a short list joined; None for what says nothing on a line."""
    if v is None or v == "" or v == [] or v == {}:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, str):
        if len(v) in (32, 64) and all(c in "0123456789abcdef" for c in v):
            return v[:8] if len(v) == 32 else v[:12]  # a run or report as lists show it
        return v
    if isinstance(v, list):
        if all(isinstance(x, dict) and isinstance(x.get("passed"), bool) for x in v):
            return f"{sum(x['passed'] for x in v)}/{len(v)} passed"  # gates
        if all(not isinstance(x, dict | list) for x in v):
            shown = ",".join(str(_brief_value(x)) for x in v[:3])
            return shown + (f",…(+{len(v) - 3})" if len(v) > 3 else "")
        return f"({len(v)})"
    return None  # a nested record: its scalars are listed by ``brief``


# Left out of an audit line: a version's id (its subject names it) and a model's artifact
# digest (it says nothing at a glance and differs with every library release that pickles
# a model differently; `audit --json` and `verify` have it).
AUDIT_LINE_SKIPS = ("id", "artifact")


def brief(details: dict[str, object], limit: int = 80, skip: tuple[str, ...] = ()) -> str:
    """An audit entry's details on one line: ``rows=27,020, drifted=true, …``. A
    record nested one deep (a monitor report's latest window) shows its own scalars
    (``latest.drift_share=0.5385``, or without the prefix when it is all there is),
    where ``str(dict)`` printed Python's repr, cut mid-key."""
    if len(details) == 1 and isinstance(next(iter(details.values())), dict):
        (details,) = details.values()  # type: ignore[assignment]
    parts: list[str] = []
    nested: list[str] = []
    for key, value in details.items():
        if key in skip:
            continue
        if isinstance(value, dict):
            for sub, v in value.items():
                text = _brief_value(v)
                if text is not None:
                    nested.append(f"{key}.{sub}={text}")
            continue
        text = _brief_value(value)
        if text is not None:
            parts.append(f"{key}={text}")
    line = ", ".join(parts + nested)
    return line if len(line) <= limit else line[: limit - 1] + "…"

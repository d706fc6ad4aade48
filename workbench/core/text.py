"""Text a user typed, made safe to show in a terminal.

A terminal obeys what it is sent: an ``ESC[`` sequence in a tag value can recolour,
clear or retitle the screen, and a right-to-left override (U+202E) makes ``txt.exe``
read as ``exe.txt``. Such characters are refused in names and keys, and shown escaped
(``\\x1b``, ``\\u202e``) wherever stored text is printed, by the CLI and the app alike.
Tabs and newlines are kept where text may span lines; everything else that moves the
cursor, changes direction or hides itself is escaped.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the invisible or direction-changing format characters:
# Arabic letter mark, zero-width space/joiners/marks, line and paragraph separators,
# the bidi embeddings/overrides/isolates, word joiner and friends, the BOM.
_INVISIBLE = "\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_INVISIBLE}]")
NOT_IN_KEYS = re.compile(f"[\x00-\x1f\x7f-\x9f{_INVISIBLE}]")
# what JSON leaves raw in its strings (it escapes C0 itself): written as \uXXXX instead
_JSON_RAW = re.compile(f"[\x7f-\x9f{_INVISIBLE}]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str) -> str:
    """``text`` with every unsafe character written out as an escape (tabs and newlines
    kept). Unchanged, and cheap, for ordinary text."""
    return UNSAFE.sub(_escaped, text) if UNSAFE.search(text) else text


def inert_line(text: str) -> str:
    """As ``inert``, for one line: newlines and tabs escaped as well."""
    return NOT_IN_KEYS.sub(_escaped, text) if NOT_IN_KEYS.search(text) else text


def inert_json(text: str) -> str:
    """JSON text with C1, invisible and bidi characters written as ``\\uXXXX`` escapes:
    the same JSON value, inert in a terminal (only strings can hold them)."""
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def has_unsafe(text: str) -> bool:
    """Whether a key or a one-line text holds a character no name may hold."""
    return NOT_IN_KEYS.search(text) is not None


def clip(text: str, limit: int = 120) -> str:
    """At most about ``limit`` characters of a value, saying how long it was.

    A 5 MB text cell quoted whole in a profile or a drift note made the report 5 MB and
    its table seconds to draw; what a reader needs is which value, not all of it.
    """
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text):,} characters)"


def known_hint(name: str, known: list[str], what: str = "columns", shown: int = 12) -> str:
    """What to say after "NAME is not there": the nearest known name when one is close
    (a typo), then the known ones, the first ``shown`` of them and how many more, so
    that a long list neither hides the answer nor floods the line."""
    import difflib

    near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    listed = ", ".join(known[:shown]) + (
        f" and {len(known) - shown} more" if len(known) > shown else ""
    )
    return (f"; did you mean {near[0]!r}?" if near else "") + f" ({what}: {listed})"

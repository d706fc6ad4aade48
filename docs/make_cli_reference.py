"""Write docs/cli.md from the commands themselves, so the reference cannot drift.

    python docs/make_cli_reference.py

tests/test_docs.py fails when docs/cli.md differs from what this writes.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import click

from workbench.cli.main import cli

OUT = Path(__file__).resolve().parent / "cli.md"

INTRO = """# CLI reference

Generated from the commands by `docs/make_cli_reference.py`; `workbench COMMAND --help`
prints the same. Every command takes `--project DIR` (or `WORKBENCH_PROJECT`) before the
command name; without it the project is found by walking up from the current folder.
Errors are one line on stderr: exit code 1 for a refusal or a failure, 2 for a command
called wrongly.
"""


def _section(cmd: click.Command, path: list[str], out: list[str]) -> None:
    ctx = click.Context(cmd, info_name=" ".join(path))
    if True:
        usage = cmd.collect_usage_pieces(ctx)
        out += [f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`", ""]
        out += ["```text", f"Usage: {' '.join(path)} {' '.join(usage)}".rstrip(), "```", ""]
        help_text = inspect.cleandoc((cmd.help or "").split("\f")[0])
        if help_text:
            out += [click.unstyle(help_text), ""]
        rows = []
        for p in cmd.get_params(ctx):
            record = p.get_help_record(ctx) if isinstance(p, click.Option) else None
            if record and not record[0].endswith("--help"):
                name, meaning = (part.replace("|", "\\|") for part in record)
                rows.append(f"| `{name}` | {meaning} |")
        if rows:
            out += ["| option | meaning |", "|---|---|", *rows, ""]
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.list_commands(ctx)):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                _section(sub, [*path, name], out)


def render() -> str:
    out = [INTRO]
    _section(cli, ["workbench"], out)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")

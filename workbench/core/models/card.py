"""``workbench model card NAME@ALIAS``: a Markdown model card from what the store knows.

Nothing is typed in by hand: purpose is the registered description, lineage and
metrics come from the run, and drift at promotion time is what the promotion's own
``drift_share`` gates measured (kept in the alias history).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.core.project import Project


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def model_card(project: Project, ref: str) -> str:
    mv = project.models.resolve(ref)
    run = project.runs.get(mv.run_id)
    history = project.models.history(mv.model)
    lines = [
        f"# Model card: {mv.model} v{mv.version}",
        "",
        f"- **Aliases now:** {', '.join(mv.aliases) or 'none'}; status {mv.status}",
        f"- **Purpose:** {mv.description or '(no description registered)'}",
        f"- **Task:** {mv.signature.get('task', run.params.get('task', 'unknown'))}; "
        f"target `{mv.signature.get('target', run.params.get('target', '?'))}`",
        f"- **Registered:** {mv.created_at:%Y-%m-%d %H:%M} UTC",
        "",
        "## Lineage",
        "",
        f"dataset `{mv.dataset_ref or '(none recorded)'}` → run `run:{mv.run_id[:8]}` "
        f"({run.status}, experiment {run.experiment}) → `{mv.ref}` (artifact "
        f"`{mv.artifact[:12]}`)",
        "",
        "## Inputs",
        "",
        "| column | type |",
        "|---|---|",
        *[f"| {_md(c)} | {_md(t)} |" for c, t in (mv.signature.get("inputs") or {}).items()],
        "",
        "## Parameters",
        "",
        "| param | value |",
        "|---|---|",
        *[f"| {_md(k)} | {_md(v)} |" for k, v in sorted(mv.params.items())],
        "",
        "## Metrics",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {_md(k)} | {_num(v)} |" for k, v in sorted(mv.metrics.items())],
        "",
        "## Promotion history",
        "",
    ]
    mine = [h for h in history if mv.version in (h.version, h.previous)]
    if not mine:
        lines.append("Never promoted.")
    else:
        lines += [
            "| when (UTC) | alias | change | by | reason | forced |",
            "|---|---|---|---|---|---|",
        ]
        for h in mine:
            change = f"v{h.previous} → v{h.version}" if h.previous else f"→ v{h.version}"
            lines.append(
                f"| {h.ts:%Y-%m-%d %H:%M} | {h.alias} | {h.action.removeprefix('model.')} "
                f"{change} | {_md(h.actor)} | {_md(h.reason or '')} | "
                f"{'**yes**' if h.forced else 'no'} |"
            )
    drift = [
        (h, g)
        for h in mine
        if h.version == mv.version
        for g in h.gates
        if str(g.get("gate", "")).startswith("drift_share(")
    ]
    lines += ["", "## Drift at promotion time", ""]
    if not drift:
        lines.append("No drift gate was checked when this version was promoted.")
    for h, g in drift:
        verdict = "passed" if g["passed"] else "FAILED"
        lines.append(
            f"- {h['ts']:%Y-%m-%d} to {h['alias']}: `{g['gate']}` measured {_num(g['value'])} "
            f"({verdict}; {g.get('note', '')})"
        )
    lines += ["", "## All gates at its promotions", ""]
    for h in mine:
        if h["version"] != mv.version:
            continue
        lines.append(f"**{h['alias']}, {h['ts']:%Y-%m-%d %H:%M}**")
        lines.append("")
        for g in h["gates"]:
            mark = "pass" if g["passed"] else "FAIL"
            lines.append(
                f"- {mark}: `{g['gate']}` = {_num(g['value'])} (target {_num(g['target'])}) {g.get('note', '')}"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"

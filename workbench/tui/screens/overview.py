"""Overview: datasets, recent runs, models, drift verdicts and audit entries at a glance."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import DataTable, Header, Label

from workbench.tui.base import WBScreen
from workbench.tui.formatting import fmt, status_text
from workbench.tui.messages import Open
from workbench.tui.widgets.footer import WBFooter
from workbench.tui.widgets.table import Table

RECENT = 12


def _panel(title: str, table_id: str) -> Vertical:
    table: DataTable[Any] = Table(id=table_id, cursor_type="row", zebra_stripes=True)
    box = Vertical(
        Label(title, classes="panel-title"), table, classes="panel", id=f"{table_id}-panel"
    )
    return box


class OverviewScreen(WBScreen):
    def compose(self) -> ComposeResult:
        yield Header()
        with Grid(id="overview"):
            yield _panel("Datasets", "ov-datasets")
            yield _panel("Recent runs", "ov-runs")
            yield _panel("Models", "ov-models")
            yield _panel("Drift", "ov-drift")
            yield _panel("Audit", "ov-audit")
        yield WBFooter()

    def on_mount(self) -> None:
        for tid, cols in (
            ("ov-datasets", ("dataset", "latest", "rows", "versions")),
            ("ov-runs", ("run", "name", "status", "val metric", "dataset", "model")),
            ("ov-models", ("model", "production", "staging", "versions")),
            ("ov-drift", ("reference → current", "drifted", "verdict")),
            ("ov-audit", ("#", "action", "subject")),
        ):
            self.query_one(f"#{tid}", DataTable).add_columns(*cols)

    def refresh_data(self) -> None:
        def read() -> dict[str, Any]:
            from workbench.core.store import audit

            p = self.project
            with p.catalog.read() as con:
                trail = audit.entries(con, limit=RECENT)
            return {
                "datasets": p.datasets.list(),
                "runs": p.runs.list(limit=RECENT),
                "models": p.models.list(),
                "drift": p.drift.list(limit=RECENT),
                "audit": trail,
            }

        self.load(read, self._show)

    def _fill(self, tid: str, rows: list[tuple[str, list[Any]]]) -> None:
        table = self.query_one(f"#{tid}", DataTable)
        table.clear()
        for key, cells in rows:
            table.add_row(*cells, key=key)

    def _show(self, data: dict[str, Any]) -> None:
        from workbench.tui.hints import empty

        for kind in ("datasets", "runs", "models", "drift", "audit"):
            hint = empty(kind, data["datasets"], short=True)
            self.query_one(f"#ov-{kind}", Table).say_when_empty(hint)
        self._fill(
            "ov-datasets",
            [
                (
                    f"dataset:{d.latest}",
                    [d.name, d.latest, fmt(d.rows), fmt(d.versions)],
                )
                for d in data["datasets"]
            ],
        )
        runs = []
        for r in data["runs"]:
            metric = next(
                (k for k in ("val_auc", "val_r2", "val_accuracy") if k in r.metrics), None
            )
            shown = f"{metric}={fmt(r.metrics[metric])}" if metric else "-"
            runs.append(
                (
                    f"run:{r.id}",
                    [
                        r.ref,
                        r.name or "-",
                        status_text(r.status),
                        shown,
                        r.dataset or "-",
                        r.params.get("model") or r.params.get("sweep.model", "-"),
                    ],
                )
            )
        self._fill("ov-runs", runs)
        self._fill(
            "ov-models",
            [
                (
                    f"model:{m.name}",
                    [
                        m.name,
                        _v(m.aliases.get("production")),
                        _v(m.aliases.get("staging")),
                        fmt(m.versions),
                    ],
                )
                for m in data["models"]
            ],
        )
        self._fill(
            "ov-drift",
            [
                (
                    f"drift:{d['id']}",
                    [
                        f"{d['reference']} → {d['current']}",
                        f"{d['n_drifted']}/{d['n_tested']}",
                        "[b red]DRIFT[/]" if d["drifted"] else "[green]ok[/]",
                    ],
                )
                for d in data["drift"]
            ],
        )
        from workbench.core.store.audit import shown as subject_shown

        self._fill(
            "ov-audit",
            [
                (f"audit:{e['seq']}", [str(e["seq"]), e["action"], subject_shown(e["subject"])])
                for e in data["audit"]
            ],
        )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.open_key(event.row_key.value or "")

    def open_key(self, key: str) -> None:
        kind, _, value = key.partition(":")
        if kind in ("dataset", "run", "model", "drift"):
            self.post_message(Open(kind, value))  # type: ignore[arg-type]
        elif kind == "audit":
            self.app.switch_mode("audit")


def _v(version: int | None) -> str:
    return f"v{version}" if version else "-"

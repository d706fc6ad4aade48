"""What a monitor report learns from the log's requests beyond their rows: the traffic
of the servers that answered (a window's error rate and p99 latency) and what each batch
scoring (`workbench predict`) read, so that a window says which batch it holds
("flights@12") rather than only a request id. One catalog read for both."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from workbench.core.models.versions import ModelVersion
    from workbench.core.project import Project


@dataclass
class Requests:
    ts: Any  # numpy arrays of the servers' requests, in time order
    status: Any
    latency: Any
    ours: Any
    inputs: pl.DataFrame  # request_id, input: the version's batch scorings

    def span(self, first: datetime, last: datetime) -> tuple[float | None, float | None]:
        """The error rate of the servers that answered for this version (refused requests
        carry no model; a server serves one) over a window's time span, and the p99
        latency of its answered requests."""
        import numpy as np

        if not len(self.ts):
            return None, None
        a = np.searchsorted(self.ts, np.datetime64(first), "left")
        b = np.searchsorted(self.ts, np.datetime64(last), "right")
        if b <= a:
            return None, None
        s = self.status[a:b]
        err = float(np.mean(s != 200))
        answered = self.latency[a:b][(s == 200) & np.asarray(self.ours[a:b], dtype=bool)]
        p99 = float(np.percentile(answered, 99)) if answered.size else None
        return err, p99

    def scored(self, request_ids: pl.Series) -> list[str]:
        """What the batch scorings among a window's requests read, in the order their rows
        come (a served request read no named input). A window that begins and ends in one
        request is that request alone: a request's rows are logged with one time, so the
        log's order (time, request, row) keeps them together; it is looked up, not
        scanned (a 100k-row window of one scoring: 2 ms, ten of them a tenth of a report
        of estimates only)."""
        if self.inputs.height == 0 or request_ids.len() == 0:
            return []
        first = request_ids[0]
        if first == request_ids[-1]:
            named = self.inputs.filter(request_id=first).get_column("input")
            return named.to_list()[:1]
        hits = (
            request_ids.unique(maintain_order=True)
            .to_frame("request_id")
            .join(self.inputs, on="request_id", how="inner", maintain_order="left")
        )
        return list(dict.fromkeys(hits.get_column("input").to_list()))


def requests_of(project: Project, mv: ModelVersion) -> Requests:
    import polars as pl

    with project.catalog.read() as con:
        rows = con.execute(
            """SELECT ts, status, latency_ms, (model = ? AND version = ?) AS ours
               FROM serving_requests
               WHERE path <> 'workbench predict' AND log IN (
                 SELECT DISTINCT log FROM serving_requests WHERE model = ? AND version = ?)
               ORDER BY ts""",
            [mv.model, mv.version, mv.model, mv.version],
        ).fetchnumpy()
        scorings = con.execute(
            "SELECT id, input FROM scorings WHERE model = ? AND version = ?",
            [mv.model, mv.version],
        ).fetchall()
    # a dataset version by its ref, a file by its name (what the scoring recorded)
    inputs = pl.DataFrame(
        scorings,
        schema={"request_id": pl.String, "input": pl.String},
        orient="row",
    )
    return Requests(rows["ts"], rows["status"], rows["latency_ms"], rows["ours"], inputs)

"""Labels arrive later: joined to logged predictions by request id or key column, and
refused whole, with counts, when an id is doubled, unknown or already labelled."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_cli
from workbench.core.errors import WorkbenchError
from workbench.core.models.labels import add
from workbench.core.models.prediction_log import LogWriter, request_line
from workbench.core.project import Project


def logged(project: Project, rid: str, customers: list[str], model: str = "m") -> None:
    log = LogWriter(project.serving_dir)
    n = len(customers)
    log.write(request_line(rid, 200, 1.0, n, model, 1,
                           inputs={"customer": customers, "x": list(range(n))},
                           outputs={"prediction": [0] * n}))  # fmt: skip
    log.close()


@pytest.fixture
def served(tmp_path: Path) -> Project:
    """Model m with five logged requests: a..d of one row (customers c1..c4), e of two."""
    project = Project.init(tmp_path / "p")[0]
    with project.catalog.write() as con:
        con.execute("INSERT INTO models VALUES ('m', now(), NULL)")
    for i, rid in enumerate("abcd", 1):
        logged(project, rid, [f"c{i}"])
    logged(project, "e", ["c5", "c6"])
    project.fold_predictions()
    return project


def label_file(tmp_path: Path, **columns: list) -> str:
    path = tmp_path / f"labels-{len(list(tmp_path.glob('labels-*')))}.csv"
    pl.DataFrame(columns).write_csv(path)
    return str(path)


def labels_of(project: Project) -> dict[tuple[str, int], str]:
    with project.catalog.read() as con:
        rows = con.execute("SELECT request_id, row, label FROM labels").fetchall()
    return {(r[0], r[1]): json.loads(r[2]) for r in rows}


def test_labels_join_by_request_id_then_by_key(served: Project, tmp_path: Path) -> None:
    f = label_file(tmp_path, rid=["a", "b"], truth=[1, 0])
    done = add(served.catalog, served.datasets, f, "m", "truth", id_column="rid")
    assert (done.labels, done.ids, done.matched_by) == (2, 2, "request id")
    f = label_file(tmp_path, customer=["c3", "c6"], churned=[1, 1])
    done = add(served.catalog, served.datasets, f, "m", "churned", key="customer")
    assert done.labels == 2 and done.matched_by == "key customer"
    assert labels_of(served) == {("a", 0): 1, ("b", 0): 0, ("c", 0): 1, ("e", 1): 1}
    f = label_file(tmp_path, rid=["e"], pos=[0], y=[0])
    assert add(served.catalog, served.datasets, f, "m", "y", id_column="rid", row_column="pos")
    assert labels_of(served)[("e", 0)] == 0


@pytest.mark.parametrize(
    ("columns", "options", "message"),
    [
        ({"rid": ["a", "a"], "y": [1, 0]}, {"id_column": "rid"}, r"1 id\(s\) appear more than once"),
        ({"rid": ["a", "zz", "yy"], "y": [1, 0, 1]}, {"id_column": "rid"},
         r"2 of 3 id\(s\) in labels-0.csv match no logged prediction of m \(e.g. 'zz' and 1 more\)"),
        ({"rid": ["e"], "y": [1]}, {"id_column": "rid"}, r"scored several rows .* --row COL"),
        ({"rid": ["a", None], "y": [1, 0]}, {"id_column": "rid"}, r"1 row\(s\) .* have no rid"),
        ({"rid": ["a"], "z": [1]}, {"id_column": "rid"}, r"has no column 'y'"),
        ({"ridd": ["a"], "y": [1]}, {"id_column": "rid"}, r"no column 'rid'; did you mean 'ridd'"),
        ({"customer": ["c9"], "y": [1]}, {"key": "customer"}, r"1 of 1 id\(s\)"),
    ],
)  # fmt: skip
def test_a_bad_label_file_is_refused_whole_with_counts(
    served: Project, tmp_path: Path, columns: dict, options: dict, message: str
) -> None:
    f = label_file(tmp_path, **columns)
    with pytest.raises(WorkbenchError, match=message):
        add(served.catalog, served.datasets, f, "m", "y", **options)
    assert labels_of(served) == {}


def test_labels_are_not_replaced_and_the_cli_says_so_in_one_line(
    served: Project, tmp_path: Path
) -> None:
    f = label_file(tmp_path, rid=["a", "b"], y=[1, 0])
    res = run_cli("labels", "add", f, "--model", "m", "--id", "rid", "--label", "y",
                  cwd=served.root)  # fmt: skip
    assert res.code == 0, res.err
    assert res.out.strip() == (
        "Labelled 2 predictions of m from labels-0.csv (2 ids, matched by request id)"
    )
    g = label_file(tmp_path, rid=["b", "c"], y=[1, 1])
    res = run_cli("labels", "add", g, "--model", "m", "--id", "rid", "--label", "y",
                  cwd=served.root)  # fmt: skip
    assert res.code != 0 and len(res.err.strip().splitlines()) == 1
    assert "1 of these predictions already have a label (e.g. 'b')" in res.err
    assert labels_of(served) == {("a", 0): 1, ("b", 0): 0}  # c was not added either
    res = run_cli("sql", "SELECT request_id, label FROM predictions ORDER BY request_id, row",
                  "--json", cwd=served.root)  # fmt: skip
    got = [(r["request_id"], r["label"]) for r in json.loads(res.out)]
    assert got[:3] == [("a", "1"), ("b", "0"), ("c", None)]
    audit = run_cli("audit", "--json", cwd=served.root)
    assert "labels.add" in audit.out


def test_predictions_export_with_their_labels(served: Project, tmp_path: Path) -> None:
    f = label_file(tmp_path, customer=["c2"], y=[1])
    add(served.catalog, served.datasets, f, "m", "y", key="customer")
    out = tmp_path / "preds.parquet"
    res = run_cli("export", "predictions", "-o", str(out), cwd=served.root)
    assert res.code == 0 and res.out.strip() == f"Wrote 6 rows of predictions to {out}"
    got = pl.read_parquet(out).select("request_id", "row", "label").rows()
    assert got == [("a", 0, None), ("b", 0, "1"), ("c", 0, None), ("d", 0, None),
                   ("e", 0, None), ("e", 1, None)]  # fmt: skip


def test_a_request_id_a_client_sent_twice_is_refused_not_guessed(
    served: Project, tmp_path: Path
) -> None:
    """Two requests with one X-Request-ID: a label for it cannot say which answer it is
    for (it said "scored several rows: give --row", and with --row labelled both)."""
    logged(served, "a", ["c7"])  # the client sent "a" again, for another customer
    served.fold_predictions()
    tries = [
        ({"rid": ["a", "b"], "y": [1, 0]}, {"id_column": "rid"}),
        ({"rid": ["a", "b"], "pos": [0, 0], "y": [1, 0]}, {"id_column": "rid", "row_column": "pos"}),
        ({"customer": ["c7", "c2"], "y": [1, 0]}, {"key": "customer"}),  # "a"'s second asker
    ]  # fmt: skip
    for columns, options in tries:
        f = label_file(tmp_path, **columns)
        with pytest.raises(WorkbenchError, match=r"1 request id\(s\) that labels-\d.csv labels "
                           r"were sent by more than one request \(e.g. 'a'\)"):  # fmt: skip
            add(served.catalog, served.datasets, f, "m", "y", **options)
        assert labels_of(served) == {}
    f = label_file(tmp_path, customer=["c2", "c3"], y=[1, 0])  # requests of their own: fine
    assert add(served.catalog, served.datasets, f, "m", "y", key="customer").labels == 2

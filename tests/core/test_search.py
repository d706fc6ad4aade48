"""The run filter language against a real catalog."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.core.errors import UsageError
from workbench.core.fluent import start_run
from workbench.core.project import Project
from workbench.core.runs.search import Joins, order_sql, where_sql


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, dict[str, str]]:
    project, _ = Project.init(tmp_path_factory.mktemp("s") / "p")
    ids = {}
    specs = [
        ("a", "lightgbm", 0.1, [0.70, 0.80, 0.85], "base run"),
        ("b", "lightgbm", 0.05, [0.75, 0.95, 0.90], "tuned"),
        ("c", "random_forest", 0.2, [0.60, 0.65, 0.70], "base forest"),
        ("d", "logistic", 1e-3, [0.50], "it's quoted"),
    ]
    # numbers whose order as text is another: 1000 < 400 < 50 < 9
    trees = {"a": 400, "b": 1000, "c": 9, "d": 50}
    for name, model, lr, aucs, note in specs:
        with start_run(experiment="e", name=name, project=project) as run:
            run.log_params({"model": model, "lr": lr, "trees": trees[name]})
            for step, auc in enumerate(aucs, start=1):
                run.log_metric("val_auc", auc, step=step * 100)
            run.set_tag("note", note)
        ids[name] = run.id
    with pytest.raises(RuntimeError), start_run(experiment="e", name="f", project=project) as run:
        raise RuntimeError("x")
    ids["f"] = run.id
    return project, ids


def names(project: Project, flt: str | None = None, order: str | None = None) -> list[str]:
    return [r["name"] for r in project.runs.list(filter=flt, order_by=order)]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("metrics.val_auc > 0.8", {"a", "b"}),
        ("params.model = 'lightgbm' and metrics.val_auc < 0.88", {"a"}),
        ("params.model = 'logistic' or status = 'failed'", {"d", "f"}),
        (
            "(params.model = 'logistic' or params.model = 'random_forest') and params.lr > 0.01",
            {"c"},
        ),
        ("max(metrics.val_auc) > 0.9", {"b"}),
        ("min(metrics.val_auc) <= 0.6", {"c", "d"}),
        ("count(metrics.val_auc) = 3", {"a", "b", "c"}),
        ("metrics.val_auc@step=200 >= 0.8", {"a", "b"}),
        ("params.lr in (0.1, 0.05)", {"a", "b"}),
        ("params.model not in ('lightgbm')", {"c", "d"}),
        ("tags.note like '%base%'", {"a", "c"}),
        ("tags.note ilike 'TUNED'", {"b"}),
        ("tags.note = 'it''s quoted'", {"d"}),
        ("metrics.val_auc is null", {"f"}),
        ("not params.model = 'lightgbm'", {"c", "d", "f"}),
        ("status = 'finished' and name != 'a'", {"b", "c", "d"}),
        ("", {"a", "b", "c", "d", "f"}),
    ],
)
def test_filters(runs, flt: str, expected: set[str]) -> None:
    project, _ = runs
    assert set(names(project, flt)) == expected


def test_ordering(runs) -> None:
    project, _ = runs
    assert names(project, "metrics.val_auc > 0", "metrics.val_auc desc") == ["b", "a", "c", "d"]
    assert names(project, "metrics.val_auc > 0", "max(metrics.val_auc) desc") == [
        "b",
        "a",
        "c",
        "d",
    ]
    assert names(project, "metrics.val_auc > 0", "params.lr asc") == [
        "d",
        "b",
        "a",
        "c",
    ]  # numerically
    assert names(project, "params.trees > 0", "params.trees") == ["c", "d", "a", "b"]
    assert names(project, "params.trees > 0", "params.trees desc") == ["b", "a", "d", "c"]
    # a key in the filter, the order and an aggregate at once, each read right
    assert names(
        project, "params.trees >= 50 and max(metrics.val_auc) > 0.5", "params.trees desc"
    ) == ["b", "a"]  # d's only AUC is 0.5


def test_a_key_is_read_by_one_join_not_a_subquery_per_run(runs) -> None:
    """Each key a filter or an order names is one LEFT JOIN on (run_id, key): a scalar
    subquery per key is planned as a SINGLE join, twice the time at 100k runs."""
    project, _ = runs
    joins = Joins()
    where, args = where_sql(
        "metrics.val_auc > 0.5 and max(metrics.val_auc) > 0.6 and params.model = 'lightgbm'",
        joins,
    )
    order, order_args = order_sql("params.model desc, metrics.val_auc", joins)
    assert len(joins.aliases) == 2  # val_auc and model, each joined once
    sql = f"SELECT r.name FROM runs r{joins.sql()} WHERE {where} ORDER BY {order}"
    with project.catalog.read() as con:
        plan = "".join(
            row[1]
            for row in con.execute("EXPLAIN " + sql, [*joins.args, *args, *order_args]).fetchall()
        )
        found = [n for (n,) in con.execute(sql, [*joins.args, *args, *order_args]).fetchall()]
    assert "SINGLE" not in plan
    assert found == ["a", "b"]  # the two lightgbm runs, by last AUC (0.85, 0.90)


@pytest.mark.parametrize(
    ("flt", "fragment"),
    [
        ("metrics.val_auc >", "ends too early"),
        ("foo = 1", "unknown name 'foo'"),
        ("val_auc > 0.8", "write metrics.val_auc, params.val_auc or tags.val_auc"),
        ("metrics.val_auc > 0.8 and", "ends too early"),
        ("(status = 'x'", "expected ')'"),
        ("status = 'x')", "expected 'and', 'or' or the end"),
        ("status 'x'", "comparison operator"),
        ("tags.x like 5", "quoted pattern"),
        ("weird.x = 1", "unknown prefix"),
        ("params.x@step=3 = 1", "only applies to metrics"),
        ("max(params.x) > 1", "takes metrics.KEY"),
        ("status = 'x'; DROP TABLE runs", "cannot read the filter"),
    ],
)
def test_syntax_errors_point_at_the_problem(runs, flt: str, fragment: str) -> None:
    project, _ = runs
    with pytest.raises(UsageError, match=re.escape(fragment)):
        project.runs.list(filter=flt)


HOSTILE = [
    "'; DROP TABLE runs; --",
    '" OR 1=1 --',
    "' OR '1'='1",
    "\\x00",
    "💥" * 50,
    "a" * 3000,
    "%' UNION SELECT * FROM audit --",
    "Robert'); DROP TABLE params;--",
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_are_data_not_sql(runs, text: str) -> None:
    project, _ = runs
    quoted = "'" + text.replace("'", "''") + "'"
    assert names(project, f"tags.note = {quoted}") == []
    assert names(project, f"params.model like {quoted}") == []
    assert len(names(project)) == 5  # nothing was dropped


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=80))
def test_any_text_is_a_filter_or_a_usage_error(runs, text: str) -> None:
    project, _ = runs
    try:
        where_sql(text, Joins())
    except UsageError as exc:
        assert "\n" not in str(exc)
        return
    try:
        project.runs.list(filter=text)
    except UsageError as exc:
        assert "\n" not in str(exc)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(["val_auc", "nope"]),
    st.sampled_from([">", "<", "=", "!=", ">=", "<="]),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
def test_generated_comparisons_match_python(runs, key: str, op: str, value: float) -> None:
    project, _ = runs
    got = set(names(project, f"metrics.{key} {op} {value!r}"))
    expected = set()
    import operator

    fn = {
        ">": operator.gt,
        "<": operator.lt,
        "=": operator.eq,
        "!=": operator.ne,
        ">=": operator.ge,
        "<=": operator.le,
    }[op]
    for r in project.runs.list():
        last = r["metrics"].get(key)
        if last is not None and fn(last, float(value)):
            expected.add(r["name"])
    assert got == expected


def test_a_listing_can_read_only_the_keys_it_shows(runs) -> None:  # type: ignore[no-untyped-def]
    project, _ = runs
    full = {r.id: r for r in project.runs.list(filter="params.model = 'lightgbm'")}
    some = project.runs.list(
        filter="params.model = 'lightgbm'", keys=["params.lr", "metrics.val_auc"]
    )
    assert [r.id for r in some] == list(full)
    for r in some:
        assert r.params == {"lr": full[r.id].params["lr"]}
        assert r.metrics == {"val_auc": full[r.id].metrics["val_auc"]}
    assert all(r.params == {} and r.metrics == {} for r in project.runs.list(keys=[]))
    # as a table's columns are written: singular, a key in backticks
    quoted = project.runs.list(
        filter="params.model = 'lightgbm'", keys=["param.lr", "metrics.`val_auc`"]
    )
    assert [(r.params, r.metrics) for r in quoted] == [(r.params, r.metrics) for r in some]


def test_several_runs_read_at_once_equal_each_read_alone(runs) -> None:  # type: ignore[no-untyped-def]
    from workbench.core.errors import NotFoundError

    project, ids = runs
    refs = [ids["b"], f"run:{ids['a'][:8]}", ids["f"], ids["d"]]  # whole ids and a prefix
    many = project.runs.get_many(refs)
    assert [r.to_dict() for r in many] == [project.runs.get(r).to_dict() for r in refs]
    curves = project.runs.histories(refs, "val_auc")
    assert [curves[r.id] for r in many] == [project.runs.history(r.id, "val_auc") for r in many]
    assert curves[ids["b"]] == [(100, 0.75), (200, 0.95), (300, 0.90)]
    with pytest.raises(NotFoundError, match="no run with an id starting with"):
        project.runs.get_many([ids["a"], "run:ffffffff"])

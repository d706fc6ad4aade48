import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.core.errors import UsageError
from workbench.core.store.refs import Ref, check_name, parse_ref


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("churn", Ref(name="churn")),
        ("churn@latest", Ref(name="churn")),
        ("churn@3", Ref(name="churn", version=3)),
        ("churn@sha:1A2b3c", Ref(name="churn", hash_prefix="1a2b3c")),
        ("churn-model@production", Ref(name="churn-model", alias="production")),
        ("churn-model@7", Ref(name="churn-model", version=7)),
        ("run:4F2a", Ref(run_id="4f2a")),
        ("  my.data_v2  ", Ref(name="my.data_v2")),
    ],
)
def test_parses_every_documented_form(text: str, expected: Ref) -> None:
    assert parse_ref(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty reference"),
        ("churn@0", "start at 1"),
        ("churn@sha:12", "4-64 hex"),
        ("churn@sha:xyz1", "4-64 hex"),
        ("run:zz", "hex digits"),
        ("-churn", "name must be"),
        ("churn@", "after @"),
        ("a@b@c", "after @"),
        ("x'; DROP TABLE datasets; --", "name must be"),
        ("churn@9999999999999", "no version number is that large"),
    ],
)
def test_bad_references_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        parse_ref(text)


names = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,40}\Z")


@given(names, st.integers(min_value=1, max_value=2**31 - 1))
@pytest.mark.slow  # several seconds: the full suite runs it, not the quick loop
def test_version_refs_round_trip(name: str, n: int) -> None:
    ref = parse_ref(f"{name}@{n}")
    assert (ref.name, ref.version) == (name, n)
    assert parse_ref(str(ref)) == ref


@given(names, st.from_regex(r"\A[0-9a-f]{4,64}\Z"))
def test_hash_refs_round_trip(name: str, prefix: str) -> None:
    ref = parse_ref(f"{name}@sha:{prefix}")
    assert ref.hash_prefix == prefix
    assert parse_ref(str(ref)) == ref


@given(st.text(max_size=200))
def test_any_text_parses_or_gives_one_line_usage_error(text: str) -> None:
    try:
        ref = parse_ref(text)
    except UsageError as exc:
        assert "\n" not in str(exc)
        assert len(str(exc)) < 300
    else:
        assert parse_ref(str(ref)) == ref


def test_check_name_refuses_unsafe_names() -> None:
    assert check_name("churn_2024.v1") == "churn_2024.v1"
    for bad in ["", "a b", "../etc", "x" * 129, "名前", "a;b"]:
        with pytest.raises(UsageError):
            check_name(bad, "dataset name")

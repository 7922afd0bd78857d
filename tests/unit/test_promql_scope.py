"""Scoping PromQL to one run (orchestrator.core.promql): every selector, nothing else, or a clear refusal."""

from __future__ import annotations

import promql_parser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.promql import RUN_LABEL, ScopeError, scope_to_run
from orchestrator.run.series import LIVE_HEAP_BY_REPLICA

RUN = "r-1a2b"
M = f'{RUN_LABEL}="{RUN}"'


@pytest.mark.parametrize(
    ("expr", "scoped"),
    [
        ("up", f"up{{{M}}}"),
        ('up{job="targets"} == 1', f'up{{{M},job="targets"}} == 1'),
        ("foo{}", f"foo{{{M}}}"),
        ('{__name__="up"}', f'{{{M},__name__="up"}}'),
        # aggregations with their label lists before or after: the lists are label names, not metrics
        (
            'min(max by (replica) (max_over_time(mapquake_replication_backlog{target="ring"}[45s])))',
            f'min(max by (replica) (max_over_time(mapquake_replication_backlog{{{M},target="ring"}}[45s])))',
        ),
        ("sum(rate(foo[5m])) by (job)", f"sum(rate(foo{{{M}}}[5m])) by (job)"),
        ("sum without(a)(foo)", f"sum without(a)(foo{{{M}}})"),
        ("quantile by (x) (0.9, foo)", f"quantile by (x) (0.9, foo{{{M}}})"),
        # vector matching: both sides, the label lists untouched, group_left with and without a list
        ("a * on(target) group_left(replica) b", f"a{{{M}}} * on(target) group_left(replica) b{{{M}}}"),
        ("a * ignoring(x) group_left b", f"a{{{M}}} * ignoring(x) group_left b{{{M}}}"),
        ("a > bool 3", f"a{{{M}}} > bool 3"),
        ("foo and bar or baz unless qux", f"foo{{{M}}} and bar{{{M}}} or baz{{{M}}} unless qux{{{M}}}"),
        # modifiers, subqueries, numbers and durations, strings that look like selectors
        ("foo offset 5m", f"foo{{{M}}} offset 5m"),
        ("foo @ 1609746000 + bar @ start()", f"foo{{{M}}} @ 1609746000 + bar{{{M}}} @ start()"),
        ("max_over_time(foo[1m:5s] offset 10s)", f"max_over_time(foo{{{M}}}[1m:5s] offset 10s)"),
        ('label_replace(up, "x", "$1", "i", "(.*):.*")', f'label_replace(up{{{M}}}, "x", "$1", "i", "(.*):.*")'),
        ('count_values("v", foo)', f'count_values("v", foo{{{M}}})'),
        (r'x{a=~"b\\.c|d", e!~"\"{"}', rf'x{{{M},a=~"b\\.c|d", e!~"\"{{"}}'),
        ("time() - max(timestamp(up))", f"time() - max(timestamp(up{{{M}}}))"),
        ("inf + foo", f"inf + foo{{{M}}}"),
        ("rate:sum:5m", f"rate:sum:5m{{{M}}}"),
        ("vector(1)", "vector(1)"),
        ("1 + 2", "1 + 2"),
        ("-foo", f"-foo{{{M}}}"),
        ("foo # a comment with {braces}\n + bar", f"foo{{{M}}} # a comment with {{braces}}\n + bar{{{M}}}"),
    ],
)  # fmt: skip
def test_every_selector_and_only_selectors_get_the_run_label(expr: str, scoped: str) -> None:
    assert scope_to_run(expr, RUN) == scoped


def test_the_run_s_own_queries_are_scoped() -> None:
    """What the run itself asks (lifecycle, series, progress) all scope."""
    for expr in (
        'count by (job, target, replica, worker) (last_over_time({job=~"targets|load"}[42s]))',
        'max(timestamp(up{job="targets"}))',
        f"sum by (target) ({LIVE_HEAP_BY_REPLICA})",
        'histogram_quantile(0.99, sum by (le) (rate(mapquake_client_request_seconds_bucket{job="load"}[5s])))',
    ):
        assert M in scope_to_run(expr, RUN)


@pytest.mark.parametrize(
    ("expr", "why"),
    [
        ("foo +", "not valid PromQL"),
        ("sum by (x)", "not valid PromQL"),
        ('bar{a="1" or b="2"}', "`or` between matchers"),
    ],
)
def test_what_cannot_be_scoped_is_refused_not_sent_unscoped(expr: str, why: str) -> None:
    with pytest.raises(ScopeError, match=why):
        scope_to_run(expr, RUN)


def test_a_run_id_that_would_need_quoting_is_refused() -> None:
    with pytest.raises(ScopeError, match="characters"):
        scope_to_run("up", 'a"b')


_METRICS = st.sampled_from(["up", "foo", "go_goroutines", "rate:x", "bar"])
_MATCHERS = st.sampled_from(["", 'job="targets"', 'a=~"x.*"', 'b!="1"'])


@st.composite
def _exprs(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 2 or draw(st.booleans()):
        name, matcher = draw(_METRICS), draw(_MATCHERS)
        selector = f"{name}{{{matcher}}}" if matcher or draw(st.booleans()) else name
        return f"rate({selector}[1m])" if draw(st.booleans()) else selector
    left, right = draw(_exprs(depth + 1)), draw(_exprs(depth + 1))
    shape = draw(st.sampled_from(["{l} + {r}", "sum by (job) ({l})", "{l} * on(job) group_left {r}", "max({l})"]))
    return shape.format(l=left, r=right)


@settings(max_examples=200, deadline=None)
@given(_exprs())
def test_scoping_keeps_the_expression_and_labels_every_selector(expr: str) -> None:
    scoped = scope_to_run(expr, RUN)
    selectors: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            selectors.append(node)

    promql_parser.walk(promql_parser.parse(scoped), visit)
    assert selectors
    assert all((RUN_LABEL, RUN) in [(m.name, str(m.value)) for m in s.matchers.matchers] for s in selectors)
    assert scope_to_run(expr, "other") != scoped

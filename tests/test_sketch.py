"""The quantile sketch: bounded relative error, exact merges and subtraction."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cxmon import sketch

values = st.lists(
    st.one_of(st.floats(0, 1e6, allow_nan=False), st.integers(0, 600).map(float)), min_size=1, max_size=400
)
QS = (0.0, 0.25, 0.5, 0.9, 0.99, 1.0)


def exact(vals: list[float], q: float) -> float:
    return sorted(vals)[int(q * (len(vals) - 1))]


@given(values)
@settings(max_examples=300)
def test_quantiles_within_relative_error(vals: list[float]) -> None:
    """Every quantile is within 1 % (relative) of the exact order statistic of the same rank."""
    bins: dict[int, int] = {}
    for v in vals:
        sketch.add(bins, v)
    for q, got in zip(QS, sketch.quantiles(bins, QS), strict=True):
        want = exact(vals, q)
        assert got is not None
        assert abs(got - want) <= sketch.ALPHA * want + sketch.MIN_VALUE, (q, got, want)


@given(values, values)
def test_subtracting_a_part_leaves_the_rest(a: list[float], b: list[float]) -> None:
    """Merging two sketches then subtracting one gives exactly the other (what window expiry relies on)."""
    sa: dict[int, int] = {}
    sb: dict[int, int] = {}
    for v in a:
        sketch.add(sa, v)
    for v in b:
        sketch.add(sb, v)
    both = dict(sa)
    sketch.merge_into(both, sb)
    sketch.merge_into(both, sa, -1)
    assert both == sb


def test_empty_sketch_has_no_quantiles() -> None:
    """An empty sketch answers None rather than a made-up number."""
    assert sketch.quantiles({}, (0.5, 0.9)) == [None, None]


def test_memory_is_bounded_by_range_not_count() -> None:
    """A million values spread over a day of waits use fewer than 1,000 bins."""
    bins: dict[int, int] = {}
    for i in range(1_000_000):
        sketch.add(bins, (i * 7919) % 86_400 + 0.5)
    assert len(bins) < 1000
    assert sum(bins.values()) == 1_000_000


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 40).map(float)), max_size=60))
@settings(max_examples=200)
def test_memo_gives_the_quantiles_of_the_bins_as_they_are(steps: list[tuple[bool, float]]) -> None:
    """A memo asked again and again about one sketch changed in place between the asks (values
    added and taken out again, as a window's running sums are) answers what working the quantiles
    out afresh answers, every time."""
    bins: dict[int, int] = {}
    kept: list[float] = []
    memo = sketch.Memo()
    for adding, value in steps:
        if adding or not kept:
            sketch.add(bins, value)
            kept.append(value)
        else:
            sketch.merge_into(bins, {sketch.bin_of(kept.pop(0)): 1}, -1)
        assert memo.quantiles(bins, QS) == sketch.quantiles(bins, QS)

"""Metric families written straight to Prometheus' text format, or handed to prometheus-client.

A :class:`Family` is built once from a snapshot; its samples either go to text as they are added
(the fast path a scrape serves) or are kept for :meth:`Family.to_metric` (the reference path).
"""

from __future__ import annotations

from typing import Any

from prometheus_client.core import Metric
from prometheus_client.utils import floatToGoString

from cxmon.snapshot import Histogram


def escape(value: str) -> str:
    """Escape a label value for the text format (backslash, newline, double quote)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


_SPECIAL = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}


class _Lines:
    """Where a family's samples go when writing text: lines, turned into bytes every few thousand.

    Only short-lived objects are made per sample, and no single join or encode is big: a render in
    a worker thread never holds the GIL for long, so the event loop keeps running.
    """

    __slots__ = ("buf", "chunks", "name")
    FLUSH = 4096

    def __init__(self, name: str, header: str) -> None:
        self.name = name
        self.chunks: list[bytes] = []
        self.buf: list[str] = [header]

    def append(self, sample: tuple[str, tuple[str, ...], str, float]) -> None:
        suffix, _values, text, value = sample
        v = repr(value)
        v = _SPECIAL.get(v, v)
        buf = self.buf
        buf.append(f"{self.name}{suffix}{{{text}}} {v}\n" if text else f"{self.name}{suffix} {v}\n")
        if len(buf) >= self.FLUSH:
            self.flush()

    def flush(self) -> None:
        if self.buf:
            self.chunks.append("".join(self.buf).encode())
            self.buf = []


class Family:
    """One metric family, built once from the snapshot and either kept or written as it is built.

    Samples are (name suffix, label values, label text, value); the label text is the rendered
    ``k="v",...`` so no label is formatted twice. With ``text`` they go straight to :class:`_Lines`;
    without, they are kept for :meth:`to_metric` (the prometheus-client Collector path).
    """

    __slots__ = ("help", "kind", "labelnames", "name", "samples")

    def __init__(
        self, text: bool, name: str, kind: str, help_: str, labelnames: tuple[str, ...] = ()
    ) -> None:
        self.name = name
        self.kind = kind
        self.help = help_
        self.labelnames = labelnames
        self.samples: Any
        if text:
            exposed = self.exposed_name
            escaped = help_.replace("\\", "\\\\").replace("\n", "\\n")
            self.samples = _Lines(exposed, f"# HELP {exposed} {escaped}\n# TYPE {exposed} {kind}\n")
        else:
            self.samples = []

    def add(self, values: tuple[str, ...], value: float, text: str | None = None, suffix: str = "") -> None:
        """Add one sample.

        Args:
            values: label values, in ``labelnames`` order.
            value: the sample's value.
            text: the rendered labels, when the caller has them already (else built from ``values``).
            suffix: appended to the name (``_bucket``, ``_count``, ``_sum``).
        """
        if text is None:
            text = ",".join(f'{k}="{escape(v)}"' for k, v in zip(self.labelnames, values, strict=True))
        self.samples.append((suffix, values, text, value))

    @property
    def exposed_name(self) -> str:
        """The name samples carry: counters end in ``_total``."""
        return self.name + "_total" if self.kind == "counter" else self.name

    def to_metric(self) -> Metric:
        """Return the prometheus-client form of this family (built without ``text``)."""
        metric = Metric(self.name, self.help, self.kind)
        names = self.labelnames
        bucket_names = (*names, "le")
        sample_name = self.exposed_name
        for suffix, values, _text, value in self.samples:
            keys = bucket_names if suffix == "_bucket" else names
            metric.add_sample(sample_name + suffix, dict(zip(keys, values, strict=True)), value)
        return metric

    def chunks(self) -> list[bytes]:
        """Return the text of this family (built with ``text``) as byte chunks."""
        lines: _Lines = self.samples
        lines.flush()
        return lines.chunks


_LE_CACHE: dict[tuple[float, ...], tuple[tuple[str, str], ...]] = {}


def _les(bounds: tuple[float, ...]) -> tuple[tuple[str, str], ...]:
    """Return (le value, ``,le="…"`` text) per bucket, +Inf last; cached per bounds tuple."""
    les = _LE_CACHE.get(bounds)
    if les is None:
        names = [str(floatToGoString(b)) for b in bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        les = _LE_CACHE[bounds] = tuple((n, f',le="{n}"') for n in names)
    return les


def add_histogram(fam: Family, values: tuple[str, ...], text: str, h: Histogram) -> None:
    """Add a histogram's cumulative ``le`` buckets, ``_count`` and ``_sum`` to ``fam``.

    Args:
        fam: a histogram family.
        values: the series' label values (``le`` is added).
        text: the series' rendered labels.
        h: per-bucket counts with the +Inf overflow last.
    """
    # Histogram.counts are per bucket with the +Inf overflow last; Prometheus buckets are cumulative.
    add = fam.samples.append
    les = _les(h.bounds)
    running = 0
    for (le, le_text), count in zip(les, h.counts, strict=False):
        running += count
        add(("_bucket", (*values, le), text + le_text, float(running)))
    add(("_count", values, text, float(running)))
    add(("_sum", values, text, float(h.total)))

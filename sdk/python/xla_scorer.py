"""Helpers for XLA Host scorers written in Python.

Plain Python with no import of the generated bindings, so it runs (and is
tested) with an ordinary ``python3`` too. A scorer turns what these raise
into the contract's ``plugin-error``: ``ParameterError`` into ``config``,
``BadDataError`` into ``bad-data`` (see ``examples/happiness/app.py``).

- ``parse_parameters`` reads a scorer's ``parameters`` JSON with defaults and
  the same messages as the Rust SDK's serde-based parsing (without serde's
  "at line 1 column N").
- ``Bands`` holds the HappySignals happiness formula: % of ratings 9-10
  minus % of ratings 0-6, from -100 to +100. It computes the same IEEE
  operations in the same order as ``plugins/happiness``, so both give the
  same bits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

__all__ = [
    "BadDataError",
    "Bands",
    "Field",
    "HistogramError",
    "ParameterError",
    "U64_MAX",
    "bands_of",
    "parse_parameters",
    "whose",
]

U64_MAX = 2**64 - 1
"""Largest value of a WIT ``u64`` (counts, sample sizes)."""

HISTOGRAM_SLOTS = 11
"""Counts in a 0-10 rating histogram: one per score 0..=10."""


class ParameterError(Exception):
    """The parameters are wrong; becomes ``plugin-error.config``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadDataError(Exception):
    """The input cannot be scored; becomes ``plugin-error.bad-data``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- parameters ------------------------------------------------------------

_EXPECTED = {"string": "a string", "u64": "u64", "f64": "f64", "bool": "a boolean"}

OBJECT_EXPECTED = "config: expected a JSON object"


@dataclass(frozen=True)
class Field:
    """One parameter: its kind (``string``, ``u64``, ``f64`` or ``bool``) and default."""

    kind: str
    default: Any

    def __post_init__(self) -> None:
        if self.kind not in _EXPECTED:
            raise ValueError(f"unknown field kind {self.kind!r}; use one of {sorted(_EXPECTED)}")


def parse_parameters(text: str, fields: Dict[str, Field], example: str = "") -> Dict[str, Any]:
    """Reads ``text`` (a JSON object) into a dict with every field of ``fields``.

    Blank text means every default. Unknown and duplicate fields, and values
    of the wrong kind, raise ``ParameterError`` naming the field, checked in
    the order they appear, as serde does. ``example`` (a JSON object) is
    quoted when ``text`` is not an object.
    """
    if not text.strip():
        return {name: field.default for name, field in fields.items()}
    try:
        pairs = json.loads(text, object_pairs_hook=_Pairs, parse_constant=_no_constant)
    except ValueError as error:
        raise ParameterError(f"config: {error}") from None
    if not isinstance(pairs, _Pairs):
        suffix = f", e.g. {example}" if example else ""
        raise ParameterError(OBJECT_EXPECTED + suffix)
    values: Dict[str, Any] = {}
    for name, value in pairs:
        field = fields.get(name)
        if field is None:
            raise ParameterError(f"config field `{name}`: unknown field `{name}`, expected {_one_of(list(fields))}")
        if name in values:
            raise ParameterError(f"config: duplicate field `{name}`")
        values[name] = _checked(name, field, value)
    return {name: values.get(name, field.default) for name, field in fields.items()}


def _no_constant(name: str) -> Any:
    # JSON has no NaN or Infinity; Python's parser would take them.
    raise ValueError(f"expected value, found `{name}`")


class _Pairs(list):
    """A JSON object as its (key, value) pairs in order, duplicates kept."""


def _one_of(names: List[str]) -> str:
    quoted = [f"`{name}`" for name in names]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} or {quoted[1]}"
    return "one of " + ", ".join(quoted)


def _checked(name: str, field: Field, value: Any) -> Any:
    def invalid(what: str) -> ParameterError:
        return ParameterError(f"config field `{name}`: {what}, expected {_EXPECTED[field.kind]}")

    if field.kind == "u64":
        if isinstance(value, int) and not isinstance(value, bool):
            if 0 <= value <= U64_MAX:
                return value
            raise invalid(f"invalid value: {_unexpected(value)}")
        raise invalid(f"invalid type: {_unexpected(value)}")
    ok = {
        "string": isinstance(value, str),
        "bool": isinstance(value, bool),
        "f64": isinstance(value, (int, float)) and not isinstance(value, bool),
    }[field.kind]
    if not ok:
        raise invalid(f"invalid type: {_unexpected(value)}")
    return float(value) if field.kind == "f64" else value


def _unexpected(value: Any) -> str:
    """How serde names a JSON value it did not expect."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value!r}`"
    if isinstance(value, str):
        return f"string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, _Pairs):
        return "map"
    return "sequence"


# --- happiness -------------------------------------------------------------


class HistogramError(Exception):
    """A histogram that is not 11 counts, or whose counts overflow a u64."""

    def __init__(self, slots: Optional[int]) -> None:
        super().__init__(f"{slots} counts" if slots is not None else "counts past 2^64")
        self.slots = slots
        """How many counts it has; ``None`` when it has 11 that overflow."""


@dataclass(frozen=True)
class Bands:
    """Responses per band of a 0-10 rating: negative 0-6, neutral 7-8, positive 9-10."""

    positive: int
    neutral: int
    negative: int

    @staticmethod
    def from_histogram(histogram: List[int]) -> "Bands":
        """Counts the bands of an 11-count histogram (scores 0..=10)."""
        if len(histogram) != HISTOGRAM_SLOTS:
            raise HistogramError(len(histogram))
        bands = Bands(
            positive=sum(histogram[9:]),
            neutral=sum(histogram[7:9]),
            negative=sum(histogram[:7]),
        )
        if bands.total > U64_MAX:
            raise HistogramError(None)
        return bands

    @property
    def total(self) -> int:
        """Number of responses."""
        return self.positive + self.neutral + self.negative

    def happiness(self) -> Optional[float]:
        """% of 9-10 minus % of 0-6, from -100 to +100; ``None`` without responses.

        Not rounded, and in the Rust scorer's order of operations.
        """
        if self.total == 0:
            return None
        return 100.0 * (float(self.positive) - float(self.negative)) / float(self.total)

    def share(self, count: int) -> Optional[float]:
        """``count`` as a percentage of all responses; ``None`` without responses."""
        if self.total == 0:
            return None
        return 100.0 * float(count) / float(self.total)

    def detail(self) -> str:
        """The band counts as compact JSON, as ``serde_json`` writes them."""
        counts = {"positive": self.positive, "neutral": self.neutral, "negative": self.negative}
        return json.dumps(counts, separators=(",", ":"))


def whose(metric: str, group: Optional[str]) -> str:
    """Names an aggregate in messages: its metric and group."""
    if group is None:
        return f"aggregate of `{metric}` for the whole window"
    return f"aggregate of `{metric}` for group `{group}`"


def bands_of(metric: str, group: Optional[str], histogram: Optional[List[int]]) -> Bands:
    """The bands of an aggregate, or ``BadDataError`` naming its metric and group."""
    if histogram is None:
        raise BadDataError(
            f"{whose(metric, group)} has no histogram; happiness needs the 11 counts (scores 0-10) "
            "of a 0-10 rating metric"
        )
    try:
        return Bands.from_histogram(histogram)
    except HistogramError as error:
        if error.slots is None:
            raise BadDataError(f"{whose(metric, group)} has histogram counts that add up past 2^64") from None
        raise BadDataError(
            f"{whose(metric, group)} has a histogram of {error.slots} counts; expected 11 (scores 0-10)"
        ) from None


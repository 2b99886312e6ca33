"""The statistics of ``explain``: which field values' shares differ between two sets of records.

Pure functions over counts, so the property tests can run them on thousands of generated sets
without a store.

- A categorical value is tested with the **G-test** (log-likelihood ratio) on its 2×2 table
  (focus / baseline × has the value / has not), with **Williams' correction** (which keeps the
  test from being too eager on small counts). Under no difference G follows χ² with one degree
  of freedom, so ``p = erfc(sqrt(G / 2))``.
- A number field is tested with the **Mann–Whitney U** test (normal approximation, ties
  corrected) on the two sets' values: a shift of its distribution, whatever its shape.
- Many values are tested at once, so a value is **significant** only when ``p < alpha / m``
  (Bonferroni, ``m`` the number of tests made): across all of them the chance of naming any value
  when the two sets come from the same distribution stays under ``alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["DEFAULT_ALPHA", "MIN_TESTED", "Categorical", "Numeric", "g_test", "mann_whitney", "quantile"]

#: the family-wise error rate the Bonferroni threshold keeps
DEFAULT_ALPHA = 0.01
#: a value seen fewer times than this in both sets together is not tested (nothing to say)
MIN_TESTED = 5


def _xlogy(x: float, y: float) -> float:
    return x * math.log(x / y) if x > 0 else 0.0


def g_test(a: int, focus: int, b: int, baseline: int) -> tuple[float, float]:
    """(G with Williams' correction, p) for ``a`` of ``focus`` against ``b`` of ``baseline``."""
    n = focus + baseline
    v = a + b
    if focus <= 0 or baseline <= 0 or v <= 0 or v >= n:
        return 0.0, 1.0
    cells = ((a, focus * v / n), (focus - a, focus * (n - v) / n),
             (b, baseline * v / n), (baseline - b, baseline * (n - v) / n))
    g = 2.0 * sum(_xlogy(o, e) for o, e in cells)
    q = 1.0 + (n / focus + n / baseline - 1.0) * (n / v + n / (n - v) - 1.0) / (6.0 * n)
    g = max(0.0, g / q)
    return g, math.erfc(math.sqrt(g / 2.0))


def mann_whitney(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """(z, two-sided p) of the Mann–Whitney U test; z > 0 when ``x`` tends to be larger."""
    n1, n2 = len(x), len(y)
    if n1 < 2 or n2 < 2:
        return 0.0, 1.0
    tagged = sorted([(v, 0) for v in x] + [(v, 1) for v in y])
    rank_sum = 0.0
    ties = 0.0
    i = 0
    while i < len(tagged):
        j = i
        while j + 1 < len(tagged) and tagged[j + 1][0] == tagged[i][0]:
            j += 1
        rank = (i + j) / 2.0 + 1.0
        size = j - i + 1
        ties += size**3 - size
        rank_sum += rank * sum(1 for k in range(i, j + 1) if tagged[k][1] == 0)
        i = j + 1
    u = rank_sum - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    if var <= 0:
        return 0.0, 1.0
    z = (u - n1 * n2 / 2.0) / math.sqrt(var)
    return z, math.erfc(abs(z) / math.sqrt(2.0))


def quantile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated quantile of sorted ``values`` (as the engine's ``quantileExact``-ish)."""
    if not values:
        return None
    pos = (len(values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


@dataclass
class Categorical:
    """One field value's counts in both sets and its test."""

    field: str
    value: object
    focus_count: int
    focus_total: int
    baseline_count: int
    baseline_total: int
    exact: bool = True  # counted over the whole sets, not a sample
    g: float = 0.0
    p: float = 1.0

    def test(self) -> None:
        self.g, self.p = g_test(self.focus_count, self.focus_total, self.baseline_count, self.baseline_total)

    @property
    def tested(self) -> bool:
        return self.focus_count + self.baseline_count >= MIN_TESTED and self.focus_total > 0 \
            and self.baseline_total > 0

    @property
    def focus_share(self) -> float:
        return self.focus_count / self.focus_total if self.focus_total else 0.0

    @property
    def baseline_share(self) -> float:
        return self.baseline_count / self.baseline_total if self.baseline_total else 0.0

    @property
    def lift(self) -> float | None:
        """focus share / baseline share (None when the baseline never had it)."""
        return self.focus_share / self.baseline_share if self.baseline_share else None


@dataclass
class Numeric:
    """A number field's values in both sets (sorted samples) and its test."""

    field: str
    focus: list[float]
    baseline: list[float]
    exact: bool = True
    z: float = 0.0
    p: float = 1.0

    def test(self) -> None:
        self.z, self.p = mann_whitney(self.focus, self.baseline)

    @property
    def tested(self) -> bool:
        return len(self.focus) >= MIN_TESTED and len(self.baseline) >= MIN_TESTED

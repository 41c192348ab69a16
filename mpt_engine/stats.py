"""Statistics over seeds: mean ± standard deviation, two-tailed t-tests and relative gains."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Summary:
    mean: float
    std: float | None  # sample standard deviation (n - 1); None for a single value
    n: int


def summarize(values: Sequence[float]) -> Summary:
    std = statistics.stdev(values) if len(values) > 1 else None
    return Summary(statistics.fmean(values), std, len(values))


class TTest(StrEnum):
    """Two-tailed t-tests: over seeds (Welch's, or paired by seed), or Student's across the
    column means of two table rows (15 languages and the average), the test that reproduces the
    p-values of the paper's Table II from its own numbers."""

    WELCH = "welch"
    PAIRED = "paired"
    COLUMNS = "columns"


def t_test(first: Sequence[float], second: Sequence[float], test: TTest = TTest.WELCH):
    """The p-value (float) of `test` between two samples, paired ones in matching order; None
    when either has fewer than two values or both are constant and equal."""
    import warnings

    from scipy import stats

    if len(first) < 2 or len(second) < 2:
        return None
    with warnings.catch_warnings():  # identical samples: scipy warns and returns nan
        warnings.simplefilter("ignore", RuntimeWarning)
        if test is TTest.PAIRED:
            if len({b - a for a, b in zip(first, second, strict=True)}) == 1:
                return None  # the same difference on every seed: no variance, no test
            result = stats.ttest_rel(first, second)
        else:
            result = stats.ttest_ind(first, second, equal_var=test is TTest.COLUMNS)
    p_value = float(result.pvalue)
    return None if math.isnan(p_value) else p_value


def relative_gain(new: float, old: float) -> float:
    """(new - old) / old, in percent: Figure 3's "accuracy gain relative to SP"."""
    return 100.0 * (new - old) / old

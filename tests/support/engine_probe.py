"""Whether the engine isolates a bad timestamp in one series under errors="coerce" (issue 18, engine half).

Adapter tests of that isolation (CLI, Airflow) are marked ``xfail(strict=True)`` while it does not:
once the engine does, they must pass.
"""

from __future__ import annotations

import numpy as np

import ad_pipeline as ad


def engine_isolates(bad: np.datetime64) -> bool:
    """True when a batch of two series, the second holding ``bad``, gives that series its own error."""
    ts = np.arange(48).astype("datetime64[h]").astype("datetime64[us]")
    ts[30] = bad
    try:
        ad.detect_entire_batch(np.arange(48.0), [0, 24, 48], ts, errors="coerce")
    except ValueError:
        return False
    return True


MISSING = np.datetime64("NaT")
PAST_2262 = np.datetime64("2500-01-01T00:00", "us")

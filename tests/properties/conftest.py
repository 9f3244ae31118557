"""Hypothesis settings profiles of the property suites.

``pleo-export-ci`` (the default here) is reproducible: derandomized, no example database, a
fixed number of examples, no deadline (an example is a whole export job through the engine).
Set ``PLEO_EXPORT_HYPOTHESIS_PROFILE=pleo-export-explore`` to search with fresh randomness and
many more examples on a developer machine; failures found that way are replayed from
Hypothesis' local database.

The profiles are applied to the suites' tests explicitly (``@settings(parent=PROFILE)``), not
loaded globally, so they never change the settings of other tests.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

CI_PROFILE = "pleo-export-ci"
EXPLORE_PROFILE = "pleo-export-explore"

_SLOW_BY_DESIGN = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    CI_PROFILE,
    max_examples=50,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SLOW_BY_DESIGN,
)
settings.register_profile(
    EXPLORE_PROFILE,
    max_examples=400,
    derandomize=False,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SLOW_BY_DESIGN,
)

PROFILE = settings.get_profile(os.environ.get("PLEO_EXPORT_HYPOTHESIS_PROFILE", CI_PROFILE))
"""The profile the property tests run with."""

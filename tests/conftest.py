"""Hypothesis profiles: `ci` (derandomised, so a run is reproducible and a planted bug that one
seed misses is missed every run, visibly) and `dev` (random, the local default).

`make test` and `make test-unit` select `ci`, and so does any environment with CI set
(`make mutation` selects `mutation`: `ci` without shrinking);
HYPOTHESIS_PROFILE overrides both. A test's own @settings (max_examples) still applies, and
the derandomised run keeps it: the examples it draws are the same every run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

settings.register_profile(
    "ci",
    derandomize=True,  # a fixed seed per test: the same examples every run
    max_examples=200,
    deadline=None,  # a shared 2-core machine: timing is not a property under test
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(  # `make mutation`: a mutant is killed by the first failure, unshrunk
    "mutation", settings.get_profile("ci"), phases=[Phase.explicit, Phase.reuse, Phase.generate])


def _profile() -> str:
    chosen = os.environ.get("HYPOTHESIS_PROFILE")
    if chosen:
        return chosen
    return "ci" if os.environ.get("CI") else "dev"


settings.load_profile(_profile())

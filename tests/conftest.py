"""Suite-wide pytest hooks."""

from __future__ import annotations

import pytest

# Tests on one shared resource run one after another under pytest-xdist (`--dist
# loadgroup`): the shared PostgreSQL database, and Ray (one local cluster at a time fits
# the machine's memory; and a test cluster made by ray.cluster_utils is written down as
# the machine's "current" cluster, which a concurrent ray.init() without an address joins,
# and loses, with a KeyboardInterrupt, when that test shuts it down).
# A module whose tests share one costly fixture groups itself (`pytestmark`, as
# tests/integrity/test_adversarial.py) and makes the fixture session-scoped.
_GROUPS = {"postgres": "postgres", "test_ray": "ray", "[ray]": "ray", "ray_cluster": "ray",
           "::testrayexecutor::": "ray"}


# Tests that take the whole machine while they run: the fork bomb where nothing caps its
# processes (spawn isolation as root) starves whatever runs beside it (a 10 s probe of a
# fake perf script timed out in a run beside it, most likely for that reason). `make test`
# runs them after the parallel part.
_ALONE = ("testspawnexecutor::test_fork_bomb_is_contained",)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real Chromium (run apart under xdist)")
    config.addinivalue_line("markers", "alone: takes the whole machine (run apart under xdist)")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark and group tests, and run the browser tests last.

    pytest-playwright's sync API keeps an event loop running in the main thread from the
    first browser test to the end of the session; any later test that calls
    ``asyncio.run`` would then fail, so the browser tests go after everything else (and
    ``make test`` runs them in a pytest of their own, after the parallel part).
    """
    browser = [item for item in items if "page" in getattr(item, "fixturenames", ())]
    for item in browser:
        item.add_marker(pytest.mark.browser)
    for item in items:
        name = item.nodeid.lower()
        if any(key in name for key in _ALONE):
            item.add_marker(pytest.mark.alone)
        for key, group in _GROUPS.items():
            if key in name:
                item.add_marker(pytest.mark.xdist_group(group))
                break
    if browser:
        items[:] = [item for item in items if item not in browser] + browser

"""Suite-wide pytest hooks."""

from __future__ import annotations

import pytest

# Tests on one shared resource run one after another under pytest-xdist (`--dist
# loadgroup`): the shared PostgreSQL database, and Ray (one local cluster at a time fits
# the machine's memory; and a test cluster made by ray.cluster_utils is written down as
# the machine's "current" cluster, which a concurrent ray.init() without an address joins,
# and loses, with a KeyboardInterrupt, when that test shuts it down).
# Tests that share one costly fixture (a model loaded, every adversarial program evaluated)
# run on one worker too, and the fixture is session-scoped there: a module-scoped one was
# built once per worker that got some of the tests, and again when other modules' tests
# ran in between (20-30 s each time).
_GROUPS = {"postgres": "postgres", "test_ray": "ray", "[ray]": "ray", "ray_cluster": "ray",
           "::testrayexecutor::": "ray", "integrity/test_adversarial.py": "adversarial",
           "test_local_model.py::test_real_model": "local_model",
           "test_tts_allocation.py::test_readme_table": "tts_scores",
           "test_tts_allocation.py::test_baseline_ordering": "tts_scores",
           "test_tts_allocation.py::test_spread_knob": "tts_scores"}


# Tests that take the whole machine while they run: the fork bomb where nothing caps its
# processes (spawn isolation as root) starves whatever runs beside it (a 10 s probe of a
# fake perf script timed out next to it). `make test` runs them after the parallel part.
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

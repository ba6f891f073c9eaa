"""Suite-wide pytest hooks."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the browser tests last.

    pytest-playwright's sync API keeps an event loop running in the main thread from the
    first browser test to the end of the session; any later test that calls
    ``asyncio.run`` would then fail, so the browser tests go after everything else.
    """
    browser = [item for item in items if "page" in getattr(item, "fixturenames", ())]
    if browser:
        items[:] = [item for item in items if item not in browser] + browser

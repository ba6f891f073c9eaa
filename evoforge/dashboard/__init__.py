"""``evoforge dashboard``: a live, read-only web view of the runs in a storage.

Needs the ``dashboard`` extra (``pip install 'evoforge[dashboard]'``); the web
stack is imported only when the dashboard starts.
"""

from __future__ import annotations

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> object:
    # lazy: importing evoforge.dashboard must not need FastAPI
    if name in __all__:
        from evoforge.dashboard import app

        return getattr(app, name)
    raise AttributeError(name)

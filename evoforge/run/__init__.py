"""The search loop and the services that start, resume and summarize runs."""

from evoforge.run.controller import Events, Evolution, Progress, RunError, RunResult
from evoforge.run.service import create_run, execute

__all__ = ["Events", "Evolution", "Progress", "RunError", "RunResult", "create_run", "execute"]

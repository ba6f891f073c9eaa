"""Storage of runs and candidates (SQLite by default, PostgreSQL through a URL)."""

from evoforge.storage.base import RunRecord, Storage, StorageError, StoredProposal, SyncBatch
from evoforge.storage.sql import DEFAULT_URL, SQLStorage, open_storage

__all__ = ["DEFAULT_URL", "RunRecord", "SQLStorage", "Storage", "StorageError", "StoredProposal",
           "SyncBatch", "open_storage"]

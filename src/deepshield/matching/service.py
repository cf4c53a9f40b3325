"""The matching services in one namespace: what the CLI, the HTTP routes and the cases domain call.

The code lives in `banks.py` (banks and entries), `lookup.py` (lookup and index status), `transfer.py`
(bank files) and `hashing.py`; this module only gathers them, so `from deepshield.matching import service
as svc` stays the one import other domains need. Every function takes the caller's SQLAlchemy session (or
any `MatchStore`) and never commits.
"""

from __future__ import annotations

from deepshield.matching.banks import (
    add_file,
    add_hash,
    add_signals,
    create_bank,
    delete_bank,
    get_bank,
    get_entry,
    list_banks,
    list_entries,
    remove_case,
    remove_entry,
    set_entry_disabled_until,
    update_bank,
)
from deepshield.matching.hashing import hash_file, hash_media, lookup_values
from deepshield.matching.lookup import index_status, lookup_file, lookup_media, lookup_signal
from deepshield.matching.signals.base import REVIEW_MARGIN
from deepshield.matching.storage import MatchStore, MemoryMatchStore, SqlMatchStore, StoreLike
from deepshield.matching.transfer import EXPORT_FORMAT, EXPORT_VERSION, export_bank, import_bank
from deepshield.matching.types import (
    BANK_NAME_RE,
    BYPASS_COINFLIP,
    MAX_THRESHOLD,
    BankExists,
    BankInfo,
    BankNotFound,
    EntryInfo,
    EntryMeta,
    EntryMetadata,
    EntryNotFound,
    FileLookup,
    InvalidBank,
    Match,
)

__all__ = [
    "BANK_NAME_RE",
    "BYPASS_COINFLIP",
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "MAX_THRESHOLD",
    "REVIEW_MARGIN",
    "BankExists",
    "BankInfo",
    "BankNotFound",
    "EntryInfo",
    "EntryMeta",
    "EntryMetadata",
    "EntryNotFound",
    "FileLookup",
    "InvalidBank",
    "Match",
    "MatchStore",
    "MemoryMatchStore",
    "SqlMatchStore",
    "StoreLike",
    "add_file",
    "add_hash",
    "add_signals",
    "create_bank",
    "delete_bank",
    "export_bank",
    "get_bank",
    "get_entry",
    "hash_file",
    "hash_media",
    "import_bank",
    "index_status",
    "list_banks",
    "list_entries",
    "lookup_file",
    "lookup_media",
    "lookup_signal",
    "lookup_values",
    "remove_case",
    "remove_entry",
    "set_entry_disabled_until",
    "update_bank",
]

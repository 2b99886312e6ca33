"""The server's write-ahead log (see :mod:`logharbor.server.wal.log`), its framing, quarantine and tools."""

from logharbor.server.wal.catalog import WalEntry, WalPosition
from logharbor.server.wal.log import WalFull, WalNoSpace, WalRead, WriteAheadLog
from logharbor.server.wal.segments import WalLocked

__all__ = ["WalEntry", "WalFull", "WalLocked", "WalNoSpace", "WalPosition", "WalRead", "WriteAheadLog"]

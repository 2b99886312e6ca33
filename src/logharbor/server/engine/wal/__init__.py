"""The server's write-ahead log (see :mod:`logharbor.server.engine.wal.log`): framing, quarantine, tools."""

from logharbor.server.engine.wal.catalog import WalEntry, WalPosition
from logharbor.server.engine.wal.log import WalFull, WalNoSpace, WalRead, WriteAheadLog
from logharbor.server.engine.wal.segments import WalLocked, WalSealed

__all__ = ["WalEntry", "WalFull", "WalLocked", "WalNoSpace", "WalPosition", "WalRead", "WalSealed",
           "WriteAheadLog"]

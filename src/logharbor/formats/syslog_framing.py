"""Framing of syslog over a byte stream (RFC 6587), shared by the server's listener and the agent's
``syslog`` source.

A TCP or TLS stream carries messages either with octet counting (``LEN SP MSG``, §3.4.1, what
rsyslog sends with ``TCP_Framing="octet-counted"``) or ended by LF (§3.4.2, the default of most
senders; a NUL ends a message too, as Python's ``SysLogHandler`` sends). The framing is told apart
per message, as rsyslog's own ``imtcp`` does. A message longer than ``max_bytes`` is cut there and
flagged truncated; the rest of it is skipped (up to its length, or to its LF or NUL), never taken
for the next message. A peer that closes mid-message leaves that message marked truncated.
"""

from __future__ import annotations

__all__ = ["SyslogFramer"]


def _end_of_message(buf: bytes, pos: int) -> int:
    """Where the LF- or NUL-ended message at ``pos`` ends, or -1."""
    nl = buf.find(b"\n", pos)
    nul = buf.find(b"\x00", pos, nl if nl >= 0 else len(buf))
    return nul if nul >= 0 else nl


class SyslogFramer:
    """Splits a TCP stream into syslog messages (octet counting or LF, told apart per message)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.buf = b""
        self.skip = 0  # bytes of an over-long message still to throw away
        self.skip_to_newline = False

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        """Complete messages in ``data`` (plus what was buffered), each with a truncated flag."""
        buf = self.buf + data if self.buf else data
        out: list[tuple[bytes, bool]] = []
        pos, n = 0, len(buf)
        while pos < n:
            if self.skip:
                take = min(self.skip, n - pos)
                self.skip -= take
                pos += take
                continue
            if self.skip_to_newline:  # up to the end of the over-long message: LF, or NUL
                nl = _end_of_message(buf, pos)
                if nl < 0:
                    pos = n
                    break
                self.skip_to_newline = False
                pos = nl + 1
                continue
            while pos < n and buf[pos] in b"\r\n\x00 ":
                pos += 1
            if pos >= n:
                break
            if 0x30 <= buf[pos] <= 0x39:  # a digit: octet counting
                sp = buf.find(b" ", pos, pos + 11)
                if sp < 0:
                    if n - pos >= 11:  # not a length after all: take it as an LF-framed line
                        pos = self._lf(buf, pos, out)
                        continue
                    break
                length_text = buf[pos:sp]
                if not length_text.isdigit():
                    pos = self._lf(buf, pos, out)
                    continue
                length = int(length_text)
                start = sp + 1
                if length > self.max_bytes:
                    if n - start < self.max_bytes:
                        break
                    out.append((buf[start:start + self.max_bytes], True))
                    self.skip = length - self.max_bytes
                    pos = start + self.max_bytes
                    continue
                if n - start < length:
                    break
                out.append((buf[start:start + length], False))
                pos = start + length
            else:
                new_pos = self._lf(buf, pos, out)
                if new_pos == pos:
                    break
                pos = new_pos
        self.buf = buf[pos:]
        return out

    def _lf(self, buf: bytes, pos: int, out: list[tuple[bytes, bool]]) -> int:
        end = pos + self.max_bytes + 1
        nl = buf.find(b"\n", pos, end)
        nul = buf.find(b"\x00", pos, nl if nl >= 0 else end)  # Python's SysLogHandler ends with NUL
        if nul >= 0:
            nl = nul
        if nl >= 0:
            out.append((buf[pos:nl].rstrip(b"\r"), False))
            return nl + 1
        if len(buf) - pos > self.max_bytes:
            out.append((buf[pos:pos + self.max_bytes], True))
            self.skip_to_newline = True
            return pos + self.max_bytes
        return pos  # incomplete: wait for more

    def close(self) -> list[tuple[bytes, bool]]:
        """What is left when the peer closes: a last line without its LF, or an octet-counted
        message cut short (its bytes, marked truncated: never its length prefix as text)."""
        rest = self.buf.strip(b"\r\n\x00 ")
        self.buf = b""
        if not rest or self.skip or self.skip_to_newline:
            return []
        length, sp, body = rest.partition(b" ")
        if sp and length.isdigit() and len(length) <= 10 and int(length) > len(body):
            return [(body[: self.max_bytes], True)] if body else []
        return [(rest[: self.max_bytes], len(rest) > self.max_bytes)]

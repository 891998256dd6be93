"""Stream the items of a JSON array without loading the whole document.

NVD and KEV feeds are one object with a large `vulnerabilities` array; the standard library has
no streaming parser (and ijson is not a dependency), so this reader keeps a window of text and
decodes one array item at a time with `json.JSONDecoder.raw_decode`. Memory is bounded by the
largest single item plus one read chunk.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

CHUNK = 1 << 20
_WS = " \t\r\n"


class JsonStreamError(ValueError):
    """Malformed JSON; `index` is the array item being read (or -1 outside the array)."""

    def __init__(self, message: str, index: int = -1) -> None:
        super().__init__(message)
        self.index = index


class JsonStream:
    def __init__(self, stream: TextIO, chunk: int = CHUNK) -> None:
        self._stream = stream
        self._chunk = chunk
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._consumed = 0  # characters dropped from the front of the buffer
        self._decoder = json.JSONDecoder()
        self.header: dict[str, Any] = {}

    @property
    def offset(self) -> int:
        return self._consumed + self._pos

    def _fill(self) -> bool:
        if self._eof:
            return False
        data = self._stream.read(self._chunk)
        if not data:
            self._eof = True
            return False
        if self._pos > self._chunk:
            self._consumed += self._pos
            self._buf = self._buf[self._pos :]
            self._pos = 0
        self._buf += data
        return True

    def _peek(self) -> str:
        while True:
            while self._pos < len(self._buf) and self._buf[self._pos] in _WS:
                self._pos += 1
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._fill():
                return ""

    def _expect(self, ch: str, index: int) -> None:
        got = self._peek()
        if got != ch:
            raise JsonStreamError(
                f"expected {ch!r} at offset {self.offset}, found {got or 'end of file'!r}", index
            )
        self._pos += 1

    def _value(self, index: int) -> Any:
        if not self._peek():
            raise JsonStreamError("unexpected end of file", index)
        while True:
            try:
                obj, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                if self._fill():
                    continue
                raise JsonStreamError(
                    f"{exc.msg} at offset {self._consumed + exc.pos}", index
                ) from None
            if end == len(self._buf) and self._fill():
                continue  # a number or literal may continue in the next chunk
            self._pos = end
            return obj

    def _array(self) -> Iterator[tuple[int, Any]]:
        self._expect("[", -1)
        if self._peek() == "]":
            self._pos += 1
            return
        index = 0
        while True:
            yield index, self._value(index)
            c = self._peek()
            self._pos += 1
            if c == "]":
                return
            if not c:
                raise JsonStreamError("unexpected end of file inside the array", index)
            if c != ",":
                raise JsonStreamError(
                    f"expected ',' or ']' after item at offset {self.offset - 1}", index
                )
            index += 1

    def items(self, key: str | None) -> Iterator[tuple[int, Any]]:
        """Yield (index, item) of the top-level array, or of `key` in the top-level object."""
        first = self._peek()
        if first == "[":
            yield from self._array()
            self._end()
            return
        if first != "{":
            raise JsonStreamError("expected a JSON object or array at the start")
        self._pos += 1
        seen = False
        if self._peek() == "}":
            self._pos += 1
        else:
            while True:
                k = self._value(-1)
                if not isinstance(k, str):
                    raise JsonStreamError(f"object key expected at offset {self.offset}")
                self._expect(":", -1)
                if key is not None and k == key and not seen:
                    seen = True
                    yield from self._array()
                else:
                    self.header[k] = self._value(-1)
                c = self._peek()
                self._pos += 1
                if c == "}":
                    break
                if c != ",":
                    raise JsonStreamError(f"expected ',' or '}}' at offset {self.offset - 1}")
        self._end()
        if key is not None and not seen:
            raise JsonStreamError(f"no {key!r} array in the document")

    def peek(self) -> str:
        """The next non-blank character ('' at end of file)."""
        return self._peek()

    def lines(self) -> Iterator[str]:
        """The unconsumed text as lines, streamed (for CSV after sniffing the first character)."""
        pending = self._buf[self._pos :]
        self._buf, self._pos = "", 0
        carry = ""
        for line in pending.splitlines(keepends=True):
            if line.endswith(("\n", "\r")):
                yield line
            else:
                carry = line
        for line in self._stream:
            if carry:
                line, carry = carry + line, ""
            yield line
        if carry:
            yield carry

    def rest(self) -> str:
        """Everything not yet consumed (for documents known to be small)."""
        out = self._buf[self._pos :] + self._stream.read()
        self._buf, self._pos, self._eof = "", 0, True
        return out

    def _end(self) -> None:
        if self._peek():
            raise JsonStreamError(f"trailing data at offset {self.offset}")

"""Standard output and error that outlive their reader: ``shareferry copy ... | head -1``.

When the reader of a pipe goes away, a write fails with ``BrokenPipeError``. Raised inside a
running job (a ``DRYRUN:`` line, a JSON ``Progress`` line), it would abort the job half-way and
end in a traceback. :func:`guarded_streams` wraps ``sys.stdout`` and ``sys.stderr`` for the
command's lifetime: from the first failed write on, that stream is pointed at ``/dev/null`` and
everything later written to it is dropped without a word. The command itself goes on: a
transfer finishes every file it started (none is left half-written because nobody reads its
output any more) and the command exits with the status it would have had, 0 when all went well.
The convention is the same for every command (``copy``, ``sync``, ``jobs list``, dry runs).

Text that cannot be encoded for the stream (a surrogate from a local name that is not UTF-8, a
terminal in another encoding) is written with backslash escapes rather than raising.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO, cast


class ReaderSafeStream(io.TextIOBase):
    """A text stream over ``inner`` whose writes never raise because the reader left."""

    def __init__(self, inner: TextIO) -> None:
        super().__init__()
        self.inner = inner
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            with self._guard():
                self.inner.write(text)
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            with self._guard():
                self.inner.flush()

    def isatty(self) -> bool:
        return not self.reader_gone and self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.inner.encoding

    def close(self) -> None:  # the process's stream stays open for the interpreter to flush
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except BrokenPipeError:
            self._reader_left()
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.EINVAL):  # EINVAL: a closed pipe on some systems
                raise
            self._reader_left()

    def _reader_left(self) -> None:
        """Drop this and every later write: point the descriptor at /dev/null, so that what is
        still buffered (and the interpreter's last flush) goes nowhere instead of failing."""
        self.reader_gone = True
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, self.inner.fileno())
            finally:
                os.close(null)


@contextlib.contextmanager
def guarded_streams() -> Iterator[tuple[ReaderSafeStream, ReaderSafeStream]]:
    """``sys.stdout`` and ``sys.stderr`` replaced by :class:`ReaderSafeStream` wrappers (with
    backslash escapes for what their encoding cannot hold) until the block ends."""
    saved = sys.stdout, sys.stderr
    with contextlib.ExitStack() as stack:
        guarded = []
        for stream in saved:
            if stream is None:  # started with the descriptor closed (>&-): as if nobody reads
                stream = stack.enter_context(open(os.devnull, "w", encoding="utf-8"))
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(errors="backslashreplace")
            guarded.append(ReaderSafeStream(stream))
        out, err = guarded
        sys.stdout, sys.stderr = cast(TextIO, out), cast(TextIO, err)
        try:
            yield out, err
        finally:
            sys.stdout, sys.stderr = saved

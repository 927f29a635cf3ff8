"""HTTP/1.1 framing rules the response codec applies to a parsed head (RFC 9112).

llhttp parses and validates the bytes; these decide what the validated fields
mean for the message: which body length applies (§6.3, PARSE-01..03), whether
the connection persists (§9.3), and the length caps on lines and blocks.
"""

from __future__ import annotations

from multidict import CIMultiDict

from .exceptions import InvalidHeader, LineTooLong, TransferEncodingError


def check_len(length: int, limit: int, what: str) -> None:
    """Raise LineTooLong when ``length`` passes ``limit``."""
    if length > limit:
        raise LineTooLong(f"{what} longer than {limit} bytes")


def body_headers(headers: CIMultiDict[str]) -> tuple[int | None, bool]:
    """Validate Content-Length / Transfer-Encoding (PARSE-01..03)."""
    lengths = headers.getall("Content-Length", None)
    codings = headers.getall("Transfer-Encoding", None)
    length = None
    if lengths is not None:
        first = lengths[0]
        # Never bare int(): it accepts "+5", "1_0", " 5" and non-ASCII digits.
        if not (len(first) <= 18 and first.isascii() and first.isdigit()):
            raise InvalidHeader(f"invalid Content-Length: {first[:40]!r}")
        if len(lengths) > 1 and any(value != first for value in lengths):
            raise InvalidHeader("conflicting Content-Length values")
        length = int(first)
    if codings is None:
        return length, False
    if lengths is not None:
        raise InvalidHeader("both Content-Length and Transfer-Encoding (RFC 9112 §6.3)")
    if len(codings) != 1 or codings[0].lower() != "chunked":
        raise TransferEncodingError(f"unsupported Transfer-Encoding: {codings!r}"[:120])
    return None, True


def connection_persists(values: list[str], http11: bool) -> bool:
    """RFC 9112 §9.3 for the Connection field's ``values``: 1.1 persists unless
    "close"; 1.0 only with "keep-alive"."""
    if len(values) == 1:  # the common case: a single token
        token = values[0].lower()
        if token == "keep-alive":
            return True
        if token == "close":
            return False
    tokens = {t.strip(" \t").lower() for value in values for t in value.split(",")}
    if "close" in tokens:
        return False
    return http11 or "keep-alive" in tokens

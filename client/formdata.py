"""``FormData``: an HTML form body, urlencoded or ``multipart/form-data``, as aiohttp's.

A form is ``application/x-www-form-urlencoded`` unless a field forces
multipart: a file object, bytes, an explicit ``filename`` or ``content_type``
(or ``default_to_multipart=True``). Field names, file names and content types
with control characters are refused when the field is added (REQ-03).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from .multipart import MultipartWriter
from .payload import BytesPayload, Payload, check_header_value, get_payload, guess_filename

__all__ = ("FormData", "form_payload_from_dict")

_BYTES_LIKE = (bytes, bytearray, memoryview)


class FormData:
    """Helper to build a form body; calling it returns the ``Payload``."""

    def __init__(
        self,
        fields: Iterable[Any] | Mapping[str, Any] = (),
        quote_fields: bool = True,
        charset: str | None = None,
        *,
        default_to_multipart: bool = False,
    ) -> None:
        self._writer = MultipartWriter("form-data")
        self._fields: list[tuple[dict[str, str], dict[str, str], Any]] = []
        self._is_multipart = default_to_multipart
        self._quote_fields = quote_fields
        self._charset = charset
        if isinstance(fields, Mapping):
            fields = list(fields.items())
        elif not isinstance(fields, list | tuple):
            fields = (fields,)
        self.add_fields(*fields)

    @property
    def is_multipart(self) -> bool:
        """True when the body will be ``multipart/form-data``."""
        return self._is_multipart

    def add_field(
        self,
        name: str,
        value: Any,
        *,
        content_type: str | None = None,
        filename: str | None = None,
    ) -> None:
        """Add one field. Files, bytes, ``filename`` or ``content_type`` make it multipart.

        Bytes without a ``filename`` are sent as a file named after the field, as
        aiohttp 3.x does. A file object's name defaults to its path's base name.
        """
        check_header_value(name, "form field name")
        if filename is not None and not isinstance(filename, str):
            raise TypeError(f"filename must be an instance of str. Got: {filename!r}")
        if content_type is not None and not isinstance(content_type, str):
            raise TypeError(f"content_type must be an instance of str. Got: {content_type!r}")
        if isinstance(value, io.IOBase) and filename is None:
            filename = guess_filename(value, name)
        elif isinstance(value, _BYTES_LIKE) and filename is None:
            filename = name
        dispparams = {"name": name}
        headers = {}
        if filename is not None:
            dispparams["filename"] = check_header_value(filename, "form file name")
        if content_type is not None:
            headers["Content-Type"] = check_header_value(content_type, "form field content type")
        # Checked above before any state changes, so a refused field leaves no trace.
        if filename is not None or content_type is not None or isinstance(value, io.IOBase):
            self._is_multipart = True
        self._fields.append((dispparams, headers, value))

    def add_fields(self, *fields: Any) -> None:
        """Add ``(name, value)`` pairs, mappings, multidicts or file objects."""
        for rec in fields:
            if isinstance(rec, io.IOBase):
                self.add_field(guess_filename(rec, "unknown") or "unknown", rec)
            elif isinstance(rec, Mapping):  # dict, MultiDict, MultiDictProxy
                self.add_fields(*rec.items())
            elif isinstance(rec, list | tuple) and len(rec) == 2:
                self.add_field(rec[0], rec[1])
            else:
                raise TypeError(
                    "Only io.IOBase, multidict and (name, file) pairs allowed, use "
                    f".add_field() for passing more complex parameters, got {rec!r}"
                )

    def __call__(self) -> Payload:
        """The body: a urlencoded ``BytesPayload`` or the ``MultipartWriter``.

        As in aiohttp 3.14 a form may be called again (a 307/308 redirect, a
        retry): multipart fields are appended to the writer once, and the same
        writer is returned each time; a urlencoded body is rebuilt.
        """
        if self._is_multipart:
            return self._gen_form_data()
        return self._gen_form_urlencoded()

    def _gen_form_urlencoded(self) -> BytesPayload:
        charset = self._charset or "utf-8"
        data = [(dispparams["name"], value) for dispparams, _, value in self._fields]
        body = urlencode(data, doseq=True, encoding=charset).encode("ascii")
        ctype = "application/x-www-form-urlencoded"
        if charset != "utf-8":
            ctype += f"; charset={charset}"
        return BytesPayload(body, content_type=ctype)

    def _gen_form_data(self) -> MultipartWriter:
        # Build every part before appending any, so a bad value leaves the writer as it was.
        parts = [self._part(*field) for field in self._fields]
        for part in parts:
            self._writer.append_payload(part)
        self._fields.clear()
        return self._writer

    def _part(self, dispparams: dict[str, str], headers: dict[str, str], value: Any) -> Payload:
        try:
            part = get_payload(
                value,
                content_type=headers.get("Content-Type"),
                encoding=self._charset,
                disposition="attachment",
            )
        except TypeError as exc:
            raise TypeError(
                f"Can not serialize value type: {type(value)!r}\n "
                f"headers: {headers!r}\n value: {value!r}"
            ) from exc
        part.set_content_disposition("form-data", quote_fields=self._quote_fields, **dispparams)
        part.headers.popall("Content-Length", None)
        return part


def form_payload_from_dict(data: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Payload:
    """``FormData(data)()``: urlencoded for plain values, multipart when a file is present."""
    return FormData(data)()

"""FormData: urlencoded vs multipart choice, byte-exact bodies, aiohttp's field rules,
reuse, and injection attempts."""

from __future__ import annotations

import email.parser
import email.policy
import io
from email.message import EmailMessage
from pathlib import Path

import pytest
from multidict import MultiDict

from client.formdata import FormData, form_payload_from_dict
from client.multipart import MultipartWriter
from client.payload import BytesPayload, Payload


class Collector:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        self.chunks.append(bytes(data))


async def written(payload: Payload) -> bytes:
    sink = Collector()
    await payload.write(sink)
    return b"".join(sink.chunks)


def parse(payload: Payload, body: bytes) -> list[EmailMessage]:
    head = f"Content-Type: {payload.content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    assert isinstance(message, EmailMessage)
    assert not message.defects
    return list(message.iter_parts())  # type: ignore[arg-type]


@pytest.fixture
def myfile(tmp_path: Path) -> Path:
    path = tmp_path / "myfile.txt"
    path.write_bytes(b"Hello World\nHello Python\n")
    return path


# -- urlencoded --------------------------------------------------------------------------


async def test_dict_is_urlencoded_like_the_seed() -> None:
    # Seed 001 "Post+form string": httpbin saw Content-Length 25 and this type.
    payload = FormData({"username": "tom", "password": "123"})()
    assert isinstance(payload, BytesPayload)
    assert payload.content_type == "application/x-www-form-urlencoded"
    assert await written(payload) == b"username=tom&password=123"
    assert payload.size == 25


async def test_values_are_str_ed_and_quoted() -> None:
    payload = FormData({"n": 123, "f": 1.5, "s": "a b&c=d/é"})()
    assert await written(payload) == b"n=123&f=1.5&s=a+b%26c%3Dd%2F%C3%A9"


async def test_pairs_repeat_keys_and_sequences_expand() -> None:
    assert await written(FormData([("a", "1"), ("a", "2")])()) == b"a=1&a=2"
    assert await written(FormData(MultiDict([("k", "x"), ("k", "y")]))()) == b"k=x&k=y"
    assert await written(FormData({"l": ["1", "2"]})()) == b"l=1&l=2"


async def test_charset_applies_to_urlencoding() -> None:
    payload = FormData({"a": "é"}, charset="latin-1")()
    assert payload.content_type == "application/x-www-form-urlencoded; charset=latin-1"
    assert await written(payload) == b"a=%E9"


async def test_urlencoded_form_can_be_called_again() -> None:
    form = FormData({"x": "1"})
    assert await written(form()) == b"x=1"
    form.add_field("y", "2")
    assert await written(form()) == b"x=1&y=2"
    assert not form.is_multipart


# -- switching to multipart -----------------------------------------------------------------


async def test_file_in_dict_makes_multipart_named_after_the_file(myfile: Path) -> None:
    # Seed 001/004 "POST a Multipart-Encoded File": data={'file': open(..., 'rb')}.
    with myfile.open("rb") as fh:
        form = FormData({"file": fh})
        assert form.is_multipart
        payload = form()
        assert isinstance(payload, MultipartWriter)
        boundary = payload.boundary
        assert payload.content_type == f"multipart/form-data; boundary={boundary}"
        body = await written(payload)
    assert (
        body
        == (
            f"--{boundary}\r\nContent-Type: text/plain\r\n"
            'Content-Disposition: form-data; name="file"; filename="myfile.txt"\r\n\r\n'
            "Hello World\nHello Python\n\r\n"
            f"--{boundary}--\r\n"
        ).encode()
    )
    assert payload.size == len(body)


async def test_fields_and_file_parse_back(myfile: Path) -> None:
    # Seed 001 "Post+form string+file".
    form = FormData()
    form.add_field("username", "tom")
    form.add_field("password", "123")
    with myfile.open("rb") as fh:
        form.add_field("file", fh, filename="tom.txt")
        payload = form()
        body = await written(payload)
    user, password, upload = parse(payload, body)
    assert user.get_param("name", header="content-disposition") == "username"
    assert user.get_content() == "tom"
    assert password.get_content() == "123"
    assert upload.get_filename() == "tom.txt"
    assert upload.get_content_type() == "text/plain"
    assert upload.get_payload(decode=True) == b"Hello World\nHello Python\n"
    assert payload.size == len(body)


async def test_explicit_filename_and_content_type(myfile: Path) -> None:
    # Seed 004: add_field('file', open(...), filename='report.xls', content_type=...).
    form = FormData()
    with myfile.open("rb") as fh:
        form.add_field("file", fh, filename="report.xls", content_type="application/vnd.ms-excel")
        (part,) = parse(payload := form(), await written(payload))
    assert part.get_content_type() == "application/vnd.ms-excel"
    assert part.get_filename() == "report.xls"


@pytest.mark.parametrize(
    ("value", "kwargs"),
    [
        ("plain", {"content_type": "text/csv"}),
        ("plain", {"filename": "a.txt"}),
        (b"raw", {}),
        (io.BytesIO(b"raw"), {}),
    ],
)
def test_what_forces_multipart(value: object, kwargs: dict[str, str]) -> None:
    form = FormData()
    form.add_field("f", value, **kwargs)
    assert form.is_multipart
    assert isinstance(form(), MultipartWriter)


async def test_bytes_become_a_file_named_after_the_field() -> None:
    form = FormData()
    form.add_field("blob", b"\x00\x01")
    (part,) = parse(payload := form(), await written(payload))
    assert part.get_filename() == "blob"
    assert part.get_content_type() == "application/octet-stream"
    assert part.get_payload(decode=True) == b"\x00\x01"


async def test_default_to_multipart() -> None:
    form = FormData({"a": "1"}, default_to_multipart=True)
    (part,) = parse(payload := form(), await written(payload))
    assert part.get_content() == "1"
    assert "Content-Length" not in part  # RFC 7578 §4.8


async def test_multipart_charset_labels_text_parts() -> None:
    form = FormData(charset="latin-1", default_to_multipart=True)
    form.add_field("a", "é")
    body = await written(form())
    assert b"Content-Type: text/plain; charset=latin-1\r\n" in body
    assert b"\r\n\r\n\xe9\r\n" in body


async def test_non_ascii_names_use_rfc5987_and_filenames_percent_encoding() -> None:
    form = FormData()
    form.add_field("ném", "v", filename="é x.txt")
    body = await written(form())
    assert b"Content-Disposition: form-data; name*=utf-8''n%C3%A9m; " in body
    assert b'filename="%C3%A9%20x.txt"' in body


async def test_quote_fields_false_sends_raw_utf8_with_escaped_quotes() -> None:
    form = FormData(quote_fields=False)
    form.add_field("ném", "v", filename='say "hi".txt')
    body = await written(form())
    assert 'name="ném"; filename="say \\"hi\\".txt"'.encode() in body


async def test_multipart_form_returns_the_same_writer_when_called_again(myfile: Path) -> None:
    with myfile.open("rb") as fh:
        form = FormData({"file": fh, "k": "v"})
        first = form()
        assert isinstance(first, MultipartWriter)
        assert form() is first  # a 307/308 replay resends the same parts
        assert len(first) == 2  # not appended twice
        assert await written(first) == await written(form())


def test_form_payload_from_dict(myfile: Path) -> None:
    assert form_payload_from_dict({"a": "1"}).content_type == "application/x-www-form-urlencoded"
    with myfile.open("rb") as fh:
        payload = form_payload_from_dict([("file", fh)])
    assert payload.content_type.startswith("multipart/form-data; boundary=")


# -- add_fields --------------------------------------------------------------------------------


async def test_add_fields_accepts_files_pairs_and_mappings(myfile: Path) -> None:
    form = FormData()
    with myfile.open("rb") as fh:
        form.add_fields(fh, ("k", "v"), {"m": "1"}, MultiDict([("md", "2")]))
        parts = parse(payload := form(), await written(payload))
    names = [p.get_param("name", header="content-disposition") for p in parts]
    assert names == ["myfile.txt", "k", "m", "md"]


@pytest.mark.parametrize("bad", ["ab", ("a", "b", "c"), 5])
def test_add_fields_rejects_other_records(bad: object) -> None:
    with pytest.raises(TypeError, match=r"\(name, file\) pairs"):
        FormData().add_fields(bad)


def test_sync_generator_is_not_form_data() -> None:
    with pytest.raises(TypeError):
        FormData(x for x in [("a", "b")])


def test_non_str_filename_or_content_type_rejected() -> None:
    with pytest.raises(TypeError, match="filename"):
        FormData().add_field("f", "v", filename=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="content_type"):
        FormData().add_field("f", "v", content_type=3)  # type: ignore[arg-type]


def test_unserializable_multipart_value_is_a_type_error() -> None:
    form = FormData(default_to_multipart=True)
    form.add_field("n", 5)
    with pytest.raises(TypeError, match="Can not serialize value type"):
        form()


# -- injection (security.md A4 / REQ-03) -------------------------------------------------------

EVIL = ['a"\r\nContent-Type: x', "a\r\nX-Injected: 1", "a\nb", "a\x00b", "a\x7f"]


@pytest.mark.parametrize("evil", EVIL)
@pytest.mark.parametrize("quote_fields", [True, False])
def test_control_characters_rejected_when_the_field_is_added(evil: str, quote_fields: bool) -> None:
    form = FormData(quote_fields=quote_fields)
    with pytest.raises(ValueError, match="control character"):
        form.add_field(evil, "v")
    with pytest.raises(ValueError, match="control character"):
        form.add_field("f", "v", filename=evil)
    with pytest.raises(ValueError, match="control character"):
        form.add_field("f", "v", content_type=evil)
    assert not form.is_multipart  # nothing half-added


async def test_quotes_in_filename_cannot_break_out() -> None:
    form = FormData()
    form.add_field("f", b"x", filename='a"; name="other')
    (part,) = parse(payload := form(), await written(payload))
    assert part.get_param("name", header="content-disposition") == "f"
    assert part.get_filename() == "a%22%3B%20name%3D%22other"

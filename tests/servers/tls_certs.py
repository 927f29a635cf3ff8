"""Certificates and SSL contexts for the TLS test servers (trustme + cryptography)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from typing import Literal, get_args

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TLSKind = Literal["valid", "expired", "wrong_host", "self_signed", "client_cert_required"]
TLS_KINDS: tuple[TLSKind, ...] = get_args(TLSKind)

# Every "good" server certificate names both loopback spellings.
SERVER_IDENTITIES = ("127.0.0.1", "localhost")
WRONG_HOST = "wrong-host.example"
CLIENT_IDENTITY = "client@fetchrun.test"


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """A fresh verifying client context that trusts only *ca* (no system store)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname + CERT_REQUIRED
    ca.configure_trust(ctx)
    return ctx


def server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    """A server context presenting *cert*."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    return ctx


def _self_signed_context() -> ssl.SSLContext:
    """A server context with a genuinely self-signed leaf for the loopback names."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fetchrun self-signed")])
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # load_cert_chain only reads files.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "self-signed.pem")
        with open(path, "wb") as fh:
            fh.write(key_pem + cert.public_bytes(serialization.Encoding.PEM))
        ctx.load_cert_chain(path)
    return ctx


class TLSCertificates:
    """Server contexts for each :data:`TLSKind`, all (but self_signed) from one CA."""

    def __init__(self, ca: trustme.CA) -> None:
        self.ca = ca
        #: A client certificate issued by ``ca``, for ``client_cert_required``.
        self.client_cert: trustme.LeafCert = ca.issue_cert(CLIENT_IDENTITY)
        self._contexts: dict[TLSKind, ssl.SSLContext] = {}

    def server_context(self, kind: TLSKind) -> ssl.SSLContext:
        """The (cached) server context for *kind*."""
        ctx = self._contexts.get(kind)
        if ctx is None:
            ctx = self._contexts[kind] = self._make(kind)
        return ctx

    def _make(self, kind: TLSKind) -> ssl.SSLContext:
        if kind == "valid":
            return server_context(self.ca.issue_cert(*SERVER_IDENTITIES))
        if kind == "expired":
            now = dt.datetime.now(dt.UTC)
            leaf = self.ca.issue_cert(
                *SERVER_IDENTITIES,
                not_before=now - dt.timedelta(days=60),
                not_after=now - dt.timedelta(days=1),
            )
            return server_context(leaf)
        if kind == "wrong_host":
            return server_context(self.ca.issue_cert(WRONG_HOST))
        if kind == "self_signed":
            return _self_signed_context()
        if kind == "client_cert_required":
            ctx = server_context(self.ca.issue_cert(*SERVER_IDENTITIES))
            ctx.verify_mode = ssl.CERT_REQUIRED
            self.ca.configure_trust(ctx)
            return ctx
        raise ValueError(f"unknown TLS server kind {kind!r}; expected one of {TLS_KINDS}")

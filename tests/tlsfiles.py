"""Certificates for tests: a throwaway CA, a server certificate for 127.0.0.1/localhost and a
client certificate, all as PEM files (the format both aiokafka and Kafka's PEM stores read)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_LIFETIME = dt.timedelta(days=2)
_CA_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
    key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
    decipher_only=False,
)  # fmt: skip


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the CA's certificate
    server_keystore: Path  # the server's key and certificate: PKCS#12, as Java reads it
    server_keystore_password: str
    client_cert: Path
    client_key: Path  # PKCS#8, encrypted with `client_key_password`
    client_key_password: str
    other_ca: Path  # a CA that signed none of these


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _new_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _issue(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, common_name: str, server: bool
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # The broker is also a TLS client of itself (inter-broker listener): both usages.
        .add_extension(
            x509.ExtendedKeyUsage([usage, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return key, builder.sign(ca_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _pkcs8(key: ec.EllipticCurvePrivateKey, password: str | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _pkcs12(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, password: str) -> bytes:
    # SHA-1/3DES, which every Java reads (the default AES/PBKDF2 needs a recent JDK).
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(20000)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())
        .build(password.encode())
    )
    return pkcs12.serialize_key_and_certificates(b"server", key, cert, None, encryption)


def make_tls_files(folder: Path) -> TlsFiles:
    """Write a CA, a server key+certificate for 127.0.0.1/localhost and a client certificate
    with an encrypted key to `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca = _new_ca("okrflow test CA")
    server_key, server_cert = _issue(ca_key, ca, "127.0.0.1", server=True)
    client_key, client_cert = _issue(ca_key, ca, "okrflow-client", server=False)
    _, other_ca = _new_ca("unrelated CA")
    files = TlsFiles(
        ca=folder / "ca.pem",
        server_keystore=folder / "server.p12",
        server_keystore_password="server-store-pass",
        client_cert=folder / "client.pem",
        client_key=folder / "client.key",
        client_key_password="client-key-pass",
        other_ca=folder / "other-ca.pem",
    )
    files.ca.write_bytes(_pem(ca))
    files.server_keystore.write_bytes(
        _pkcs12(server_key, server_cert, files.server_keystore_password)
    )
    files.client_cert.write_bytes(_pem(client_cert))
    files.client_key.write_bytes(_pkcs8(client_key, files.client_key_password))
    files.other_ca.write_bytes(_pem(other_ca))
    for path in (files.server_keystore, files.client_key):
        path.chmod(0o600)
    return files

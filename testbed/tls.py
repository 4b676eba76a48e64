"""A throwaway certificate authority for TURN over TLS on loopback, and a browser home that trusts it.

``make_certificates`` issues a CA and a server certificate for ``localhost`` / 127.0.0.1 (one day of life).
``trusting_home`` makes a home directory whose NSS database (``~/.pki/nssdb``, where Chromium on Linux
reads locally trusted roots) holds that CA as a trusted issuer of server certificates: Chromium started
with it as HOME verifies coturn's certificate properly, without any certificate-ignoring flag.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAME = "localhost"


class CertutilMissing(RuntimeError):
    """NSS's certutil is not installed; the message says how to install it."""


@dataclass(frozen=True)
class Certificates:
    ca: Path
    chain: Path
    """The server certificate followed by the CA's (what coturn's ``cert=`` takes)."""
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(directory: Path) -> Certificates:
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    valid = {
        "not_valid_before": now - datetime.timedelta(minutes=5),
        "not_valid_after": now + datetime.timedelta(days=1),
    }
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("voice-agent test CA")
    ca = (
        x509.CertificateBuilder(subject_name=ca_name, issuer_name=ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid["not_valid_before"])
        .not_valid_after(valid["not_valid_after"])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder(subject_name=_name(SERVER_NAME), issuer_name=ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid["not_valid_before"])
        .not_valid_after(valid["not_valid_after"])
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(SERVER_NAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files = Certificates(
        ca=directory / "ca.pem", chain=directory / "server.pem", key=directory / "server-key.pem"
    )
    files.ca.write_bytes(ca.public_bytes(pem))
    files.chain.write_bytes(server.public_bytes(pem) + ca.public_bytes(pem))
    files.key.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    files.key.chmod(0o600)
    return files


def trusting_home(ca: Path, home: Path) -> Path:
    """A HOME whose NSS database trusts ``ca`` for TLS servers ("C,,")."""
    certutil = shutil.which("certutil")
    if certutil is None:
        raise CertutilMissing(
            "NSS's certutil is not installed: run 'apt-get install libnss3-tools' (make setup does this); "
            "the TURN-over-TLS browser test trusts its throwaway CA with it"
        )
    database = home / ".pki" / "nssdb"
    database.mkdir(parents=True, exist_ok=True)
    for command in (
        [certutil, "-N", "-d", f"sql:{database}", "--empty-password"],
        [certutil, "-A", "-d", f"sql:{database}", "-n", "voice-agent test CA", "-t", "C,,", "-i", str(ca)],
    ):
        subprocess.run(command, check=True, capture_output=True, timeout=30)
    return home

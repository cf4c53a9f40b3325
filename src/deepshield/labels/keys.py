"""Project keys under $DEEPSHIELD_HOME/keys: an Ed25519 key for AIGC codes, a local CA and a C2PA signer.

c2pa refuses self-signed certificates, so `init_keys` makes a CA and a leaf signed by it with what the
c2pa library checks: key usage digitalSignature (critical), extended key usage emailProtection, subject
and authority key identifiers, ES256. Verifiers that list the CA as a trust anchor report "Trusted".
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from deepshield.config import get_settings
from deepshield.labels.aigc import key_id
from deepshield.labels.errors import KeyFileError, KeysMissing

AIGC_KEY = "aigc_ed25519.pem"
AIGC_TRUSTED_DIR = "aigc_trusted"  # extra public keys (PEM) of producers/platforms we trust
CA_CERT = "c2pa_ca.pem"
CA_KEY = "c2pa_ca_key.pem"
SIGNER_CHAIN = "c2pa_signer_chain.pem"
SIGNER_KEY = "c2pa_signer_key.pem"


def keys_dir(home: Path | None = None) -> Path:
    return (home or get_settings().home) / "keys"


@dataclass
class KeySet:
    aigc_key: Ed25519PrivateKey
    c2pa_chain_pem: bytes
    c2pa_key_pem: bytes
    ca_pem: bytes

    @property
    def aigc_key_id(self) -> str:
        return key_id(self.aigc_key.public_key())


def _write(path: Path, data: bytes, secret: bool) -> None:
    path.write_bytes(data)
    if secret:
        os.chmod(path, 0o600)


def generate_ed25519_key(path: Path) -> Ed25519PrivateKey:
    """A new Ed25519 key written to `path` (PKCS#8 PEM). The file is created 0600 before a byte is written, and an
    existing file is never replaced: signatures made with it would stop verifying."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


def _load_pem(path: Path, data: bytes, load: Callable[[bytes], object], what: str) -> object:
    try:
        return load(data)
    except (ValueError, TypeError) as e:
        raise KeyFileError(f"{path}: not {what} ({e})") from None


def read_ed25519_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in `path` (PEM). FileNotFoundError when absent, so callers can say what to run;
    `KeyFileError` when the file holds something else."""
    load = partial(serialization.load_pem_private_key, password=None)
    key = _load_pem(path, path.read_bytes(), load, "an unencrypted PEM private key")
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return key


def read_ed25519_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in `path`: a PEM public key, or the public half of a PEM private key."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file") from None
    if b"PRIVATE KEY" in data:
        return read_ed25519_private_key(path).public_key()
    pub = _load_pem(path, data, serialization.load_pem_public_key, "a PEM public key")
    if not isinstance(pub, Ed25519PublicKey):
        raise KeyFileError(f"{path}: not an Ed25519 public key")
    return pub


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)])


def _ku(sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def init_keys(home: Path | None = None, organisation: str = "Deepshield", force: bool = False) -> Path:
    """Create the keys once; refuses to overwrite existing keys unless `force` (labels signed before would
    stop verifying)."""
    d = keys_dir(home)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    if (d / AIGC_KEY).exists() and (d / SIGNER_CHAIN).exists() and not force:
        return d
    now = dt.datetime.now(dt.UTC)
    aigc = Ed25519PrivateKey.generate()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{organisation} local C2PA CA", organisation)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ku(False, True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{organisation} content signer", organisation))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_ku(True, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    none = serialization.NoEncryption()
    _write(d / AIGC_KEY, aigc.private_bytes(pem, pkcs8, none), True)
    _write(d / CA_KEY, ca_key.private_bytes(pem, pkcs8, none), True)
    _write(d / SIGNER_KEY, leaf_key.private_bytes(pem, pkcs8, none), True)
    _write(d / CA_CERT, ca.public_bytes(pem), False)
    _write(d / SIGNER_CHAIN, leaf.public_bytes(pem) + ca.public_bytes(pem), False)
    (d / AIGC_TRUSTED_DIR).mkdir(exist_ok=True)
    return d


def load_keys(home: Path | None = None) -> KeySet:
    d = keys_dir(home)
    try:
        aigc = read_ed25519_private_key(d / AIGC_KEY)
        chain = (d / SIGNER_CHAIN).read_bytes()
        key = (d / SIGNER_KEY).read_bytes()
        ca = (d / CA_CERT).read_bytes()
    except FileNotFoundError:
        raise KeysMissing() from None
    return KeySet(aigc, chain, key, ca)


def trusted_aigc_keys(home: Path | None = None) -> dict[str, Ed25519PublicKey]:
    """Our own public key plus any PEM public keys dropped in keys/aigc_trusted/, by key id."""
    d = keys_dir(home)
    out: dict[str, Ed25519PublicKey] = {}
    if (d / AIGC_KEY).exists():
        own = read_ed25519_private_key(d / AIGC_KEY).public_key()
        out[key_id(own)] = own
    tdir = d / AIGC_TRUSTED_DIR
    if tdir.is_dir():
        for p in sorted(tdir.glob("*.pem")):
            pub = serialization.load_pem_public_key(p.read_bytes())
            if isinstance(pub, Ed25519PublicKey):
                out[key_id(pub)] = pub
    return out


def trust_anchors_pem(home: Path | None = None) -> str | None:
    p = keys_dir(home) / CA_CERT
    return p.read_text() if p.exists() else None

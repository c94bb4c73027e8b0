"""The course's own certificate authority: who may be part of its grading cluster.

    python -m course.grading.certificates make [DIR]   # make certificates
    python -m course.grading.certificates show [DIR]   # what each certificate is for

A Dask cluster runs whatever task it is sent, as the account its workers run as, and hands
students' notebooks and hidden seeds to whichever worker joins it. So nothing joins or talks to
the course's cluster without a certificate signed by the course's own CA (mutual TLS, with
Dask's own ``distributed.Security`` and ``tls://`` addresses): the scheduler, every worker and
the grader each prove who they are, and each refuses a peer the CA did not sign.

``make DIR`` writes a new CA and one certificate per role (``ROLES``) into ``DIR`` (made with
mode 0700; every private key 0600, opened without following links and never over an existing
file, so a planted link or an old key is refused rather than overwritten):

=====================  ===================================================================
``ca.pem``             the CA's certificate: every machine of the cluster needs it
``ca-key.pem``         the CA's private key: only for making certificates; keep it offline
``scheduler.pem``      the scheduler (with ``scheduler-key.pem``)
``worker.pem``         every grading worker (with ``worker-key.pem``)
``grader.pem``         the instructor's grader, ``make autograde`` (with ``grader-key.pem``)
=====================  ===================================================================

The role is written in each certificate twice, and checked twice:

* its subject's organizational unit (``OU=worker``): the scheduler reads it from the
  certificate its peer proved (``course.grading.roles``, a scheduler preload) and lets only a
  ``worker`` join as a worker and only a ``grader`` connect as a client;
* its extended key usage: a grader's certificate is for TLS clients only (``clientAuth``), so
  OpenSSL itself refuses it to anything that listens (a worker, a scheduler); the scheduler's
  and the workers' are for both ends (``serverAuth`` and ``clientAuth``: they connect to each
  other).

A loopback cluster the grader starts itself (``course.grading.cluster.local``: tests and the
benchmark) gets a throw-away CA made for that run (``throwaway``), removed when it stops.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The roles of the course's cluster: each a certificate and its key.
ROLES = ("scheduler", "worker", "grader")
#: The organization every certificate of a course's CA names (the role is the unit).
ORGANIZATION = "TinyTorch course grading"
#: How long certificates are valid when not said otherwise: one term and some slack.
DEFAULT_DAYS = 400
#: The default folder of the course's certificates: beside the checkout, never in git
#: (``.gitignore``), never removed by ``make clean``.
DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "cluster-certificates"
#: The environment variable that names another folder (``make autograde CERTIFICATES=DIR``).
ENVIRONMENT = "TINYTORCH_CLUSTER_CERTIFICATES"


class CertificateError(RuntimeError):
    """The course's certificates are missing, unsafe, or cannot be made here."""


def certificate_file(folder: Path, role: str) -> Path:
    """Where ``role``'s certificate is in ``folder`` (``ca`` for the CA's)."""
    return folder / f"{role}.pem"


def key_file(folder: Path, role: str) -> Path:
    """Where ``role``'s private key is in ``folder`` (``ca`` for the CA's)."""
    return folder / f"{role}-key.pem"


def default_folder() -> Path:
    """The folder the grader reads its certificates from unless told: ``$ENVIRONMENT``, else
    ``DEFAULT_FOLDER``."""
    named = os.environ.get(ENVIRONMENT)
    return Path(named) if named else DEFAULT_FOLDER


# ----------------------------------------------------------------------------- making them
def _write_private(path: Path, data: bytes) -> None:
    """Write a new file only its owner can read: never over an existing file or through a
    link someone planted (``O_EXCL | O_NOFOLLOW``)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def _write_public(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def _name(unit: str, common: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _usages(role: str) -> list[Any]:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    client, server = ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH
    return [client] if role == "grader" else [server, client]


def make(folder: Path, *, days: int = DEFAULT_DAYS, hosts: Sequence[str] = ()) -> dict[str, Path]:
    """A new course CA and a certificate for each role in ``folder`` (created mode 0700; an
    existing one must be empty, so no key is ever replaced by accident). ``hosts`` are written
    as the scheduler's and workers' names (Dask does not compare names: the CA is the check).
    Returns each written file by its name without ``.pem``."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError as error:  # pragma: no cover - pinned in the dev extra
        raise CertificateError("making certificates needs the `cryptography` package "
                               "(make setup installs it)") from error
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.is_symlink() or any(folder.iterdir()):
        raise CertificateError(f"{folder} is not an empty folder: the course's certificates "
                               "are made once, into a new folder (a new CA means new "
                               "certificates on every machine)")
    folder.chmod(0o700)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    until = now + datetime.timedelta(days=days)
    pem = serialization.Encoding.PEM
    private = serialization.PrivateFormat.PKCS8
    plain = serialization.NoEncryption()
    written: dict[str, Path] = {}

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("ca", f"{ORGANIZATION} CA {os.urandom(4).hex()}")
    ca_keyid = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(until)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_keyid, critical=False)
          .sign(ca_key, hashes.SHA256()))
    _write_private(key_file(folder, "ca"), ca_key.private_bytes(pem, private, plain))
    _write_public(certificate_file(folder, "ca"), ca.public_bytes(pem))
    written["ca"] = certificate_file(folder, "ca")
    written["ca-key"] = key_file(folder, "ca")

    for role in ROLES:
        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.DNSName(f"tinytorch-grading-{role}")]
        if role != "grader":
            names += [x509.DNSName(host) for host in hosts]
        certificate = (
            x509.CertificateBuilder().subject_name(_name(role, f"tinytorch-grading-{role}"))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(_usages(role)), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_keyid), critical=False)
            .sign(ca_key, hashes.SHA256()))
        _write_private(key_file(folder, role), key.private_bytes(pem, private, plain))
        _write_public(certificate_file(folder, role), certificate.public_bytes(pem))
        written[role] = certificate_file(folder, role)
        written[f"{role}-key"] = key_file(folder, role)
    return written


@contextlib.contextmanager
def throwaway() -> Iterator[Path]:
    """A CA and certificates made for one run (a loopback cluster this process starts), in a
    private temporary folder removed afterwards: nobody else can hold them."""
    folder = Path(tempfile.mkdtemp(prefix="tinytorch-certificates-"))
    try:
        make(folder, days=2)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ----------------------------------------------------------------------------- using them
@dataclass(frozen=True)
class Credentials:
    """One role's certificate, its key and the course's CA, as files."""

    ca: Path
    certificate: Path
    key: Path

    def dask_options(self) -> list[str]:
        """The options of ``dask scheduler`` and ``dask worker`` that present them."""
        return ["--tls-ca-file", str(self.ca), "--tls-cert", str(self.certificate),
                "--tls-key", str(self.key)]


def credentials(folder: Path, role: str) -> Credentials:
    """``role``'s credentials in ``folder``, checked: every file there, and the key readable by
    its owner only (a key others can read is a key others may hold)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    found = Credentials(certificate_file(folder, "ca"), certificate_file(folder, role),
                        key_file(folder, role))
    missing = [str(p) for p in (found.ca, found.certificate, found.key) if not p.is_file()]
    if missing:
        raise CertificateError(
            f"no {role} certificate of the course in {folder} (missing: {', '.join(missing)}); "
            "make the course's certificates with `make certificates` (python -m "
            "course.grading.certificates make DIR) and give their folder with --certificates "
            f"DIR or {ENVIRONMENT}=DIR")
    mode = found.key.stat().st_mode & 0o777
    if mode & 0o077:
        raise CertificateError(f"{found.key} can be read by other accounts (mode {mode:o}): "
                               f"chmod 600 {found.key}, and make new certificates if anyone "
                               "else may have read it")
    return found


def security(folder: Path, role: str = "grader") -> Any:
    """A ``distributed.Security`` that presents ``role``'s certificate, trusts only the
    course's CA and requires TLS on every connection."""
    from distributed import Security

    found = credentials(folder, role)
    files = {"tls_ca_file": str(found.ca), f"tls_{_dask_role(role)}_cert": str(found.certificate),
             f"tls_{_dask_role(role)}_key": str(found.key)}
    return Security(require_encryption=True, **files)


def _dask_role(role: str) -> str:
    return "client" if role == "grader" else role


def role_of(peercert: Any) -> str | None:
    """The role a verified peer certificate (``ssl.SSLSocket.getpeercert()``'s dict) names:
    its subject's organizational unit when its organization is the course's, else None."""
    if not isinstance(peercert, dict):
        return None
    fields: dict[str, list[str]] = {}
    for part in peercert.get("subject") or ():
        for name, value in part:
            fields.setdefault(name, []).append(value)
    if fields.get("organizationName") != [ORGANIZATION]:
        return None
    units = fields.get("organizationalUnitName") or []
    return units[0] if len(units) == 1 and units[0] in ROLES else None


#: The extended key usages the course's certificates carry, by their object identifiers.
_USAGE_NAMES = {"1.3.6.1.5.5.7.3.1": "serverAuth", "1.3.6.1.5.5.7.3.2": "clientAuth"}


def describe(folder: Path) -> list[str]:
    """One line per certificate in ``folder``: its role, subject, usages and validity."""
    from cryptography import x509

    lines = []
    for name in ("ca", *ROLES):
        path = certificate_file(folder, name)
        if not path.is_file():
            lines.append(f"{name}: missing ({path})")
            continue
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
        try:
            usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
            usages = ", ".join(_USAGE_NAMES.get(u.dotted_string, u.dotted_string)
                               for u in usage.value)
        except x509.ExtensionNotFound:
            usages = "certificate authority" if name == "ca" else "none"
        key = key_file(folder, name)
        mode = f"key mode {key.stat().st_mode & 0o777:o}" if key.is_file() else "no key here"
        lines.append(f"{name}: {certificate.subject.rfc4514_string()}; {usages}; valid until "
                     f"{certificate.not_valid_after_utc:%Y-%m-%d}; {mode}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course.grading.certificates",
        description="The course's CA and the certificates of its Dask cluster: the scheduler, "
                    "the workers and the grader (see docs/instructor-guide.md).")
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser("make", help="make a new CA and a certificate per role in DIR")
    made.add_argument("folder", type=Path, nargs="?", default=None, metavar="DIR",
                      help=f"a new or empty folder (default: {DEFAULT_FOLDER})")
    made.add_argument("--days", type=int, default=DEFAULT_DAYS,
                      help="how long they are valid (default %(default)s)")
    made.add_argument("--host", action="append", default=[], metavar="NAME",
                      help="a name of the scheduler's or a worker's machine (repeatable)")
    shown = commands.add_parser("show", help="what each certificate in DIR is for")
    shown.add_argument("folder", type=Path, nargs="?", default=None, metavar="DIR")
    args = parser.parse_args(argv)
    folder = args.folder or default_folder()
    try:
        if args.command == "make":
            make(folder, days=args.days, hosts=args.host)
            print(f"the course's CA and certificates are in {folder}:")
        for line in describe(folder):
            print(f"  {line}")
    except (CertificateError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.command == "make":
        print(f"keep {key_file(folder, 'ca')} offline: it only makes certificates. Copy ca.pem "
              "and the role's .pem and -key.pem to each machine (mode 600 for the key).")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Key pairs (``/os-keypairs``): per user, ssh or x509 (2.2+), imported or generated.

Before 2.92 a request without ``public_key`` makes a new pair and answers with its
private key (an RSA key in OpenSSH's format, or for x509 a self-signed certificate
with its key as base64 PKCS#12, as Nova does); from 2.92 ``public_key`` is required.
Fingerprints are Nova's: the MD5 of the ssh key blob, the SHA-1 of the certificate,
colon separated. Admins may act for another user (``user_id``, 2.10+); another
user's key pair is 404 to everyone else.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackbox import rest
from stackbox.compute import common, errors, flavors, microversions, models, quotas

SSH, X509 = "ssh", "x509"
_NAME = r"^[_\- a-zA-Z0-9]+$"
_NAME_V292 = r"^[_\-\@\. a-zA-Z0-9]+$"
UPN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")


def _schema(request: rest.ApiRequest) -> dict[str, Any]:
    pattern = _NAME_V292 if microversions.at_least(request, "keypair_import_only") else _NAME
    properties: dict[str, Any] = {
        "name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": pattern},
        "public_key": {"type": "string"},
    }
    if microversions.at_least(request, "keypair_type"):
        properties["type"] = {"type": "string", "enum": [SSH, X509]}
    if microversions.at_least(request, "keypair_user_id"):
        properties["user_id"] = {"type": "string"}
    required = ["name"]
    if microversions.at_least(request, "keypair_import_only"):
        required.append("public_key")
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


# --- keys -----------------------------------------------------------------------------------


def _colons(hexdigest: str) -> str:
    return ":".join(hexdigest[i : i + 2] for i in range(0, len(hexdigest), 2))


def invalid(reason: str) -> rest.BadRequest:
    return errors.bad_request(f"Keypair data is invalid: {reason}")


def ssh_fingerprint(public_key: str) -> str:
    try:
        serialization.load_ssh_public_key(public_key.encode())
        blob = base64.b64decode(public_key.split(" ")[1])
    except Exception:
        raise invalid("failed to generate fingerprint") from None
    return _colons(hashlib.md5(blob, usedforsecurity=False).hexdigest())


def x509_fingerprint(pem: str) -> str:
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except (ValueError, TypeError, binascii.Error) as exc:
        raise invalid(f"failed to generate X509 fingerprint. Error message: {exc}") from None
    return _colons(binascii.hexlify(cert.fingerprint(hashes.SHA1())).decode("ascii"))


def fingerprint(public_key: str, key_type: str) -> str:
    return x509_fingerprint(public_key) if key_type == X509 else ssh_fingerprint(public_key)


def generate_ssh() -> tuple[str, str]:
    """(private key in OpenSSH's PEM form, public key line) of a new RSA 2048 key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, f"{public.decode()} Generated-by-Nova"


def generate_x509(user_id: str) -> tuple[str, str]:
    """(base64 PKCS#12 of key and certificate, PEM certificate) for WinRM-style client
    auth: subject CN=<user>, UPN <user>@localhost, client-auth usage, 10 years."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id)])
    now = datetime.datetime.now(datetime.UTC)
    upn = x509.OtherName(UPN_OID, _der_utf8(f"{user_id}@localhost"))
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([upn]), critical=False)
        .sign(key, hashes.SHA256())
    )
    bundle = pkcs12.serialize_key_and_certificates(
        None, key, cert, None, serialization.NoEncryption()
    )
    return base64.b64encode(bundle).decode("ascii"), cert.public_bytes(
        serialization.Encoding.PEM
    ).decode()


def _der_utf8(text: str) -> bytes:
    """A DER UTF8String (the value of the UPN otherName)."""
    data = text.encode()
    if len(data) < 128:
        return bytes([0x0C, len(data)]) + data
    size = len(data).to_bytes((len(data).bit_length() + 7) // 8, "big")
    return bytes([0x0C, 0x80 | len(size)]) + size + data


# --- lookups and bodies ---------------------------------------------------------------------


def find(session: Session, user_id: str, name: str) -> models.KeyPair | None:
    return session.scalar(
        select(models.KeyPair).where(models.KeyPair.user_id == user_id, models.KeyPair.name == name)
    )


def get_for_boot(session: Session, user_id: str, name: str) -> models.KeyPair:
    """The user's key pair named at server create/rebuild; 400 if there is none."""
    keypair = find(session, user_id, name)
    if keypair is None:
        raise errors.bad_request("Invalid key_name provided.")
    return keypair


def _not_found(name: str, user_id: str) -> rest.NotFound:
    return errors.not_found(f"Keypair {name} not found for user {user_id}")


def _brief(request: rest.ApiRequest, keypair: models.KeyPair) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": keypair.name,
        "public_key": keypair.public_key,
        "fingerprint": keypair.fingerprint,
    }
    if microversions.at_least(request, "keypair_type"):
        body["type"] = keypair.type
    return body


def _full(request: rest.ApiRequest, keypair: models.KeyPair) -> dict[str, Any]:
    body = _brief(request, keypair)
    body.update(
        {
            "user_id": keypair.user_id,
            "created_at": common.isotime_micro(keypair.created_at),
            "deleted": False,
            "deleted_at": None,
            "id": keypair.id,
            "updated_at": None,
        }
    )
    return body


def _query_user(request: rest.ApiRequest) -> str:
    """The user acted for: ``?user_id=`` (2.10+, first value, as Nova) or the caller."""
    if microversions.at_least(request, "keypair_user_id"):
        values = request.query.get("user_id")
        if values:
            return values[0]
    return request.context.user_id or ""


# --- handlers -------------------------------------------------------------------------------


def index(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    paging = microversions.at_least(request, "keypair_paging")
    allowed = ["user_id", "limit", "marker"] if paging else ["user_id"]
    flavors.strict_query(request, allowed, "strict_param_validation")
    user_id = _query_user(request)
    common.enforce(request, "os_compute_api:os-keypairs:index", {"user_id": user_id})
    rows = list(
        session.scalars(
            select(models.KeyPair)
            .where(models.KeyPair.user_id == user_id)
            .order_by(models.KeyPair.name)
        )
    )
    links = None
    if paging:
        rows, links = _page(request, rows)
    result: dict[str, Any] = {"keypairs": [{"keypair": _brief(request, k)} for k in rows]}
    if links:
        result["keypairs_links"] = links
    return result


def _page(
    request: rest.ApiRequest, rows: list[models.KeyPair]
) -> tuple[list[models.KeyPair], list[dict[str, str]] | None]:
    marker = request.arg("marker")
    start = 0
    if marker is not None:
        names = [k.name for k in rows]
        if marker not in names:
            raise errors.bad_request(f"Marker {marker} could not be found.")
        start = names.index(marker) + 1
    limit = common.query_int(request, "limit")
    limit = 1000 if limit is None else min(limit, 1000)
    chunk = rows[start : start + limit]
    # Nova links the next page whenever a page is full.
    if chunk and len(chunk) == limit:
        return chunk, [common.next_link(request, chunk[-1].name)]
    return chunk, None


def create(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    params = common.body_of(request, "keypair", _schema(request))
    name = params["name"]
    flavors.check_name(name)
    key_type = params.get("type", SSH)
    user_id = params.get("user_id") or request.context.user_id or ""
    common.enforce(request, "os_compute_api:os-keypairs:create", {"user_id": user_id})
    project_id = request.context.project_id or ""
    quotas.check_key_pairs(session, project_id, user_id)
    private_key = None
    if "public_key" in params:
        public_key = params["public_key"]
    elif key_type == X509:
        private_key, public_key = generate_x509(user_id)
    else:
        private_key, public_key = generate_ssh()
    if find(session, user_id, name) is not None:
        raise errors.conflict(f"Key pair '{name}' already exists.")
    keypair = models.KeyPair(
        user_id=user_id,
        name=name,
        type=key_type,
        fingerprint=fingerprint(public_key, key_type),
        public_key=public_key,
        created_at=common.now(),
    )
    try:
        with session.begin_nested():
            session.add(keypair)
            session.flush()
    except IntegrityError:
        raise errors.conflict(f"Key pair '{name}' already exists.") from None
    body: dict[str, Any] = {}
    if private_key is not None:
        body["private_key"] = private_key
    if microversions.at_least(request, "keypair_type"):
        body["type"] = keypair.type
    body.update(
        name=keypair.name,
        public_key=keypair.public_key,
        fingerprint=keypair.fingerprint,
        user_id=keypair.user_id,
    )
    status = 201 if microversions.at_least(request, "keypair_type") else 200
    return rest.ApiResponse(status, {"keypair": body})


def show(request: rest.ApiRequest, session: Session) -> dict[str, Any]:
    flavors.strict_query(request, ["user_id"], "strict_param_validation")
    user_id = _query_user(request)
    common.enforce(request, "os_compute_api:os-keypairs:show", {"user_id": user_id})
    name = request.path_params["name"]
    keypair = find(session, user_id, name)
    if keypair is None:
        raise _not_found(name, user_id)
    return {"keypair": _full(request, keypair)}


def delete(request: rest.ApiRequest, session: Session) -> rest.ApiResponse:
    flavors.strict_query(request, ["user_id"], "strict_param_validation")
    user_id = _query_user(request)
    common.enforce(request, "os_compute_api:os-keypairs:delete", {"user_id": user_id})
    name = request.path_params["name"]
    keypair = find(session, user_id, name)
    if keypair is None:
        raise _not_found(name, user_id)
    session.delete(keypair)
    return rest.ApiResponse(204 if microversions.at_least(request, "keypair_type") else 202)


ROUTES: list[rest.Route] = [
    rest.Route("GET", "/v2.1/os-keypairs", index),
    rest.Route("POST", "/v2.1/os-keypairs", create),
    rest.Route("GET", "/v2.1/os-keypairs/{name}", show),
    rest.Route("DELETE", "/v2.1/os-keypairs/{name}", delete),
]

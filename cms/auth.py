"""Who is calling: signed tokens (JWT, ES256) naming a subject and a role.

Every gRPC call carries `authorization: Bearer <token>`. A service verifies the token against the
public keys it is configured with (`CMS_AUTH_JWKS`: a JWKS file or an https URL, so a real identity
provider plugs in) and checks that the token is meant for it (the audience names the service).
The roles are the callers the law and the operation know:

- `parent`: the subject is a party id; reaches only the cases where it is a party;
- `caseworker`, `senior_caseworker`: the subject is a staff id;
- `operations`: the people who run the service (reports, reconciliation), not casework;
- `service`: one of the platform's own services or the worker, by name;
- `bank_feed`: the bank's notifications of money in and money returned.

`make run` keeps a local signing key under .data/auth/ and issues the tokens of the processes it
starts; the same key is the dev-only issuer `cmsctl` uses (`CMS_DEV_ISSUER_KEY`), which production
configuration does not set. Verification is PyJWT's, keys are `cryptography`'s: nothing here is
hand-rolled cryptography.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cms.payload_codec import write_owner_only

ROLES = frozenset({"parent", "caseworker", "senior_caseworker", "operations", "service", "bank_feed"})
STAFF_ROLES = frozenset({"caseworker", "senior_caseworker"})
ISSUER = "cms-dev-issuer"
ALGORITHM = "ES256"
AUDIENCE_PREFIX = "cms:"
# Every service a token may be meant for; a service accepts only tokens naming it.
ALL_AUDIENCES = ("case_api", "payments", "notifications", "risk")
# A person's token from the dev issuer lives an hour; a process's lives as long as a demo run may.
PERSON_TOKEN_SECONDS = 3600
PROCESS_TOKEN_SECONDS = 30 * 86400


@dataclass(frozen=True)
class Caller:
    subject: str
    role: str

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


class TokenRefused(Exception):
    """A token that does not prove who is calling (`unauthenticated`) or is not meant for this
    service (`unauthenticated` False: the caller is known but may not come here)."""

    def __init__(self, reason: str, unauthenticated: bool = True):
        super().__init__(reason)
        self.unauthenticated = unauthenticated


def audience_of(service: str) -> str:
    return AUDIENCE_PREFIX + service


# --- keys --------------------------------------------------------------------------------------

def new_private_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _thumbprint(public: dict) -> str:
    canonical = json.dumps({name: public[name] for name in ("crv", "kty", "x", "y")},
                           separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def _public_jwk(private_key_pem: str, with_kid: bool = True) -> dict:
    private = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise ValueError("the signing key is not an EC (P-256) key")
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    jwk.update({"use": "sig", "alg": ALGORITHM})
    if with_kid:
        jwk["kid"] = _thumbprint(jwk)
    return jwk


def jwks_of(private_key_pem: str) -> dict:
    """The public JWKS that verifies tokens signed with `private_key_pem`."""
    return {"keys": [_public_jwk(private_key_pem)]}


def ensure_dev_keys(folder: Path, key_file: Path | None = None) -> tuple[Path, Path]:
    """The local signing key (created once under `folder`, owner-only, unless `key_file` names an
    existing one) and its published JWKS: (private key file, JWKS file). A second `make run` keeps
    the key, so tokens stay valid."""
    folder.mkdir(parents=True, exist_ok=True)
    jwks_file = folder / "jwks.json"
    if key_file is None:
        key_file = folder / "signing-key.pem"
        if not key_file.exists():
            write_owner_only(key_file, new_private_key_pem())
    jwks_file.write_text(json.dumps(jwks_of(key_file.read_text()), indent=2) + "\n")
    return key_file, jwks_file


# --- issuing (dev issuer, make run, tests) --------------------------------------------------------

def issue_token(private_key_pem: str, subject: str, role: str,
                audiences: Iterable[str] = ALL_AUDIENCES, lifetime_seconds: int = PERSON_TOKEN_SECONDS,
                now: float | None = None) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(sorted(ROLES))}")
    if not subject:
        raise ValueError("a token names its subject")
    issued = int(now if now is not None else time.time())
    claims = {"sub": subject, "role": role, "iss": ISSUER, "iat": issued, "nbf": issued,
              "exp": issued + lifetime_seconds, "aud": [audience_of(name) for name in audiences]}
    return jwt.encode(claims, private_key_pem, algorithm=ALGORITHM,
                      headers={"kid": _thumbprint(_public_jwk(private_key_pem, with_kid=False))})


def dev_issuer_token(key_file: Path | None, subject: str, role: str) -> str:
    """A person's token from the dev-only issuer (`CMS_DEV_ISSUER_KEY`), which `make run` enables
    and production configuration does not: refused when no dev key is configured."""
    if key_file is None:
        raise TokenRefused("no dev token issuer here (CMS_DEV_ISSUER_KEY is not set): "
                           "present a token from the identity provider in CMS_TOKEN")
    return issue_token(key_file.read_text(), subject, role)


# --- verifying ------------------------------------------------------------------------------------

class TokenVerifier:
    """Checks a bearer token against the configured public keys (a JWKS file, or a URL that PyJWT's
    client fetches and caches) and returns the caller it names."""

    # Tokens already verified, with their expiry: a caller's next calls skip the signature check
    # (the same bytes were proven once), and an expired one is checked, and refused, afresh.
    CACHE_SIZE = 10_000

    def __init__(self, source: str):
        self._source = source
        self._verified: dict[tuple[str, str], tuple[Caller, float]] = {}
        self._client: jwt.PyJWKClient | None = None
        self._keys: jwt.PyJWKSet | None = None
        if source.startswith(("https://", "http://")):
            self._client = jwt.PyJWKClient(source, cache_keys=True, lifespan=300)
        else:
            self._keys = jwt.PyJWKSet.from_dict(json.loads(Path(source).read_text()))

    def _key_for(self, token: str) -> jwt.PyJWK:
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token)
        assert self._keys is not None
        kid = jwt.get_unverified_header(token).get("kid")
        for key in self._keys.keys:
            if kid is None or key.key_id == kid:
                return key
        raise TokenRefused("token signed with an unknown key")

    def verify(self, token: str, service: str) -> Caller:
        known = self._verified.get((token, service))
        if known is not None and known[1] > time.time():
            return known[0]
        caller, expires = self._verify_afresh(token, service)
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.clear()
        self._verified[(token, service)] = (caller, expires)
        return caller

    def _verify_afresh(self, token: str, service: str) -> tuple[Caller, float]:
        if not token:
            raise TokenRefused("missing token: send `authorization: Bearer <token>`")
        try:
            key = self._key_for(token)
            claims = jwt.decode(token, key=key, algorithms=[ALGORITHM], audience=audience_of(service),
                                options={"require": ["exp", "sub", "aud"]})
        except jwt.ExpiredSignatureError:
            raise TokenRefused("expired token") from None
        except jwt.InvalidAudienceError:
            raise TokenRefused(f"token not meant for {service}", unauthenticated=False) from None
        except (jwt.InvalidSignatureError, jwt.PyJWKClientError):
            raise TokenRefused("badly signed token") from None
        except jwt.InvalidTokenError as error:
            raise TokenRefused(f"invalid token: {error}") from None
        role = claims.get("role")
        if role not in ROLES:
            raise TokenRefused(f"unknown role {role!r} in token")
        return Caller(subject=str(claims["sub"]), role=role), float(claims["exp"])


def main(argv: list[str]) -> int:
    """`python -m cms.auth keys FOLDER`: a signing key and its JWKS (auth-jwks.json) in FOLDER;
    `python -m cms.auth issue KEY_FILE SUBJECT ROLE [SECONDS]`: prints a token signed with it."""
    if len(argv) == 2 and argv[0] == "keys":
        key_file, jwks_file = ensure_dev_keys(Path(argv[1]))
        jwks_file.rename(jwks_file.with_name("auth-jwks.json"))
        print(f"{key_file}\n{jwks_file.with_name('auth-jwks.json')}")
        return 0
    if len(argv) in (4, 5) and argv[0] == "issue":
        lifetime = int(argv[4]) if len(argv) == 5 else PROCESS_TOKEN_SECONDS
        print(issue_token(Path(argv[1]).read_text(), argv[2], argv[3], lifetime_seconds=lifetime))
        return 0
    print(main.__doc__)
    return 2


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))

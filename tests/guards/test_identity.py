"""I8: tokens issued for callers and agents verify to the same identity, and every way a token
can be wrong is refused with a reason that names it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tether.errors import ConfigurationError, IdentityError
from tether.foundation.identity.backends.jwt import JwtIdentityProvider
from tether.foundation.identity.config import open_identity
from tether.foundation.identity.contract import Identity, IdentityProvider
from tether.foundation.secrets.contract import Secret
from tether.foundation.secrets.env import EnvSecrets
from tether.settings import Settings


def _hmac_key() -> Secret:
    return Secret("TETHER_JWT_KEY", secrets.token_urlsafe(48))


def _rsa_pem() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


RSA_PRIVATE, RSA_PUBLIC = _rsa_pem()
OTHER_RSA_PRIVATE, _ = _rsa_pem()
HMAC_KEY = _hmac_key()

Make = Callable[..., JwtIdentityProvider]


@pytest.fixture(params=["HS256", "RS256"])
def make(request: pytest.FixtureRequest) -> Make:
    """Providers of one algorithm; `other=True` gives one with a different key."""

    def make(other: bool = False, **kwargs: object) -> JwtIdentityProvider:
        if request.param == "HS256":
            return JwtIdentityProvider(_hmac_key() if other else HMAC_KEY, **kwargs)  # type: ignore[arg-type]
        pem = OTHER_RSA_PRIVATE if other else RSA_PRIVATE
        return JwtIdentityProvider(Secret("k", pem), algorithm="RS256", **kwargs)  # type: ignore[arg-type]

    return make


def test_an_issued_token_verifies_to_its_subject_kind_and_roles(make: Make) -> None:
    provider = make()
    assert isinstance(provider, IdentityProvider)
    token = provider.issue("agent:research", kind="agent", roles=["reader", "search"])
    identity = provider.verify(token)
    assert (identity.subject, identity.kind, identity.roles) == (
        "agent:research", "agent", ("reader", "search"),
    )  # fmt: skip
    assert identity.claims["aud"] == "tether"
    assert Identity.model_validate_json(identity.model_dump_json()) == identity


def test_a_token_signed_with_another_key_is_refused_as_bad_signature(make: Make) -> None:
    token = make(other=True).issue("mallory")
    with pytest.raises(IdentityError, match="bad signature"):
        make().verify(token)


def test_a_tampered_payload_is_refused_as_bad_signature(make: Make) -> None:
    header, _, signature = make().issue("alice", roles=["reader"]).split(".")
    forged = jwt.utils.base64url_encode(
        b'{"sub":"alice","aud":"tether","iss":"tether","iat":1,"exp":9999999999,"roles":["admin"]}'
    ).decode()
    with pytest.raises(IdentityError, match="bad signature"):
        make().verify(f"{header}.{forged}.{signature}")


def test_an_expired_token_is_refused_as_expired(make: Make) -> None:
    an_hour_ago = time.time() - 3600
    token = make(clock=lambda: an_hour_ago).issue("alice", ttl_seconds=60)
    with pytest.raises(IdentityError, match="expired"):
        make().verify(token)


def test_a_token_for_another_audience_is_refused_as_wrong_audience(make: Make) -> None:
    token = make(audience="billing").issue("alice")
    with pytest.raises(IdentityError, match="wrong audience"):
        make().verify(token)


def test_a_token_from_another_issuer_is_refused_as_wrong_issuer(make: Make) -> None:
    token = make(issuer="someone-else").issue("alice")
    with pytest.raises(IdentityError, match="wrong issuer"):
        make().verify(token)


def test_garbage_is_refused_as_malformed(make: Make) -> None:
    with pytest.raises(IdentityError, match="malformed"):
        make().verify("not-a-token")


def test_a_token_without_expiry_is_refused_as_incomplete() -> None:
    token = jwt.encode(
        {"sub": "alice", "aud": "tether", "iss": "tether", "iat": int(time.time())},
        HMAC_KEY.reveal(),
        algorithm="HS256",
    )
    with pytest.raises(IdentityError, match="missing claim 'exp'"):
        JwtIdentityProvider(HMAC_KEY).verify(token)


def test_an_rs256_provider_refuses_an_hs256_token_signed_with_its_public_key() -> None:
    # The classic key-confusion attack: HMAC keyed with the public PEM.
    token = jwt.api_jws.PyJWS().encode(
        b'{"sub":"mallory","aud":"tether","iss":"tether","iat":1,"exp":9999999999}',
        HMAC_KEY.reveal(),
        algorithm="HS256",
    )
    verifier = JwtIdentityProvider(None, algorithm="RS256", public_key=RSA_PUBLIC)
    with pytest.raises(IdentityError, match="bad algorithm"):
        verifier.verify(token)


def test_a_public_key_alone_verifies_but_cannot_issue() -> None:
    token = JwtIdentityProvider(Secret("k", RSA_PRIVATE), algorithm="RS256").issue("alice")
    verifier = JwtIdentityProvider(None, algorithm="RS256", public_key=RSA_PUBLIC)
    assert verifier.verify(token).subject == "alice"
    with pytest.raises(ConfigurationError, match="only a public key"):
        verifier.issue("alice")


def test_a_short_hs256_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        JwtIdentityProvider(Secret("k", "too-short"))


def test_settings_build_the_provider_with_its_key_from_i7() -> None:
    key = secrets.token_urlsafe(48)
    store = EnvSecrets(env_file="/nonexistent/.env", environ={"TETHER_JWT_KEY": key})
    provider = open_identity(Settings(identity={"options": {"audience": "ops"}}), store)
    token = provider.issue("alice")
    assert jwt.decode(token, key, algorithms=["HS256"], audience="ops")["sub"] == "alice"

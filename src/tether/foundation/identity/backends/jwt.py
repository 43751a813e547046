"""I8 on JSON Web Tokens (PyJWT): HS256 with a shared key, or RS256 with a key pair.

Every token carries `sub`, `aud`, `iss`, `iat` and `exp`, all required on the way in, so a
token minted for another service or without an expiry is refused. Keys come from I7 as
`Secret`s and are revealed only to PyJWT. Each rejection says which check failed, because
"invalid token" alone sends an operator hunting through four possibilities.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization

from tether.errors import ConfigurationError, IdentityError
from tether.foundation.identity.contract import Identity, IdentityKind
from tether.foundation.secrets.contract import Secret

if TYPE_CHECKING:
    from tether.settings import Settings

Algorithm = Literal["HS256", "RS256"]
_MIN_HMAC_KEY = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash


class JwtIdentityProvider:
    def __init__(
        self,
        key: Secret | None,
        *,
        algorithm: Algorithm = "HS256",
        public_key: str | Secret | None = None,
        audience: str = "tether",
        issuer: str = "tether",
        ttl_seconds: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`key` signs (and, for HS256, verifies); RS256 verifies with `public_key`, or with
        the public half of `key`. An RS256 provider with only a public key verifies but
        cannot issue."""
        self.algorithm, self.audience, self.issuer = algorithm, audience, issuer
        self.ttl_seconds, self._clock = ttl_seconds, clock
        self._signing = key.reveal() if key is not None else None
        if algorithm == "HS256":
            if self._signing is None or len(self._signing.encode()) < _MIN_HMAC_KEY:
                raise ConfigurationError(
                    f"an HS256 identity key must be at least {_MIN_HMAC_KEY} bytes "
                    "(RFC 7518); generate one with `python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))'`"
                )
            self._verifying: Any = self._signing
        elif public_key is not None:
            pem = public_key.reveal() if isinstance(public_key, Secret) else public_key
            self._verifying = serialization.load_pem_public_key(pem.encode())
        elif self._signing is not None:
            private = serialization.load_pem_private_key(self._signing.encode(), password=None)
            self._verifying = private.public_key()
        else:
            raise ConfigurationError("an RS256 identity provider needs a private or public key")

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> JwtIdentityProvider:
        """Options from `[identity]`: `key` and `public_key` (Secrets fetched through I7 by the
        loader's caller) and `options` (`algorithm`, `audience`, `issuer`, `ttl_seconds`)."""
        return cls(**options)

    def issue(
        self,
        subject: str,
        *,
        kind: IdentityKind = "caller",
        roles: Sequence[str] = (),
        ttl_seconds: float | None = None,
    ) -> str:
        if self._signing is None:
            raise ConfigurationError("this identity provider holds only a public key: it verifies")
        now = int(self._clock())
        claims = {
            "sub": subject,
            "aud": self.audience,
            "iss": self.issuer,
            "iat": now,
            "exp": now + int(self.ttl_seconds if ttl_seconds is None else ttl_seconds),
            "kind": kind,
            "roles": list(roles),
        }
        return jwt.encode(claims, self._signing, algorithm=self.algorithm)

    def verify(self, token: str) -> Identity:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._verifying,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["sub", "aud", "iss", "exp", "iat"]},
            )
        except jwt.ExpiredSignatureError as e:
            raise IdentityError("token expired; ask its issuer for a new one") from e
        except jwt.InvalidAudienceError as e:
            raise IdentityError(
                f"wrong audience: the token is not addressed to {self.audience!r}"
            ) from e
        except jwt.InvalidIssuerError as e:
            raise IdentityError(f"wrong issuer: the token was not issued by {self.issuer!r}") from e
        except jwt.InvalidSignatureError as e:
            raise IdentityError("bad signature: the token was not signed with this key") from e
        except jwt.InvalidAlgorithmError as e:
            raise IdentityError(f"bad algorithm: only {self.algorithm} tokens are accepted") from e
        except jwt.MissingRequiredClaimError as e:
            raise IdentityError(f"missing claim {e.claim!r}: the token is incomplete") from e
        except jwt.InvalidTokenError as e:
            raise IdentityError(f"malformed token: {e}") from e
        kind = claims.get("kind", "caller")
        if kind not in ("caller", "agent"):
            raise IdentityError(f"unknown identity kind {kind!r} (caller or agent)")
        return Identity(
            subject=claims["sub"], kind=kind, roles=tuple(claims.get("roles", ())), claims=claims
        )

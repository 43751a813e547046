"""I8 contract, run against every backend in `tether.identity`: a token a provider issues
verifies, on any provider holding the same key, to the subject, kind and roles it was issued
for; a token that is expired, signed with another key, altered or not a token at all is refused
with an IdentityError.

Each provider is built as `[identity]` configuration builds it: through the loader, its key a
Secret from I7 (`key=`), so a new backend is tested by adding its entry point.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.contract.backends import environment, installed
from tether.errors import IdentityError
from tether.foundation.identity.contract import Identity, IdentityProvider
from tether.foundation.loader import open_backend
from tether.foundation.secrets.contract import Secret

Make = Callable[[Secret], IdentityProvider]


def _key() -> Secret:
    return Secret("TETHER_JWT_KEY", secrets.token_urlsafe(48))


@pytest.fixture(params=installed("identity"))
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Make:
    """A provider of this backend holding the given key."""

    def make(key: Secret) -> IdentityProvider:
        with environment(request.param, "identity", tmp_path) as (settings, options):
            return open_backend(
                "identity", request.param, IdentityProvider, settings, key=key, **options
            )

    return make


@pytest.mark.parametrize("kind", ["caller", "agent"])
def test_a_token_verifies_to_what_it_was_issued_for(make: Make, kind: str) -> None:
    provider = make(_key())
    token = provider.issue("ana", kind=kind, roles=["ops", "billing"])
    who = provider.verify(token)
    assert (who.subject, who.kind, who.roles) == ("ana", kind, ("ops", "billing"))
    assert Identity.model_validate(who.model_dump(mode="json")) == who  # as a run stores it


def test_a_provider_built_again_with_the_same_key_accepts_earlier_tokens(make: Make) -> None:
    key = _key()
    token = make(key).issue("svc-reports", kind="agent")
    assert make(key).verify(token).subject == "svc-reports"  # a restarted or second worker


def test_a_token_signed_with_another_key_is_refused(make: Make) -> None:
    token = make(_key()).issue("ana")
    with pytest.raises(IdentityError):
        make(_key()).verify(token)


def test_an_altered_token_is_refused(make: Make) -> None:
    provider = make(_key())
    token = provider.issue("ana", roles=["reader"])
    middle = len(token) // 2
    altered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    with pytest.raises(IdentityError):
        provider.verify(altered)


def test_an_expired_token_is_refused(make: Make) -> None:
    provider = make(_key())
    with pytest.raises(IdentityError, match="expired"):
        provider.verify(provider.issue("ana", ttl_seconds=-60))


@pytest.mark.parametrize("garbage", ["", "not-a-token", "a.b.c"])
def test_what_is_not_a_token_is_refused(make: Make, garbage: str) -> None:
    with pytest.raises(IdentityError):
        make(_key()).verify(garbage)

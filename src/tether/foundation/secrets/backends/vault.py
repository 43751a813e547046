"""I7 on HashiCorp Vault or OpenBao: KV version 2, through hvac.

A bare name (`ANTHROPIC_API_KEY`) is a key of the one secret at `mount/path` (default
`secret/tether`), so a deployment keeps all of tether's credentials in one place; a name with
slashes (`team/slack/BOT_TOKEN`) is key `BOT_TOKEN` of the secret `team/slack`. hvac's errors
become tether's here, and none of them carries a secret value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.errors import ConfigurationError, SecretNotFound
from tether.foundation.secrets.contract import Secret

if TYPE_CHECKING:
    from tether.settings import Settings


class VaultSecrets:
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        mount: str = "secret",
        path: str = "tether",
        timeout: float = 10.0,
    ) -> None:
        import hvac

        # url and token None: hvac reads VAULT_ADDR and VAULT_TOKEN, as the vault CLI does.
        self._client = hvac.Client(url=url, token=token, timeout=timeout)
        self.mount, self.path = mount, path

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> VaultSecrets:
        """Options from `[secrets]`: `url`, `mount`, `path`, `timeout`."""
        return cls(**options)

    def get(self, name: str) -> Secret:
        path, _, key = name.rpartition("/")
        path = path or self.path
        data = self._read(path, name)
        value = data.get(key)
        if not isinstance(value, str):
            raise SecretNotFound(name, f"vault {self.mount}/{path}")
        return Secret(name, value)

    def _read(self, path: str, name: str) -> dict[str, Any]:
        import hvac.exceptions
        import requests

        where = f"vault {self.mount}/{path}"
        try:
            response = self._client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self.mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath as e:
            raise SecretNotFound(name, where) from e
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized) as e:
            raise ConfigurationError(
                f"{where} refused the token (set VAULT_TOKEN to one whose policy can read it)"
            ) from e
        except hvac.exceptions.VaultError as e:
            raise ConfigurationError(f"{where} failed: {type(e).__name__}") from e
        except requests.exceptions.RequestException as e:
            raise ConfigurationError(
                f"cannot reach vault at {self._client.url} ({type(e).__name__}); "
                "check the url option or VAULT_ADDR"
            ) from e
        data: dict[str, Any] = response["data"]["data"] or {}
        return data

"""The local I7 backend: process environment first, then a `.env` file.

The environment wins so that a deployment can override a developer's `.env` without editing it.
The file is read on every lookup, so a key added to it is seen without a restart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dotenv import dotenv_values

from tether.errors import SecretNotFound
from tether.foundation.secrets.contract import Secret

if TYPE_CHECKING:
    from tether.settings import Settings


class EnvSecrets:
    def __init__(self, env_file: str | Path = ".env", environ: Mapping[str, str] | None = None):
        self.env_file = Path(env_file)
        self._environ = os.environ if environ is None else environ

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> EnvSecrets:
        """Options from `[secrets]`: `env_file` (default `.env`)."""
        return cls(**options)

    def get(self, name: str) -> Secret:
        value = self._environ.get(name)
        if value is None and self.env_file.is_file():
            value = dotenv_values(self.env_file).get(name)
        if value is None:
            raise SecretNotFound(name, f"the environment or {self.env_file}")
        return Secret(name, value)

"""The local blob store: one file per blob under `<data dir>/blobs/ab/cdef...`.

Writes go to a temporary file and are renamed into place, so a crash never leaves a torn
blob under its address, and two processes writing the same bytes race harmlessly.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tether.settings import Settings


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> FileBlobStore:
        """One file per blob under the data directory's `blobs/`."""
        return cls(settings.data_path / "blobs", **options)

    def _path(self, address: str) -> Path:
        algo, _, digest = address.partition(":")
        if (
            algo != "sha256"
            or len(digest) != 64
            or not all(c in "0123456789abcdef" for c in digest)
        ):
            raise KeyError(f"not a blob address: {address!r}")
        return self.root / digest[:2] / digest[2:]

    def put(self, data: bytes) -> str:
        address = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self._path(address)
        if path.exists():
            return address
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return address

    def get(self, address: str) -> bytes:
        try:
            return self._path(address).read_bytes()
        except FileNotFoundError:
            raise KeyError(f"blob {address} is missing from {self.root}") from None

    def delete(self, address: str) -> int:
        path = self._path(address)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def addresses(self) -> list[tuple[str, float, int]]:
        if not self.root.exists():
            return []
        out = []
        for sub in self.root.iterdir():
            if not sub.is_dir():
                continue
            for f in sub.iterdir():
                if f.name.startswith(".tmp-"):
                    continue
                st = f.stat()
                out.append((f"sha256:{sub.name}{f.name}", st.st_mtime, st.st_size))
        return out

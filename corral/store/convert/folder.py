"""The files of an uploaded Hugging Face folder: names checked, JSON files read with errors that name them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from corral.store.convert.errors import ConvertError

__all__ = ["HFFolder", "check_file_name"]

MAX_JSON_BYTES = 64 << 20  # tokenizer.json of a 256k vocabulary is ~35 MB; a config is kilobytes


def check_file_name(name: str) -> None:
    """Refuse a file name that would leave the folder or mean different things on different systems."""
    if not isinstance(name, str) or not name:
        raise ConvertError(f"invalid file name {name!r} in the folder")
    if "\\" in name or "\x00" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ConvertError(f"invalid file name {name!r}: it must be a relative path inside the folder")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise ConvertError(f"invalid file name {name!r}: it must be a relative path inside the folder")


class HFFolder:
    """Names relative to the folder (``config.json``, ``1_Pooling/config.json``) mapped to readable paths."""

    def __init__(self, files: Mapping[str, Path]) -> None:
        for name in files:
            check_file_name(name)
        self.files = {name: Path(path) for name, path in files.items()}

    def __contains__(self, name: object) -> bool:
        return name in self.files

    def path(self, name: str) -> Path:
        try:
            return self.files[name]
        except KeyError:
            raise ConvertError(f"the folder has no {name}") from None

    def top_level(self, suffix: str) -> list[str]:
        """Names of the folder's own files (not in sub-folders) that end with ``suffix``, sorted."""
        return sorted(n for n in self.files if "/" not in n and n.endswith(suffix))

    def json(self, name: str) -> Any:
        path = self.path(name)
        try:
            size = path.stat().st_size
            if size > MAX_JSON_BYTES:
                raise ConvertError(f"{name} is too large ({size} bytes)")
            data = path.read_bytes()
        except OSError as e:
            raise ConvertError(f"cannot read {name}: {e.strerror or e}") from None
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise ConvertError(f"{name} is not valid JSON: {e}") from None

    def json_object(self, name: str) -> dict[str, Any]:
        value = self.json(name)
        if not isinstance(value, dict):
            raise ConvertError(f"{name} must hold a JSON object")
        return value

    def optional_object(self, name: str) -> dict[str, Any]:
        """The JSON object in ``name``, or ``{}`` when the folder has no such file."""
        return self.json_object(name) if name in self.files else {}

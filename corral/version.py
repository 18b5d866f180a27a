"""Versions: corral's own, and the Ollama release whose API corral matches (clients gate features on it)."""

from __future__ import annotations

__version__ = "0.1.0"
OLLAMA_VERSION = "0.33.0"

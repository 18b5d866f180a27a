"""Server settings, read once from the ``OLLAMA_*`` environment (reference §7), plus corral's own knobs.

Values are trimmed of spaces and quotes as Ollama does; a number that does not parse falls back to its
default with a warning; a boolean that does not parse counts as true (Ollama's rule).
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from corral.api.duration import parse_env_duration

log = logging.getLogger("corral.config")

DEFAULT_PORT = 11434


def _raw(env: dict[str, str], key: str) -> str:
    return env.get(key, "").strip().strip("\"'").strip()


def _bool(env: dict[str, str], key: str) -> bool:
    v = _raw(env, key)
    if not v:
        return False
    return v.lower() not in ("0", "false", "f", "no", "off")


def _int(env: dict[str, str], key: str, default: int) -> int:
    v = _raw(env, key)
    if not v:
        return default
    try:
        return int(v)
    except ValueError:
        log.warning("invalid %s=%r, using %d", key, v, default)
        return default




TRACE = 5  # below logging.DEBUG, as Ollama's slog trace level sits below debug
logging.addLevelName(TRACE, "TRACE")


def log_level(value: str) -> int:
    """``OLLAMA_DEBUG`` as Ollama reads it: a boolean (true: debug), else an integer that steps the level down
    by one for each unit (1 debug, 2 trace; a negative one steps it up: -1 warnings only)."""
    v = value.strip().strip("\"'").strip()
    if not v:
        return logging.INFO
    if v.lower() in ("1", "t", "true", "yes", "on"):
        return logging.DEBUG
    if v.lower() in ("0", "f", "false", "no", "off"):
        return logging.INFO
    try:
        steps = int(v)
    except ValueError:
        return logging.INFO
    return {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}.get(
        steps, TRACE if steps > 1 else logging.ERROR)


KV_CACHE_TYPES = ("f16", "q8_0", "q4_0")


def kv_cache_type(value: str) -> str:
    """``OLLAMA_KV_CACHE_TYPE``; an unknown type is f16, with a warning (Ollama falls back the same way)."""
    v = value.lower()
    if not v:
        return "f16"
    if v not in KV_CACHE_TYPES:
        log.warning("unsupported OLLAMA_KV_CACHE_TYPE=%r, using f16", value)
        return "f16"
    return v


def parse_api_keys(text: str) -> list[str]:
    """Keys from ``CORRAL_API_KEYS`` (comma-separated) or a keys file (one a line); blank lines and lines
    that start with ``#`` are skipped."""
    lines = (line.strip() for line in text.replace(",", "\n").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def parse_host(value: str) -> tuple[str, int]:
    """``OLLAMA_HOST`` as the server binds it: host, host:port, :port, scheme://host:port/path."""
    v = value.strip().strip("\"'")
    if not v:
        return "127.0.0.1", DEFAULT_PORT
    scheme, _, rest = v.rpartition("://")
    default_port = {"http": 80, "https": 443}.get(scheme, DEFAULT_PORT) if scheme else DEFAULT_PORT
    rest = rest.split("/", 1)[0]
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = int(tail[1:]) if tail.startswith(":") and tail[1:] else default_port
        return host, port
    host, sep, port_text = rest.rpartition(":")
    if not sep:
        return rest or "127.0.0.1", default_port
    return host or "127.0.0.1", int(port_text) if port_text else default_port


def parse_bytes(text: str) -> int | None:
    """``2GB``, ``512MiB``, ``1000000`` → bytes; empty → None."""
    v = text.strip().strip("\"'").upper().replace(" ", "")
    if not v:
        return None
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)?", v)
    if not m:
        log.warning("invalid size %r ignored", text)
        return None
    mult = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
            "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}[m.group(2) or "B"]
    return int(float(m.group(1)) * mult)


def parse_replicas(text: str) -> dict[str, int]:
    """``CORRAL_REPLICAS``: a number for every model, or ``name=N`` entries separated by commas (a bare
    number among them sets the rest). Entries that do not parse are ignored."""
    out: dict[str, int] = {}
    for part in text.split(","):
        name, _, count = part.strip().rpartition("=")
        try:
            out[name.strip()] = max(1, int(count))
        except ValueError:
            continue
    return out


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    models: Path = field(default_factory=lambda: Path.home() / ".ollama" / "models")
    origins: list[str] = field(default_factory=list)
    keep_alive: float = 300.0
    context_length: int = 4096
    num_parallel: int = 1
    max_loaded_models: int = 0
    max_queue: int = 512
    load_timeout: float = 300.0
    noprune: bool = False
    log_level: int = logging.INFO  # OLLAMA_DEBUG
    log_format: str = "text"  # corral: CORRAL_LOG_FORMAT=json writes one JSON object a line
    api_keys: list[str] = field(default_factory=list, repr=False)  # corral: CORRAL_API_KEYS
    api_keys_file: Path | None = None  # corral: CORRAL_API_KEYS_FILE, reread when it changes
    max_memory: int | None = None  # corral: cap on what the scheduler treats as available memory
    bundled: bool = True  # corral: import the bundled models into the store at start-up
    registry: str = ""  # corral: CORRAL_REGISTRY serves registry.ollama.ai names from this registry instead
    flash_attention: bool | None = None  # OLLAMA_FLASH_ATTENTION: None = llama.cpp decides (auto)
    kv_cache_type: str = "f16"  # OLLAMA_KV_CACHE_TYPE: f16, q8_0 or q4_0
    ngram_draft: int = 0  # corral: CORRAL_NGRAM_DRAFT, n-gram speculation's draft length when a request sets none
    prompt_cache_mb: int = 0  # corral: CORRAL_PROMPT_CACHE_MB, host memory a runner keeps evicted prompts in
    prompt_cache_dir: Path | None = None  # corral: CORRAL_PROMPT_CACHE_DIR, where they survive unloads and restarts
    cluster: str = ""  # corral: CORRAL_RAY_ADDRESS or `serve --cluster`: runners as actors on this Ray cluster
    replicas: dict[str, int] = field(default_factory=dict)  # corral: CORRAL_REPLICAS ("" key: every model)
    advertise_url: str = ""  # corral: CORRAL_ADVERTISE_URL, how cluster nodes reach this server for blobs

    def replicas_for(self, name: str) -> int:
        """How many runners of a busy model a cluster may hold (1 on one machine)."""
        if not self.cluster:
            return 1
        default = self.replicas.get("", 1)
        return max(1, self.replicas.get(name, self.replicas.get(name.removesuffix(":latest"), default)))

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        host, port = parse_host(_raw(e, "OLLAMA_HOST"))
        models = _raw(e, "OLLAMA_MODELS")
        origins = [o.strip() for o in _raw(e, "OLLAMA_ORIGINS").split(",") if o.strip()]
        load_timeout = parse_env_duration(_raw(e, "OLLAMA_LOAD_TIMEOUT"), 300.0)
        return cls(
            host=host, port=port,
            models=Path(models).expanduser() if models else Path.home() / ".ollama" / "models",
            origins=origins,
            keep_alive=parse_env_duration(_raw(e, "OLLAMA_KEEP_ALIVE"), 300.0),
            context_length=_int(e, "OLLAMA_CONTEXT_LENGTH", 0) or 4096,
            num_parallel=max(1, _int(e, "OLLAMA_NUM_PARALLEL", 1)),
            max_loaded_models=max(0, _int(e, "OLLAMA_MAX_LOADED_MODELS", 0)),
            max_queue=max(1, _int(e, "OLLAMA_MAX_QUEUE", 512)),
            load_timeout=load_timeout if load_timeout > 0 else math.inf,
            noprune=_bool(e, "OLLAMA_NOPRUNE"),
            log_level=log_level(_raw(e, "OLLAMA_DEBUG")),
            log_format="json" if _raw(e, "CORRAL_LOG_FORMAT").lower() == "json" else "text",
            api_keys=parse_api_keys(_raw(e, "CORRAL_API_KEYS")),
            api_keys_file=Path(keys_file).expanduser() if (keys_file := _raw(e, "CORRAL_API_KEYS_FILE")) else None,
            max_memory=parse_bytes(_raw(e, "CORRAL_MAX_MEMORY")),
            bundled=not _bool(e, "CORRAL_NO_BUNDLED"),
            registry=_raw(e, "CORRAL_REGISTRY"),
            flash_attention=_bool(e, "OLLAMA_FLASH_ATTENTION") if _raw(e, "OLLAMA_FLASH_ATTENTION") else None,
            kv_cache_type=kv_cache_type(_raw(e, "OLLAMA_KV_CACHE_TYPE")),
            ngram_draft=max(0, _int(e, "CORRAL_NGRAM_DRAFT", 0)),
            prompt_cache_mb=max(0, _int(e, "CORRAL_PROMPT_CACHE_MB", 0)),
            prompt_cache_dir=Path(d).expanduser() if (d := _raw(e, "CORRAL_PROMPT_CACHE_DIR")) else None,
            cluster=_raw(e, "CORRAL_RAY_ADDRESS"),
            replicas=parse_replicas(_raw(e, "CORRAL_REPLICAS")),
            advertise_url=_raw(e, "CORRAL_ADVERTISE_URL").rstrip("/"),
        )

    @property
    def debug(self) -> bool:
        return self.log_level <= logging.DEBUG

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys) or self.api_keys_file is not None

    def as_env_map(self) -> dict[str, object]:
        """What the server logs at start-up, as Ollama logs its config map (the keys themselves never)."""
        return {
            "OLLAMA_HOST": f"http://{self.host}:{self.port}", "OLLAMA_MODELS": str(self.models),
            "OLLAMA_ORIGINS": self.origins, "OLLAMA_KEEP_ALIVE": self.keep_alive,
            "OLLAMA_CONTEXT_LENGTH": self.context_length, "OLLAMA_NUM_PARALLEL": self.num_parallel,
            "OLLAMA_MAX_LOADED_MODELS": self.max_loaded_models, "OLLAMA_MAX_QUEUE": self.max_queue,
            "OLLAMA_LOAD_TIMEOUT": self.load_timeout, "OLLAMA_NOPRUNE": self.noprune,
            "OLLAMA_DEBUG": logging.getLevelName(self.log_level), "CORRAL_MAX_MEMORY": self.max_memory,
            "CORRAL_REGISTRY": self.registry,
            "CORRAL_API_KEYS": f"{len(self.api_keys)} key(s)" if self.api_keys else "",
            "CORRAL_API_KEYS_FILE": str(self.api_keys_file or ""), "CORRAL_LOG_FORMAT": self.log_format,
            "OLLAMA_FLASH_ATTENTION": self.flash_attention, "OLLAMA_KV_CACHE_TYPE": self.kv_cache_type,
            "CORRAL_NGRAM_DRAFT": self.ngram_draft, "CORRAL_PROMPT_CACHE_MB": self.prompt_cache_mb,
            "CORRAL_PROMPT_CACHE_DIR": str(self.prompt_cache_dir or ""),
            "CORRAL_RAY_ADDRESS": self.cluster, "CORRAL_REPLICAS": self.replicas,
        }

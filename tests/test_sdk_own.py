"""corral's SDK: its surface against ollama-python's, and the improvements, over real sockets (pytest-httpserver).

The same behaviours against a real ``corral serve`` are in tests/test_sdk_live.py.
"""

from __future__ import annotations

import collections.abc
import doctest
import enum
import hashlib
import inspect
import json
import os
import socket
import subprocess
import sys
import threading
import time
import typing
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, TypedDict

import httpx
import pytest
from pydantic import BaseModel
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

import corral
import corral.client
from corral.client import _host, _model
from corral.client._base import _copy_images
from corral.client._client import CONNECTION_ERROR_MESSAGE, AsyncClient, Client
from corral.client._errors import ResponseError
from corral.client._types import ChatRequest, Image, ShowResponse
from corral.client._utils import convert_function_to_tool

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- the public surface -------------------------------------------------------------------------

_NOT_EXPORTS = {"annotations", "TYPE_CHECKING", "Any"}  # names the module's own code needs


def _public_names(module: ModuleType) -> set[str]:
    return {
        name
        for name in dir(module)
        if not name.startswith("_")
        and name not in _NOT_EXPORTS
        and not isinstance(getattr(module, name), ModuleType)
    }


def test_all_matches_the_exports() -> None:
    assert sorted(corral.__all__) == sorted(set(corral.__all__))
    assert set(corral.__all__) == _public_names(corral)
    assert set(corral.client.__all__) == _public_names(corral.client)


def test_all_covers_ollama_python() -> None:
    import ollama  # the official package, installed for the tests

    functions = {"chat", "generate", "embed", "embeddings", "pull", "push", "create", "create_blob"}
    functions |= {"delete", "list", "copy", "show", "ps", "stop", "web_search", "web_fetch", "systemone"}
    assert set(ollama.__all__) <= set(corral.__all__)
    assert functions <= set(corral.__all__)
    for name in functions:
        assert callable(getattr(corral, name))


def _ollama_modules() -> list[tuple[ModuleType, ModuleType]]:
    import ollama
    import ollama._types
    import ollama._utils

    import corral.client._client
    import corral.client._types
    import corral.client._utils

    return [
        (ollama, corral),
        (sys.modules["ollama._client"], corral.client._client),
        (ollama._types, corral.client._types),
        (ollama._utils, corral.client._utils),
    ]


def test_every_ollama_python_name_exists() -> None:
    for theirs, ours in _ollama_modules():
        for name, value in vars(theirs).items():
            mine = getattr(theirs, "__name__", "") == "ollama" and name in ("_client", "_types", "_utils")
            defined_there = getattr(value, "__module__", "").startswith("ollama") or mine
            constant = name.isupper() or name == "__version__"
            if (defined_there or constant) and not isinstance(value, ModuleType | typing.TypeVar):
                assert hasattr(ours, name), f"{theirs.__name__}.{name} is missing from {ours.__name__}"


def _shape(func: Any, *, defaults: bool = True) -> list[tuple[str, Any, Any]]:
    params = inspect.signature(func).parameters.values()
    return [(p.name, p.kind, p.default if defaults else None) for p in params]


@pytest.mark.parametrize("name", ["Client", "AsyncClient"])
def test_every_ollama_python_method_has_the_same_signature(name: str) -> None:
    import ollama

    theirs, ours = getattr(ollama, name), getattr(corral, name)
    methods = [m for m, v in vars(theirs).items()
               if inspect.isfunction(v) and (not m.startswith("__") or m in ("__init__", "__enter__", "__aenter__"))]
    assert len(methods) > 15
    for method in methods:
        their_method, our_method = getattr(theirs, method), getattr(ours, method)
        assert inspect.iscoroutinefunction(their_method) == inspect.iscoroutinefunction(our_method), method
        if method == "__init__":  # ours spells out timeout= and headers= after host, for discoverability
            assert _shape(our_method)[:2] == _shape(their_method)[:2]
            continue
        if method in ("_request", "_request_raw"):  # ours names (method, url) where theirs has *args
            continue
        assert _shape(our_method) == _shape(their_method), method
        # Each of their overloads (stream=False, stream=True) has a twin among ours (which add stream: bool).
        ours_overloads = [_shape(o, defaults=False) for o in typing.get_overloads(our_method)]
        for overload in typing.get_overloads(their_method):
            assert _shape(overload, defaults=False) in ours_overloads, method


def test_every_ollama_python_field_exists() -> None:
    import ollama._types
    from pydantic import BaseModel as PydanticModel

    import corral.client._types

    def models(owner: Any) -> Iterator[tuple[str, Any]]:
        for name, value in vars(owner).items():
            if isinstance(value, type) and issubclass(value, PydanticModel) and value.__module__.startswith("ollama"):
                yield name, value
                yield from ((f"{name}.{n}", v) for n, v in models(value))

    checked = 0
    for path, theirs in models(ollama._types):
        ours: Any = corral.client._types
        for part in path.split("."):
            ours = getattr(ours, part)
        for field, info in theirs.model_fields.items():
            assert field in ours.model_fields, f"{path}.{field}"
            assert ours.model_fields[field].alias == info.alias, f"{path}.{field}"
            checked += 1
    assert checked > 150


def test_private_modules_import_under_corral() -> None:
    code = (
        "from corral._types import Options, Message\n"
        "from corral._client import Client, CONNECTION_ERROR_MESSAGE\n"
        "from corral._utils import convert_function_to_tool, _parse_docstring\n"
        "import corral, corral.client\n"
        "assert corral._types is corral.client._types and corral._utils is corral.client._utils\n"
        "assert isinstance(corral._client, corral.Client)  # the default client, as ollama._client is\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_parse_docstring_has_ollama_pythons_shape() -> None:
    from ollama._utils import _parse_docstring as theirs

    from corral.client._utils import _parse_docstring as ours

    doc = "Add.\n\nArgs:\n  x (int): first\n     continued\n  y: second\nReturns:\n  z\n"
    mine = ours(doc)
    assert mine[str(hash(doc))] == theirs(doc)[str(hash(doc))].strip() == "Add."
    assert (mine["x"], mine["y"]) == (theirs(doc)["x"], theirs(doc)["y"]) == ("first continued", "second")
    assert mine["missing"] == "" and ours(None) == {}


def test_streams_are_generators(closed_port_url: str) -> None:
    stream = Client(closed_port_url).chat("m", stream=True)
    assert isinstance(stream, collections.abc.Generator)
    with pytest.raises(ConnectionError):
        stream.send(None)
    assert issubclass(corral.AsyncStream, collections.abc.AsyncGenerator)


def test_timeout_is_documented() -> None:
    for cls in (Client, AsyncClient):
        assert "timeout" in (cls.__doc__ or "") and "httpx.TimeoutException" in (cls.__doc__ or "")
        assert "timeout" in inspect.signature(cls).parameters
        for method in ("generate", "chat", "pull", "push", "create"):
            assert "timeout" in (getattr(cls, method).__doc__ or ""), f"{cls.__name__}.{method}"


def test_import_is_light_and_lazy() -> None:
    code = (
        "import sys, corral\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('llama_cpp', 'starlette', 'uvicorn', 'numpy')"
        " or m.startswith(('corral.server', 'corral.runner', 'corral.scheduler', 'corral.store'))]\n"
        "assert not heavy, heavy\n"
        "assert '_client' not in vars(corral), 'default client made at import'\n"
        "import os; os.environ['OLLAMA_HOST'] = 'example.com:1234'\n"
        "print(corral._client._client.base_url)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "http://example.com:1234"


def test_doctests() -> None:
    for module in (_host, _model):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


def test_client_options() -> None:
    client = Client("0.0.0.0", timeout=12.5, headers={"X-Trace": "1", "user-agent": "mine"})
    assert str(client._client.base_url) == "http://127.0.0.1:11434"
    assert client._client.timeout == httpx.Timeout(12.5)
    assert client._client.headers["x-trace"] == "1"
    assert client._client.headers["user-agent"].startswith("ollama-python/0.6.3 ")
    assert "corral/" in client._client.headers["user-agent"]
    assert Client()._client.timeout == httpx.Timeout(None)


# -- connection errors on every path ------------------------------------------------------------


def test_stream_connection_error(closed_port_url: str) -> None:
    client = Client(closed_port_url)
    with pytest.raises(ConnectionError, match=CONNECTION_ERROR_MESSAGE):
        for _ in client.chat("m", messages=[{"role": "user", "content": "hi"}], stream=True):
            pass
    with pytest.raises(ConnectionError, match=CONNECTION_ERROR_MESSAGE):
        list(client.pull("m", stream=True))
    with pytest.raises(ConnectionError, match=CONNECTION_ERROR_MESSAGE):
        client.delete("m")


@pytest.mark.anyio
async def test_async_stream_connection_error(closed_port_url: str) -> None:
    client = AsyncClient(closed_port_url)
    with pytest.raises(ConnectionError, match=CONNECTION_ERROR_MESSAGE):
        async for _ in await client.generate("m", "hi", stream=True):
            pass


# -- stream errors ------------------------------------------------------------------------------


def _ndjson(*parts: dict[str, Any]) -> Response:
    return Response((json.dumps(part) + "\n" for part in parts), content_type="application/x-ndjson")


def test_stream_error_line_and_http_error(httpserver: HTTPServer) -> None:
    parts = ({"model": "m", "response": "a", "done": False}, {"error": "out of memory"})
    httpserver.expect_request("/api/generate").respond_with_handler(lambda _: _ndjson(*parts))
    stream = Client(httpserver.url_for("/")).generate("m", "hi", stream=True)
    assert next(stream).response == "a"
    with pytest.raises(ResponseError) as info:
        next(stream)
    assert (info.value.error, info.value.status_code) == ("out of memory", -1)

    httpserver.clear()
    httpserver.expect_request("/api/chat").respond_with_json({"error": 'model "x" not found'}, status=404)
    with pytest.raises(ResponseError) as info:
        list(Client(httpserver.url_for("/")).chat("x", stream=True))
    assert str(info.value) == 'model "x" not found (status code: 404)'


def test_response_error_bodies() -> None:
    assert ResponseError('{"error": "boom"}', 500).error == "boom"
    assert ResponseError("[1, 2]", 500).error == "[1, 2]"  # JSON, but not an error object
    assert ResponseError("plain", 502).error == "plain"


# -- closing a stream closes the response ---------------------------------------------------------


def _endless_stream(closed: threading.Event) -> Any:
    def handler(_: Request) -> Response:
        def parts() -> Iterator[str]:
            try:
                for i in range(500):
                    yield json.dumps({"model": "m", "response": str(i), "done": False}) + "\n"
                    time.sleep(0.01)
            finally:
                closed.set()

        return Response(parts(), content_type="application/x-ndjson")

    return handler


def test_closing_a_stream_disconnects(httpserver: HTTPServer) -> None:
    closed = threading.Event()
    httpserver.expect_request("/api/generate").respond_with_handler(_endless_stream(closed))
    client = Client(httpserver.url_for("/"))
    with client.generate("m", "hi", stream=True) as stream:
        assert [next(stream).response for _ in range(3)] == ["0", "1", "2"]
    assert closed.wait(3), "the server kept streaming after the client closed"

    closed.clear()
    stream = client.generate("m", "hi", stream=True)
    next(stream)
    stream.close()
    assert closed.wait(3)


@pytest.mark.anyio
async def test_async_closing_a_stream_disconnects(httpserver: HTTPServer) -> None:
    closed = threading.Event()
    httpserver.expect_request("/api/generate").respond_with_handler(_endless_stream(closed))
    stream = await AsyncClient(httpserver.url_for("/")).generate("m", "hi", stream=True)
    async with stream:
        async for _ in stream:
            break
    assert closed.wait(3)


def test_stream_is_lazy(closed_port_url: str) -> None:
    stream = Client(closed_port_url).chat("m", stream=True)  # nothing sent yet, so no error yet
    stream.close()


# -- stop -----------------------------------------------------------------------------------------

_STOP_BODY = {"model": "m", "prompt": "", "keep_alive": 0, "stream": False}
_UNLOADED = {"model": "m", "response": "", "done": True, "done_reason": "unload"}


def test_stop(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    httpserver.expect_request("/api/generate", method="POST", json=_STOP_BODY).respond_with_json(_UNLOADED)
    assert Client(httpserver.url_for("/")).stop("m").done_reason == "unload"

    monkeypatch.setattr(corral._client, "_client", httpx.Client(base_url=httpserver.url_for("/")))
    assert corral.stop("m").done_reason == "unload"


@pytest.mark.anyio
async def test_async_stop(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/generate", method="POST", json=_STOP_BODY).respond_with_json(_UNLOADED)
    assert (await AsyncClient(httpserver.url_for("/")).stop("m")).done_reason == "unload"


@pytest.mark.anyio
async def test_async_web_search_requires_bearer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_API_KEY", raising=False)
    with pytest.raises(ValueError, match="Bearer"):
        await AsyncClient().web_search("query")


@pytest.mark.anyio
async def test_async_create_blob(httpserver: HTTPServer, tmp_path: Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"x" * 100_000)
    digest = "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest()
    httpserver.expect_request(
        f"/api/blobs/{digest}", method="POST", data=blob.read_bytes()
    ).respond_with_data("", status=201)
    assert await AsyncClient(httpserver.url_for("/")).create_blob(blob) == digest


# -- functions as tools -------------------------------------------------------------------------


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Point(BaseModel):
    x: int
    y: int = 0


def forecast(
    city: str,
    days: int | str = 1,
    kind: Literal["rain", "sun"] = "rain",
    unit: Unit = Unit.CELSIUS,
    points: list[Point] | None = None,
    tags: list[str] | None = None,
    *args: Any,
    **kwargs: Any,
) -> str:
    """Get the forecast.

    Args:
        city: The city: a name, or "lat,lon"
            for coordinates
        days (integer | string): How many days ahead
        kind: What to forecast
    Returns:
        The forecast
    """
    return ""


def test_function_tool_keeps_nested_types() -> None:
    tool = convert_function_to_tool(forecast)
    assert tool.function is not None
    assert tool.function.description == "Get the forecast."
    parameters = tool.model_dump(exclude_none=True)["function"]["parameters"]
    assert parameters == {
        "type": "object",
        "required": ["city"],
        "properties": {
            "city": {"type": "string", "description": 'The city: a name, or "lat,lon" for coordinates'},
            "days": {"type": "integer, string", "description": "How many days ahead"},
            "kind": {"type": "string", "enum": ["rain", "sun"], "description": "What to forecast"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": ""},
            "points": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                    "required": ["x"],
                },
                "description": "",
            },
            "tags": {"type": "array", "items": {"type": "string"}, "description": ""},
        },
    }
    assert list(parameters["properties"]) == ["city", "days", "kind", "unit", "points", "tags"]


class Window(TypedDict, total=False):
    start: int
    labels: list[str]


class Address(BaseModel):
    street: str
    zip_code: int | None = None


class Person(BaseModel):
    name: str
    address: Address


def book(who: Person, window: Window, counts: dict[str, int], anything: dict[str, Any], mixed: int | str | float):
    """Book a visit."""


def test_function_tool_keeps_typed_dicts_models_and_dict_values() -> None:
    properties = convert_function_to_tool(book).model_dump(exclude_none=True)["function"]["parameters"]["properties"]
    address = {"type": "object", "properties": {"street": {"type": "string"}, "zip_code": {"type": "integer"}},
               "required": ["street"]}
    assert properties["who"] == {"type": "object", "description": "", "required": ["name", "address"],
                                 "properties": {"name": {"type": "string"}, "address": address}}
    assert properties["window"] == {"type": "object", "description": "", "properties": {
        "start": {"type": "integer"}, "labels": {"type": "array", "items": {"type": "string"}}}}
    assert properties["counts"] == {"type": "object", "description": "", "additionalProperties": {"type": "integer"}}
    assert properties["anything"] == {"type": "object", "description": ""}
    assert properties["mixed"]["type"] == "integer, string, number"


def test_function_tool_is_the_same_in_every_process() -> None:
    # ollama-python builds union types from a set, so their order changes with the hash seed.
    code = (
        "import json\n"
        "from tests.test_sdk_own import book, forecast\n"
        "from corral.client._utils import convert_function_to_tool\n"
        "print(json.dumps([convert_function_to_tool(f).model_dump() for f in (book, forecast)]))\n"
    )
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        outputs.add(done.stdout)
    assert len(outputs) == 1


def test_function_tool_goes_on_the_wire_whole(httpserver: HTTPServer) -> None:
    tool = convert_function_to_tool(forecast).model_dump(exclude_none=True)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [tool], "stream": False}
    reply = {"model": "m", "message": {"role": "assistant", "content": "ok"}}
    httpserver.expect_request("/api/chat", method="POST", json=body).respond_with_json(reply)
    response = Client(httpserver.url_for("/")).chat(
        "m", [{"role": "user", "content": "hi"}], tools=[forecast]
    )
    assert response.message.content == "ok"


def test_dict_tool_keeps_nested_properties() -> None:
    nested = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    tool = {
        "type": "function",
        "function": {
            "name": "search",
            "parameters": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"filter": nested},
            },
        },
    }
    sent = ChatRequest.model_validate({"model": "m", "tools": [tool]}).model_dump(exclude_none=True)["tools"][
        0
    ]
    assert sent["function"]["parameters"]["additionalProperties"] is False
    assert sent["function"]["parameters"]["properties"]["filter"] == nested


def test_tool_call_arguments_as_json_string() -> None:
    message = corral.Message.model_validate(
        {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": '{"a": 1}'}}]}
    )
    assert message.tool_calls is not None
    assert message.tool_calls[0].function.arguments == {"a": 1}


# -- images and responses -------------------------------------------------------------------------


def test_single_image_is_not_split(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"png")
    encoded: list[Any] = [image.model_dump() for image in _copy_images(str(path))]
    encoded += [image.model_dump() for image in _copy_images(b"png")]
    encoded.append(Image(value="data:image/png;base64,cG5n").model_dump())
    assert encoded == ["cG5n"] * 3


def test_show_without_model_info() -> None:
    assert ShowResponse.model_validate({"template": "t"}).modelinfo is None
    assert ShowResponse.model_validate({"model_info": {"a": 1}})["modelinfo"] == {"a": 1}

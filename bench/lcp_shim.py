"""Start llama-cpp-python's server with llama.cpp's extra CPU buffer types (AMX, repacking) off.

``llama_cpp.Llama`` has no option for ``use_extra_bufts``, so this wraps ``llama_model_default_params``
before the server module loads, which is what ``--no-repack`` does for llama.cpp's own tools.
"""

from __future__ import annotations

import runpy
from typing import Any

import llama_cpp.llama_cpp as low

_default_params = low.llama_model_default_params


def _no_extra_bufts() -> Any:
    params = _default_params()
    params.use_extra_bufts = False
    return params


if __name__ == "__main__":
    low.llama_model_default_params = _no_extra_bufts
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)

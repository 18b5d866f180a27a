"""``make bench``: corral against llama.cpp's own server and tools, on the same GGUF files. See RESULTS.md."""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parent.parent)  # the repo root, not bench/
    from bench.main import main

    sys.exit(main())

"""Entry point of a runner process: ``python -m corral.runner --fd N --model PATH [options]``.

The server passes one end of a socket pair as file descriptor N. The runner loads the model, says ``ready``
and serves until that socket closes.
"""

from __future__ import annotations

import argparse
import dataclasses
import socket
import sys
from pathlib import Path

from corral.runner import protocol


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="corral-runner")
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--ctx-size", type=int, default=4096)
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--no-mmap", action="store_true")
    p.add_argument("--lora", action="append", default=[])
    p.add_argument("--embedding", action="store_true")
    p.add_argument("--kv-type", choices=["f16", "q8_0", "q4_0"], default="f16")
    p.add_argument("--flash-attn", choices=["on", "off", "auto"], default="auto")
    p.add_argument("--prompt-cache-mb", type=int, default=0)
    p.add_argument("--draft", default="", help="a draft model for speculative decoding")
    p.add_argument("--projector", default="", help="a vision projector (mmproj) for images")
    p.add_argument("--draft-max", type=int, default=4, help="tokens it guesses a step (draft_num_predict)")
    p.add_argument("--prompt-cache-dir", default="")
    args = p.parse_args(argv)
    sock = socket.socket(fileno=args.fd)

    from corral.runner.engine import Engine, LoadOptions
    from corral.runner.loop import serve
    from corral.runner.promptcache import PromptCache

    opts = LoadOptions(model_path=args.model, n_ctx=args.ctx_size, n_parallel=args.parallel,
                       n_batch=args.batch_size, n_threads=args.threads, use_mmap=not args.no_mmap,
                       lora=args.lora, embedding=args.embedding, kv_type=args.kv_type,
                       flash_attn={"on": 1, "off": 0, "auto": -1}[args.flash_attn])
    drafter = vision = None
    try:
        engine = Engine(opts)
        if args.projector and not args.embedding:
            from corral.runner.vision import Vision

            vision = Vision(args.projector, engine.model, engine.n_threads, engine.bos)
        if args.draft and args.draft_max > 0:
            from corral.runner.draft import Drafter

            drafter = Drafter(Engine(dataclasses.replace(opts, model_path=args.draft, lora=[])), engine)
    except Exception as exc:
        sock.sendall(protocol.encode({"kind": "error", "id": "", "error": str(exc)}))
        return 1
    cache = None
    if args.prompt_cache_mb > 0 and not args.embedding:
        cache = PromptCache(args.prompt_cache_mb << 20, Path(args.prompt_cache_dir) if args.prompt_cache_dir else None)
    return serve(engine, sock, cache, drafter, args.draft_max, vision)


if __name__ == "__main__":
    sys.exit(main())

"""Image and audio paths in a prompt, attached as Ollama's CLI attaches them (``extractFileData``).

For a model that sees (or hears), every path in the prompt that looks like ``/…/x.png``, ``./x.jpg``,
``C:\\x.webp`` or ``…/x.wav`` (escaped spaces allowed) and names an existing file of that type is read,
reported (``Added image '…'`` on stderr) and taken out of the text.  A path to no file stays in the text;
a file of another type, or over 100 MB, is an error.
"""

from __future__ import annotations

import os
import re
import sys

__all__ = ["FileError", "extract_file_data", "extract_file_names", "normalize_file_path"]

# Go's pattern; Go's \S and \b are ASCII, so the class is spelled out and the match is ASCII-only.
_PATH = re.compile(r"(?:[a-zA-Z]:)?(?:\./|/|\\)[^\t\n\f\r]+?\.(?i:jpg|jpeg|png|webp|wav)\b", re.ASCII)
_ESCAPES = [("\\ ", " "), ("\\(", "("), ("\\)", ")"), ("\\[", "["), ("\\]", "]"), ("\\{", "{"), ("\\}", "}"),
            ("\\$", "$"), ("\\&", "&"), ("\\;", ";"), ("\\'", "'"), ("\\\\", "\\"), ("\\*", "*"),
            ("\\?", "?"), ("\\~", "~")]
_MAX_SIZE = 100 * 1024 * 1024
_ALLOWED = ("image/jpeg", "image/jpg", "image/png", "image/webp", "audio/wave")


class FileError(Exception):
    """A named file that cannot be attached; the REPL ends on it, as Ollama's does."""


def extract_file_names(text: str) -> list[str]:
    return _PATH.findall(text)


def normalize_file_path(path: str) -> str:
    """Undo a shell's escapes (one pass, left to right, as strings.Replacer does)."""
    out, i = [], 0
    while i < len(path):
        pair = path[i:i + 2]
        for escaped, plain in _ESCAPES:
            if pair == escaped:
                out.append(plain)
                i += 2
                break
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def _sniff(head: bytes) -> str:
    """The few answers of Go's http.DetectContentType that matter here."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:14] == b"WEBPVP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wave"
    if all(b >= 0x20 or b in b"\t\n\r\x0c\x1b" for b in head):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        head = f.read(512)
        if not head:
            raise FileError("EOF")
        kind = _sniff(head)
        if kind not in _ALLOWED:
            raise FileError(f"invalid file type: {kind}")
        if os.fstat(f.fileno()).st_size > _MAX_SIZE:
            raise FileError("file size exceeds maximum limit (100MB)")
        return head + f.read()


def extract_file_data(text: str) -> tuple[str, list[bytes]]:
    """The prompt without the attached paths (trimmed), and the files' bytes.  Raises FileError."""
    images: list[bytes] = []
    for found in extract_file_names(text):
        path = normalize_file_path(found)
        try:
            data = _read(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except FileError as exc:
            print(f"Couldn't process file: {_go_quote(str(exc))}", file=sys.stderr)
            raise
        except OSError as exc:
            message = f"open {path}: {exc.strerror.lower() if exc.strerror else exc}"
            print(f"Couldn't process file: {_go_quote(message)}", file=sys.stderr)
            raise FileError(message) from None
        kind = "audio" if path.lower().endswith(".wav") else "image"
        print(f"Added {kind} '{path}'", file=sys.stderr)
        text = text.replace(f"'{path}'", "").replace(f"'{found}'", "").replace(found, "")
        images.append(data)
    return text.strip(), images


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

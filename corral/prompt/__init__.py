"""Prompt rendering: Go text/template and GGUF Jinja chat templates."""

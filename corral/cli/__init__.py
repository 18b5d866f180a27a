"""The ``corral`` command line: Ollama's commands, one module per family."""

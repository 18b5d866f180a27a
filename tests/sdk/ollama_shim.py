"""An ``ollama`` package that is corral's SDK, for running programs written for ollama-python unchanged.

tests/test_sdk_examples.py copies this file to ``<tmp>/ollama/__init__.py`` and puts ``<tmp>`` first on
``PYTHONPATH``. While ``import ollama`` runs this module, it puts ``corral`` in its place in ``sys.modules``;
the import system then hands the program ``corral`` itself (it reads ``sys.modules`` again once the module
has run), and ``ollama._client`` / ``_types`` / ``_utils`` resolve to corral's modules of the same role.
"""

import sys

import corral
import corral.client._client
import corral.client._types
import corral.client._utils

sys.modules["ollama"] = corral
sys.modules["ollama._client"] = corral.client._client
sys.modules["ollama._types"] = corral.client._types
sys.modules["ollama._utils"] = corral.client._utils

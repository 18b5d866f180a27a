"""The runner: one OS process per loaded model, driving llama.cpp through llama-cpp-python.

It knows nothing of model names, templates or the HTTP API. It is given prompts and sampling settings over a
channel (see :mod:`corral.runner.protocol`) and streams text back, serving several requests at once from one
continuous-batching decode loop.
"""

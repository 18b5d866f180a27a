"""The protocol-neutral pipeline every API family translates onto.

A family validates its own request, translates it to a native one (``api.ChatRequest``, ``GenerateRequest``,
``EmbedRequest``) and hands it to :func:`chat.chat`, :func:`generate.generate` or :func:`embed.embed`; the
first two yield :mod:`events` (thinking, content, tool calls, then a final event with counts and timings),
which the family translates back and writes with :mod:`stream` (NDJSON or SSE, each family's error envelope).
Nothing here knows HTTP: a client that leaves is seen through a ``disconnected()`` callable, or as the
cancellation a stream writer delivers.
"""

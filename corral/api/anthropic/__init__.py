"""Anthropic's wire models (``/v1/messages``): strict requests, responses in Anthropic's shapes."""

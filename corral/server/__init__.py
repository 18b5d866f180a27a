"""The ASGI server: routes, translation to /v1, host guard and CORS."""

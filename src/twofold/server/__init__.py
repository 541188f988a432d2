"""Serving: the ASGI App, the native gRPC server, ``twofold serve``."""

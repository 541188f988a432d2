"""Interceptors users configure: auth, limits, idempotency, tracing, metrics."""

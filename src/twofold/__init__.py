"""Twofold: one typed definition, served as REST and as RPC."""

from twofold.app import App
from twofold.code import Code
from twofold.context import Context
from twofold.definition import DefinitionError, Resource, Service
from twofold.details import BadRequest, ErrorInfo, FieldViolation
from twofold.errors import Error
from twofold.interceptors import CallNext, Interceptor
from twofold.method import Empty, HttpBinding, Idempotency, Method, StreamKind
from twofold.options import Options

__all__ = [
    "App",
    "BadRequest",
    "CallNext",
    "Code",
    "Context",
    "DefinitionError",
    "Empty",
    "Error",
    "ErrorInfo",
    "FieldViolation",
    "HttpBinding",
    "Idempotency",
    "Interceptor",
    "Method",
    "Options",
    "Resource",
    "Service",
    "StreamKind",
]

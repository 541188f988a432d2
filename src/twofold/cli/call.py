"""``twofold call``: call a method of any running Twofold server, on any wire, for humans.

The methods come from the server itself (its ``/openapi.json`` for the JSON
wires, gRPC server reflection for the binary ones) or from the app's own
definition (``--app MODULE:ATTR``): :mod:`twofold.cli.methods`. Messages are
JSON on the command line, a file or stdin (NDJSON for a request stream);
answers are printed as they arrive, and an error goes to stderr with an
exit status that says which code it was (:func:`exit_status`).
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, TextIO

import httpx
import msgspec

from twofold.cli.methods import Documented, Methods, UnknownMethod
from twofold.client.errors import Failure
from twofold.client.protocols import GRPC, NAMES
from twofold.client.protocols import protocol as make_protocol
from twofold.client.transports import HttpRequest, HttpTransport, base_url
from twofold.core.code import Code
from twofold.core.errors import Error
from twofold.core.method import StreamKind

USAGE_ERROR = 2
# An exit status per code: 10 + the gRPC number, so that no code is confused
# with Python's 1 (an uncaught exception) or argparse's 2 (bad arguments).
EXIT_OFFSET = 10
INTERRUPTED = 130  # the shell's 128 + SIGINT: how a watched stream is usually left
MAX_DOCUMENT_SIZE = 16 << 20
MAX_RESPONSE_SIZE = 64 << 20
PROTOCOLS = NAMES
JSON_PROTOCOLS = ("connect", "rest", "jsonrpc")
# The wires whose messages are protobuf: they need the message types.
BINARY_PROTOCOLS = ("connect-proto", "grpc-web", GRPC)


def exit_status(code: Code) -> int:
    """The exit status of a call that failed with ``code``: 11 (CANCELED) to 26."""
    return EXIT_OFFSET + code.value


@dataclass(frozen=True)
class CallOptions:
    """What ``twofold call`` was asked to do (its command-line arguments)."""

    url: str
    """The server's base URL; for ``grpc``, its gRPC address (``host:port`` or a URL)."""
    method: str | None = None
    """``GetProduct`` or ``pkg.Service/GetProduct``; None lists the methods."""
    data: str | None = None
    """The message: JSON text, ``@FILE`` or ``@-`` (stdin); NDJSON for a request stream."""
    protocol: str = "connect"
    headers: Sequence[str] = ()
    deadline: float | None = None
    raw: bool = False
    """One compact JSON document per line instead of indented JSON."""
    app: str | None = None
    """``MODULE:ATTR`` of the app, whose definition gives the methods and types."""
    reflect: str | None = None
    """The gRPC address to ask for the types (server reflection)."""


class BadInput(ValueError):
    """The user's arguments or message cannot be used: exit status 2, no call made."""


def run(
    options: CallOptions,
    *,
    stdin: IO[str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``twofold call``; the exit status (0, 2 for bad input, or :func:`exit_status`)."""
    out = _Printer(stdout or sys.stdout, options.raw)
    err = _Printer(stderr or sys.stderr, options.raw)
    deadline = None
    try:
        _check(options)
        headers = _headers(options.headers)
        if options.deadline is not None:
            deadline = time.monotonic() + options.deadline
        return _Call(options, headers, deadline, stdin or sys.stdin, out).run()
    except (BadInput, UnknownMethod) as exc:
        err.stream.write(f"twofold call: error: {exc}\n")
        return USAGE_ERROR
    except Failure as failure:
        err.print(_error_document(failure.error))
        return exit_status(failure.error.code)
    except Error as exc:
        err.print(_error_document(exc))
        return exit_status(exc.code)
    except KeyboardInterrupt:
        return INTERRUPTED


def _check(options: CallOptions) -> None:
    """Refuse what cannot work before any network."""
    protocol = options.protocol
    if protocol not in PROTOCOLS:
        raise BadInput(f"unknown protocol {protocol!r}; use {', '.join(PROTOCOLS)}")
    if options.deadline is not None and not options.deadline > 0:
        raise BadInput("--deadline must be positive")
    if options.app and options.reflect:
        raise BadInput("--app and --reflect are two sources of the types: give one")
    if options.reflect and protocol in ("rest", "jsonrpc"):
        raise BadInput(
            f"{protocol} is called from /openapi.json or --app MODULE:ATTR, not --reflect"
        )
    if protocol in BINARY_PROTOCOLS[:2] and not (options.app or options.reflect):
        raise BadInput(
            f"{protocol} carries protobuf, which needs the message types: give --reflect "
            "HOST:PORT (the server's gRPC address) or --app MODULE:ATTR"
        )
    if protocol != GRPC:
        try:
            base_url(options.url)
        except ValueError as exc:
            raise BadInput(str(exc)) from None


class _Call:
    """One run of the command: find the methods, read the message(s), call, print."""

    def __init__(
        self,
        options: CallOptions,
        headers: dict[str, str],
        deadline: float | None,
        stdin: IO[str],
        out: _Printer,
    ) -> None:
        self.options = options
        self.headers = headers
        self.deadline = deadline
        self.stdin = stdin
        self.out = out
        # One connection pool (and one TLS context) for the document and the call.
        self.http = httpx.HTTPTransport()

    def run(self) -> int:
        try:
            methods = self._methods()
            if self.options.method is None:
                self.out.stream.write("".join(f"{line}\n" for line in methods.listing()))
                return 0
            self._call(methods, methods.find(self.options.method))
            return 0
        finally:
            self.http.close()

    def _methods(self) -> Methods:
        options = self.options
        if options.app:
            from twofold.cli.methods import Declared
            from twofold.server.loader import LoadError, load  # the app's code: only when asked

            try:
                return Declared(load(options.app).services)
            except LoadError as exc:
                raise BadInput(str(exc)) from None
        if options.reflect or options.protocol == GRPC:
            from twofold.cli.reflection import reflect  # grpcio and protobuf: only when needed

            return reflect(options.reflect or options.url, self.headers, self.deadline)
        return Documented(self._document())

    def _document(self) -> dict[str, Any]:
        transport = HttpTransport(
            self.options.url, max_response_size=MAX_DOCUMENT_SIZE, transport=self.http
        )
        headers = {"accept": "application/json", **self.headers}
        request = HttpRequest("GET", "/openapi.json", headers)
        response = transport.send(request, self.deadline)
        if response.status != 200:
            raise Error(
                Code.UNIMPLEMENTED if response.status == 404 else Code.UNKNOWN,
                f"GET /openapi.json answered {response.status}: is this a Twofold server?",
            )
        try:
            document = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            document = None
        if not isinstance(document, dict):
            raise Error(
                Code.UNKNOWN, "/openapi.json is not a JSON object: is this a Twofold server?"
            )
        return document

    def _calls(self, methods: Methods) -> Any:
        if self.options.protocol == GRPC:
            from twofold.client.channels import GrpcCalls

            return GrpcCalls(
                self.options.url, methods.codecs, max_response_size=MAX_RESPONSE_SIZE, headers={}
            )
        from twofold.client.calls import HttpCalls

        transport = HttpTransport(
            self.options.url, max_response_size=MAX_RESPONSE_SIZE, transport=self.http
        )
        return HttpCalls(make_protocol(self.options.protocol, methods.codecs), transport)

    def _call(self, methods: Methods, rpc: Any) -> None:
        protocol, kind = self.options.protocol, rpc.kind
        args = (self.deadline, self.headers)
        if kind in (StreamKind.UNARY, StreamKind.SERVER):
            value = _one(_read(self.options.data, self.stdin))
            rpc = methods.bound(rpc, protocol, value)
            message = methods.message(rpc, value)
        else:
            rpc = methods.bound(rpc, protocol, None)
            message = None
            values = _ndjson(self.options.data, self.stdin)
            # The first message is read before the call opens: a mistake in it
            # is the caller's (exit 2), told before the server can answer
            # anything, such as a refusal of the credentials. Later lines
            # are read as the stream goes, so a watch or import stays live.
            first = next(values, None)
            values = itertools.chain(() if first is None else (first,), values)
            messages = (methods.message(rpc, v) for v in values)
        calls = self._calls(methods)
        try:
            if kind is StreamKind.UNARY:
                self.out.print(methods.output(rpc, calls.unary(rpc, message, *args)))
            elif kind is StreamKind.CLIENT:
                self.out.print(methods.output(rpc, calls.client_stream(rpc, messages, *args)))
            else:
                sent = [message] if kind is StreamKind.SERVER else messages
                # Each answer is printed (and flushed) as it arrives: a watch is live.
                for output in calls.stream(rpc, sent, *args, single=kind is StreamKind.SERVER):
                    self.out.print(methods.output(rpc, output))
        finally:
            calls.close()


class _Printer:
    """JSON out, indented for people or one compact document per line (``--raw``)."""

    def __init__(self, stream: TextIO, raw: bool) -> None:
        self.stream = stream
        self.raw = raw

    def print(self, value: Any) -> None:
        encoded = msgspec.json.encode(value)
        if not self.raw:
            encoded = msgspec.json.format(encoded, indent=2)
        self.stream.write(encoded.decode() + "\n")
        self.stream.flush()


def _headers(values: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition(":")
        if not sep or not name.strip():
            raise BadInput(f"a header is 'Name: value', got {value!r}")
        out[name.strip().lower()] = text.strip()
    return out


def _read(data: str | None, stdin: IO[str]) -> str:
    """The whole input: ``data`` itself, or the file (``-`` for stdin) after its ``@``."""
    if data is None:
        return "{}"
    if not data.startswith("@"):
        return data
    if data == "@-":
        return stdin.read()
    try:
        with open(data[1:], encoding="utf-8") as file:
            return file.read()
    except OSError as exc:
        raise BadInput(f"cannot read {data[1:]}: {exc.strerror}") from None


def _lines(data: str | None, stdin: IO[str]) -> Iterator[str]:
    """The input line by line as it comes: a request stream is sent while typed."""
    if data is None:
        return
    if not data.startswith("@"):
        yield from data.splitlines()
    elif data == "@-":
        yield from stdin
    else:
        try:
            file = open(data[1:], encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise BadInput(f"cannot read {data[1:]}: {exc.strerror}") from None
        with file:
            yield from file


def _one(text: str) -> dict[str, Any]:
    value = _decode(text.strip() or "{}", "the message")
    if not isinstance(value, dict):
        raise BadInput("the message must be a JSON object")
    return value


def _ndjson(data: str | None, stdin: IO[str]) -> Iterator[dict[str, Any]]:
    """A request stream: one JSON object per line; blank lines are skipped."""
    for number, line in enumerate(_lines(data, stdin), 1):
        if not line.strip():
            continue
        value = _decode(line, f"line {number}")
        if not isinstance(value, dict):
            raise BadInput(f"line {number} must be a JSON object")
        yield value


def _decode(text: str, what: str) -> Any:
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise BadInput(f"{what} is not JSON: {exc}") from None


def _error_document(error: Error) -> dict[str, Any]:
    doc: dict[str, Any] = {"code": error.code.wire_name, "message": error.message}
    if error.details:
        doc["details"] = [{"type": d.TYPE_NAME, **d.to_json()} for d in error.details]
    return doc

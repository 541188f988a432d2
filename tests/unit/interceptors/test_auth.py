"""Authentication and authorization, the same over every protocol.

A small notes service: reading is public, writing needs ``notes:write``, a
private note only its owner may read. Every case runs over rest, jsonrpc,
connect, connect-proto, grpc-web and native gRPC, and asserts the code, the
challenge, and that a refused handler never ran.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.conftest import PROTOCOLS, run
from twofold import (
    AUTHENTICATED,
    ApiKeys,
    App,
    Authentication,
    Context,
    DefinitionError,
    Identity,
    JwtBearer,
    Service,
    StoredApiKey,
    public,
    requires,
)
from twofold.interceptors.bearer import issue
from twofold.testing.parity import AsyncWires

SECRET = "a test secret that is long enough for HS256"
RAN: list[str] = []


class Note(msgspec.Struct):
    id: int
    text: str
    owner: str = ""


def owns(identity: Identity, request: Any) -> bool:
    return identity.subject == request.owner


service = Service("notes.v1", security=None)
notes = service.resource("notes")


@notes.get
@public
async def get_note(id: int, ctx: Context) -> Note:
    RAN.append("GetNote")
    who = ctx.identity.subject if ctx.identity else ""
    return Note(id, "hello", who)


@notes.create
@requires("notes:write")
async def create_note(note: Note, ctx: Context) -> Note:
    RAN.append("CreateNote")
    assert ctx.identity is not None
    return Note(note.id, note.text, ctx.identity.subject)


@service.procedure(http=("POST", "/private:read"))
@requires(check=owns)
async def read_private(owner: str) -> Note:
    RAN.append("ReadPrivate")
    return Note(1, "secret", owner)


def make_app(*verifiers: Any) -> App:
    verifiers = verifiers or (JwtBearer(secret=SECRET, audience="notes"),)
    return App(service, interceptors=[Authentication(*verifiers)])


def token(**claims: Any) -> str:
    now = int(time.time())
    base = {"sub": "alice", "aud": "notes", "exp": now + 3600, "scope": "notes:write"}
    return jwt.encode({**base, **claims}, SECRET.encode(), algorithm="HS256")


def bearer(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


def unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


NOTE = {"note": {"id": 1, "text": "hi"}}
CASES: list[tuple[str, dict[str, str], str | None]] = [
    ("none", {}, "unauthenticated"),
    ("malformed", bearer("not.a.jwt"), "unauthenticated"),
    ("wrong signature", bearer(token()[:-4] + "AAAA"), "unauthenticated"),
    ("expired", bearer(token(exp=int(time.time()) - 120)), "unauthenticated"),
    # A day ahead: CASES is built when pytest imports the module, which can be
    # more than ten minutes before the test runs in a long suite.
    ("not yet valid", bearer(token(nbf=int(time.time()) + 86400)), "unauthenticated"),
    ("wrong audience", bearer(token(aud="other")), "unauthenticated"),
    (
        "alg none",
        bearer(unsigned({"sub": "alice", "aud": "notes", "exp": 2**40})),
        "unauthenticated",
    ),
    ("no scope", bearer(token(scope="notes:read")), "permission_denied"),
    ("garbage", {"authorization": "Bearer \u00ff\u00fe\u00e9 x"}, "unauthenticated"),
    ("huge", bearer("a" * 20000), "unauthenticated"),
    ("with scope", bearer(token()), None),
]


def test_write_over_every_protocol(protocol: str) -> None:
    async def scenario(w: AsyncWires) -> None:
        for name, headers, code in CASES:
            if name == "huge" and protocol == "grpc":
                # grpcio refuses metadata over its limit (8 KiB) before any handler.
                code = "resource_exhausted"
            RAN.clear()
            result = await w.call(protocol, "CreateNote", NOTE, headers)
            assert result.code == code, (name, result)
            assert ([] if code else ["CreateNote"]) == RAN, name
            if code == "unauthenticated":
                assert result.headers["www-authenticate"].startswith("Bearer"), name
                if protocol == "rest":
                    assert result.status == 401
            if code == "permission_denied" and protocol == "rest":
                assert result.status == 403
            if code is None:
                assert result.output["owner"] == "alice"

    run(make_app(), scenario)


def test_public_read_and_custom_check(protocol: str) -> None:
    async def scenario(w: AsyncWires) -> None:
        anonymous = await w.call(protocol, "GetNote", {"id": 1}, {})
        assert anonymous.code is None and anonymous.output["owner"] == ""
        known = await w.call(protocol, "GetNote", {"id": 1}, bearer(token()))
        assert known.code is None and known.output["owner"] == "alice"
        # A broken token is refused even where none is needed.
        assert (await w.call(protocol, "GetNote", {"id": 1}, bearer("x"))).code == (
            "unauthenticated"
        )
        RAN.clear()
        own = await w.call(protocol, "ReadPrivate", {"owner": "alice"}, bearer(token()))
        assert own.code is None and RAN == ["ReadPrivate"]
        RAN.clear()
        other = await w.call(protocol, "ReadPrivate", {"owner": "bob"}, bearer(token()))
        assert other.code == "permission_denied" and RAN == []

    run(make_app(), scenario)


def test_api_keys_are_hashed_and_checked() -> None:
    keys = ApiKeys(
        [StoredApiKey.of("k-123", "robot", ["notes:write"]), StoredApiKey.of("k-ro", "reader")]
    )
    assert "k-123" not in repr(keys.keys)
    app = make_app(JwtBearer(secret=SECRET, audience="notes"), keys)

    async def scenario(w: AsyncWires) -> None:
        for protocol in PROTOCOLS:
            ok = await w.call(protocol, "CreateNote", NOTE, {"x-api-key": "k-123"})
            assert ok.code is None and ok.output["owner"] == "robot", protocol
            bad = await w.call(protocol, "CreateNote", NOTE, {"x-api-key": "k-124"})
            assert bad.code == "unauthenticated", protocol
            weak = await w.call(protocol, "CreateNote", NOTE, {"x-api-key": "k-ro"})
            assert weak.code == "permission_denied", protocol

    run(app, scenario)


def _rsa_jwks(tmp_path: Path) -> tuple[Any, Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk["kid"] = "k1"
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, path, pem


def test_rs256_from_a_jwks_file_and_key_confusion(tmp_path: Path) -> None:
    key, path, pem = _rsa_jwks(tmp_path)
    app = make_app(JwtBearer(jwks=path, audience="notes", issuer="https://issuer"))
    claims = {"sub": "alice", "aud": "notes", "iss": "https://issuer", "exp": 2**40}
    good = jwt.encode({**claims, "scope": "notes:write"}, key, "RS256", headers={"kid": "k1"})
    wrong_issuer = jwt.encode({**claims, "iss": "x"}, key, "RS256", headers={"kid": "k1"})
    # Key confusion: HS256 "signed" with the public key as the HMAC secret.
    confused = _hmac_with(pem, {**claims, "scope": "notes:write"}, kid="k1")

    async def scenario(w: AsyncWires) -> None:
        for protocol in PROTOCOLS:
            assert (await w.call(protocol, "CreateNote", NOTE, bearer(good))).code is None
            for bad in (wrong_issuer, confused):
                RAN.clear()
                result = await w.call(protocol, "CreateNote", NOTE, bearer(bad))
                assert result.code == "unauthenticated" and RAN == [], protocol

    run(app, scenario)


def _hmac_with(secret: bytes, claims: dict[str, Any], kid: str) -> str:
    import hashlib
    import hmac

    def part(value: bytes) -> bytes:
        return base64.urlsafe_b64encode(value).rstrip(b"=")

    header = part(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = part(json.dumps(claims).encode())
    signature = part(hmac.new(secret, header + b"." + body, hashlib.sha256).digest())
    return (header + b"." + body + b"." + signature).decode()


@pytest.mark.parametrize("uptime", [None, 60.0], ids=["any-uptime", "machine-just-booted"])
def test_es256_keys_fetched_from_a_jwks_url(
    uptime: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if uptime is not None:
        # The monotonic clock counts from the boot: on a machine up for less
        # than JWKS_TTL the first call must still fetch the keys.
        import types

        import twofold.interceptors.bearer

        start = time.monotonic()
        clock = types.SimpleNamespace(monotonic=lambda: time.monotonic() - start + uptime)
        monkeypatch.setattr(twofold.interceptors.bearer, "time", clock)
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    document = json.dumps({"keys": [{**jwk, "kid": "e1"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
        app = make_app(JwtBearer(jwks_url=url))
        good = jwt.encode(
            {"sub": "eve", "exp": 2**40, "scope": "notes:write"},
            key,
            "ES256",
            headers={"kid": "e1"},
        )

        async def scenario(w: AsyncWires) -> None:
            result = await w.call("rest", "CreateNote", NOTE, bearer(good))
            assert result.code is None and result.output["owner"] == "eve"
            unknown = jwt.encode({"sub": "eve", "exp": 2**40}, key, "ES256", headers={"kid": "e9"})
            assert (await w.call("grpc", "CreateNote", NOTE, bearer(unknown))).code == (
                "unauthenticated"
            )

        run(app, scenario)
    finally:
        server.shutdown()
        server.server_close()


def test_no_token_or_secret_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    secret_token = token(aud="other")

    async def scenario(w: AsyncWires) -> None:
        for protocol in PROTOCOLS:
            result = await w.call(protocol, "CreateNote", NOTE, bearer(secret_token))
            assert result.code == "unauthenticated"
            text = json.dumps(result.headers) + repr(result)
            assert secret_token not in text and SECRET not in text

    with caplog.at_level("DEBUG"):
        run(make_app(), scenario)
    assert secret_token not in caplog.text and SECRET not in caplog.text


def test_a_requirement_nobody_enforces_is_refused() -> None:
    with pytest.raises(DefinitionError, match="Authentication"):
        App(service)


def test_with_authentication_every_method_must_decide() -> None:
    undecided = Service("drafts.v1")
    drafts = undecided.resource("drafts")

    @drafts.get
    async def get_draft(id: int) -> Note:
        return Note(id, "")

    @drafts.create
    async def create_draft(draft: Note) -> Note:
        return draft

    @drafts.delete
    @public
    async def delete_draft(id: int) -> None:
        return None

    keys = ApiKeys([])
    with pytest.raises(DefinitionError) as raised:
        App(undecided, interceptors=[Authentication(keys)])
    message = str(raised.value)
    # Each undecided method by name, the decided one not, and how to decide.
    assert "drafts.v1.DraftsService/GetDraft" in message
    assert "drafts.v1.DraftsService/CreateDraft" in message
    assert "DeleteDraft" not in message
    assert "@public or @requires(...)" in message and "Service(..., security=...)" in message
    # Without Authentication nobody checks anything: nothing to decide.
    App(undecided)


def test_a_service_default_is_a_decision() -> None:
    decided = Service("drafts.v1", security=AUTHENTICATED)

    @decided.procedure
    async def publish_draft(id: int) -> Note:
        return Note(id, "")

    App(decided, interceptors=[Authentication(ApiKeys([]))])


def test_openapi_declares_schemes_and_security() -> None:
    doc = make_app(JwtBearer(secret=SECRET), ApiKeys([])).openapi
    assert doc["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    assert doc["paths"]["/notes/{id}"]["get"]["security"] == []
    assert doc["paths"]["/notes"]["post"]["security"] == [
        {"bearerAuth": ["notes:write"]},
        {"apiKey": ["notes:write"]},
    ]


def test_issue_makes_a_token_the_bearer_accepts() -> None:
    value = issue(SECRET, "bob", ["a", "b"], expires_in=60, audience="notes")
    claims = jwt.decode(value, SECRET.encode(), ["HS256"], audience="notes")
    assert claims["sub"] == "bob" and claims["scope"] == "a b"
    assert 55 <= claims["exp"] - time.time() <= 61
    with pytest.raises(ValueError):
        JwtBearer(secret="short")


def test_token_command_prints_a_development_token(capsys: pytest.CaptureFixture[str]) -> None:
    from twofold import cli
    from twofold.interceptors.bearer import DEVELOPMENT_SECRET

    argv = ["token", "--subject", "alice", "--scopes", "products:write,orders:write"]
    assert cli.main([*argv, "--expires-in", "120"]) == 0
    value = capsys.readouterr().out.strip()
    claims = jwt.decode(value, DEVELOPMENT_SECRET.encode(), ["HS256"])
    assert claims["sub"] == "alice" and claims["scope"] == "products:write orders:write"
    assert claims["exp"] - claims["iat"] == 120
    assert cli.main([*argv, "--expires-in", "-5"]) == 2


def test_unreachable_jwks_is_unavailable_not_a_crash() -> None:
    from tests.e2e.server import free_port

    app = make_app(JwtBearer(jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json"))

    async def scenario(w: AsyncWires) -> None:
        for protocol in ("rest", "grpc"):
            result = await w.call(protocol, "CreateNote", NOTE, bearer(token()))
            assert result.code == "unavailable", protocol

    run(app, scenario)

"""A sync client with every option set once for all its calls."""

from docs_src.quickstart.app import service
from twofold import Client
from twofold.client import BearerToken, Retry


def connect(url: str, token: str) -> Client:
    return Client(
        service,
        url,  # "http://127.0.0.1:8000"
        protocol="rest",  # or "connect" (the default), "connect-proto", "grpc-web", "jsonrpc"
        timeout=5.0,  # each call's deadline, retries included
        retry=Retry(attempts=4, backoff=0.2, max_backoff=2.0),
        auth=BearerToken(token),  # or ApiKey(key, header="x-api-key")
        headers={"user-agent": "shelf-report/1.0"},
        max_response_size=1 << 20,  # larger answers are RESOURCE_EXHAUSTED
    )


def report(url: str, token: str) -> list[str]:
    with connect(url, token) as client:
        book = client.get_book(id=1, timeout=0.5)  # a tighter deadline for one call
        return [book.title]

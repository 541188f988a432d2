"""docs/files.md: a file sent from disk to PUT /archives/{name} as it is read."""

from __future__ import annotations

from pathlib import Path

from docs_src.files.app import Archived, read_chunks, service
from twofold import AsyncClient, Upload


async def send_archive(url: str, name: str, path: Path) -> Archived:
    async with AsyncClient(service, url, protocol="rest") as client:
        # Over REST the chunks are the request body, sent as they are read;
        # another protocol would gather them into one message first.
        upload = Upload.of(read_chunks(path), content_type="application/x-tar", filename=path.name)
        archived: Archived = await client.put_archive(name=name, upload=upload)
        return archived

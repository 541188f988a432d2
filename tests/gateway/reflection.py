"""A gateway schema read by server reflection, as a test outside any event loop wants it."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import grpc

from twofold.gateway import from_reflection


def reflect(target: str, wait: float = 5.0) -> object:
    """Reflect in a thread of its own: grpcio's asyncio support keeps state per
    thread that a second event loop in the same thread trips over."""

    async def go() -> object:
        async with grpc.aio.insecure_channel(target) as channel:
            return await from_reflection(channel, wait=wait)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()

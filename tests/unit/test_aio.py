"""A wait with a time limit keeps the caller's cancellation, even when the result lands at the same moment."""

from __future__ import annotations

import asyncio

import pytest

from scraper._aio import within


async def test_a_cancel_that_lands_with_the_result_is_kept():
    arrived = asyncio.get_running_loop().create_future()
    waiting = asyncio.ensure_future(within(arrived, 10))
    await asyncio.sleep(0)  # it waits on the future now
    arrived.set_result("late")  # the result and the cancel in one turn of the loop
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_the_result_comes_back_within_the_limit():
    assert await within(asyncio.sleep(0, "done"), 10) == "done"


async def test_past_the_limit_is_a_timeout_and_the_wait_is_cancelled():
    never = asyncio.get_running_loop().create_future()
    with pytest.raises(asyncio.TimeoutError):
        await within(never, 0.01)
    assert never.cancelled()

"""Running a coroutine from synchronous code, so that SIGTERM ends it as cleanly as Ctrl-C does."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coro)`, except that a SIGTERM cancels the coroutine, as asyncio.run does on
    Ctrl-C, and the caller's own SIGTERM handler then runs outside the event loop.

    A Python SIGTERM handler that raises (as the CLI's does) would otherwise raise inside
    whichever task happens to be running: that task ends with the exception, asyncio logs it as
    never retrieved, with a traceback, and the other tasks are torn down without their cleanup.
    Cancelling runs every `finally` of the coroutine before the handler raises. Without a Python
    handler (the default action, or off the main thread) this is plain `asyncio.run`.
    """
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if on_main_thread else None
    if not callable(previous):
        return asyncio.run(coro)

    received = False
    main_task: asyncio.Task[Any] | None = None

    def on_sigterm(signum: int, frame: object) -> None:
        nonlocal received
        received = True
        if main_task is not None:
            main_task.cancel()
            main_task.get_loop().call_soon_threadsafe(lambda: None)  # wake a waiting loop

    async def main() -> T:
        nonlocal main_task
        main_task = asyncio.current_task()
        if received and main_task is not None:  # arrived while the loop was starting
            main_task.cancel()
        return await coro

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        result = asyncio.run(main())
    except asyncio.CancelledError:
        if not received:
            raise
        coro.close()  # never started if the signal came first
    else:
        if not received:
            return result
    finally:
        signal.signal(signal.SIGTERM, previous)
    previous(signal.SIGTERM, None)
    raise asyncio.CancelledError("terminated (SIGTERM)")

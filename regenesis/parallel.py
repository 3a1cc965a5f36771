"""The parallel runner of synthesis and evaluation: items through a thread pool, each outcome kept the
moment it is known, under one kind of progress display.

The work function records an item's failure in its outcome (a failed problem, an answer that is a
model error) instead of raising, so one bad item stops no other. ``keep`` runs in the calling thread as
each item finishes: it appends the outcome to the run's files and updates the display, so a killed run
loses only the items in flight and a rerun resumes from the records. What does raise (a model that
cannot load, ``keep`` refusing to go on, Ctrl-C) cancels the items not yet started, waits for those
running, and propagates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


def run_parallel(work: Callable[[Item], Outcome], items: Iterable[Item], keep: Callable[[Item, Outcome], None],
                 num_threads: int = 1) -> None:
    """``work`` on every item, ``num_threads`` at a time; ``keep(item, outcome)`` here as each one finishes."""
    with ThreadPoolExecutor(max_workers=max(1, num_threads)) as pool:
        futures = {pool.submit(work, item): item for item in items}
        try:
            for future in as_completed(futures):
                keep(futures[future], future.result())
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


def progress_display(enabled: bool = True) -> Progress:
    """The progress bars of a run, on stderr: name, bar, done of total, a status line, time taken and
    time left. Each bar needs a ``status`` field; it and the name are shown as plain text, never as
    markup, since a task name may hold brackets."""
    return Progress(TextColumn("{task.description:<28}", markup=False), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}", markup=False), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), disable=not enabled)

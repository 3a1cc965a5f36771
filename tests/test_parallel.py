"""The runner of synthesis and evaluation: every outcome kept once, in the calling thread, and a raise
from ``keep`` stops the run with no worker left running."""

import threading

import pytest

from regenesis.parallel import run_parallel


def test_every_outcome_is_kept_once_in_the_calling_thread():
    kept, threads = [], set()

    def keep(item, outcome):
        threads.add(threading.get_ident())
        kept.append((item, outcome))

    run_parallel(lambda item: item * item, range(20), keep, num_threads=4)
    assert sorted(kept) == [(item, item * item) for item in range(20)]
    assert threads == {threading.get_ident()}


def test_a_raise_in_keep_propagates_after_the_running_items_finished():
    released = threading.Event()
    started, finished, lock = [], [], threading.Lock()

    def work(item):
        with lock:
            started.append(item)
        if item:
            released.wait()  # every later item is still running when the first is kept
        with lock:
            finished.append(item)
        return item

    def keep(item, outcome):
        released.set()
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        run_parallel(work, range(50), keep, num_threads=2)
    assert sorted(finished) == sorted(started)

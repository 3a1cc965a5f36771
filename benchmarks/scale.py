"""Generations per second against an OpenAI-compatible server as the calls in flight grow.

The server is the tests' fake one in a process of its own, answering every call after a fixed latency,
so the ideal rate is in-flight ÷ latency and what falls short of it is the client's, or the CPU's that
both share. Each level sends ``--rounds`` × in-flight calls through ``resolve_lm`` (DSPy's own client,
cache off), once from that many threads and once as that many ``acall``s on one event loop, with the
client's CPU time per call beside each rate.

    .venv/bin/python benchmarks/scale.py [--latency 0.2] [--levels 1,8,64,256] [--rounds 4]

Measured on the project's 2-core machine (load average 5-6 from other jobs), 200 ms a call:

    in flight  ideal  threads (cpu ms/call)  async (cpu ms/call)
            1    5.0      4.8 (3.5)             4.8 (4.9)
            8   40.0     36.8 (2.9)            34.8 (4.1)
           64  320.0    225.9 (2.7)           139.6 (3.0)
          256 1280.0    299.9 (3.0)           237.1 (3.0)

The rate grows with the calls in flight until the client's CPU saturates: about 3 ms of CPU a call is
one core's worth at ~330 calls/s, on a machine whose two cores also run the server. DSPy's connection
pool (100 per client) is not the limit here (~60 calls were in flight on average at 256). Threads beat
``acall`` at every level, so the loop keeps its thread pool (``--num-threads``).
"""

import argparse
import asyncio
import multiprocessing
import sys
import socketserver
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import common  # noqa: F401  (offline cost map)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from regenesis.models import resolve_lm  # noqa: E402
from tests.fake_server import FakeServer, Fault  # noqa: E402


def threaded(lm, in_flight: int, calls: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        list(pool.map(lambda i: lm(f"call {i}"), range(calls)))
    return time.perf_counter() - started


def asynchronous(lm, in_flight: int, calls: int) -> float:
    async def main():
        gate = asyncio.Semaphore(in_flight)

        async def one(i):
            async with gate:
                await lm.acall(f"call {i}")

        await asyncio.gather(*(one(i) for i in range(calls)))

    started = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - started


def serve(latency: float, urls) -> None:
    """The fake server in a process of its own, so that its threads do not share the client's GIL."""
    # http.server writes the head and the body apart; with Nagle's algorithm on, the client's delayed ACK
    # adds 40 ms to every call
    socketserver.StreamRequestHandler.disable_nagle_algorithm = True
    server = FakeServer(lambda body: Fault(delay=latency, text="The answer is 4."))
    # socketserver listens with a backlog of 5: a burst of 256 connections would be reset, not served
    server._server.socket.listen(1024)
    with server:
        urls.put(server.url)
        threading.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the server takes per call")
    parser.add_argument("--levels", default="1,8,64,256", help="calls in flight, comma-separated")
    parser.add_argument("--rounds", type=int, default=4, help="calls per level = rounds × in-flight (at least 16)")
    args = parser.parse_args()
    urls: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(args.latency, urls), daemon=True)
    server.start()
    try:
        lm = resolve_lm("openai/scale-bench", api_base=urls.get(timeout=30), cache=False, num_retries=0,
                        max_tokens=16)
        lm("warm-up")
        print(f"latency {args.latency * 1000:.0f} ms a call; generations/s")
        print(f"{'in flight':>9} {'calls':>6} {'ideal':>8} {'threads':>8} {'cpu ms':>8} {'async':>8} {'cpu ms':>8}")
        for in_flight in map(int, args.levels.split(",")):
            calls = max(16, args.rounds * in_flight)
            ideal = in_flight / args.latency
            figures = []
            for run in (threaded, asynchronous):
                cpu = time.process_time()
                figures += [calls / run(lm, in_flight, calls), (time.process_time() - cpu) / calls * 1000]
            print(f"{in_flight:>9} {calls:>6} {ideal:>8.1f} " + " ".join(f"{f:>8.1f}" for f in figures), flush=True)
    finally:
        server.terminate()


if __name__ == "__main__":
    main()

"""Run :class:`FakeProvider` as its own process (for benchmarks)::

    python -m orchnb.testing.fake_server --port 0 --latency 0.02

The first line on stdout is the bound port; the server runs until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from ._fake_server import FakeProvider


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, serve, print the port, block until a signal.

    >>> main(["--help"])  # doctest: +SKIP
    """
    parser = argparse.ArgumentParser(prog="python -m orchnb.testing.fake_server",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--latency-max", type=float, default=None,
                        help="if set, latency is drawn uniformly from [latency, latency-max]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hang", type=float, default=30.0, help="seconds a timeout fault stalls")
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--chunk-delay", type=float, default=0.0,
                        help="seconds between the chunks of a streamed answer")
    parser.add_argument("--cut-after", type=int, default=2,
                        help="chunks a cut, truncate or stream_error fault lets through")
    for kind in ("429", "500", "503", "timeout", "malformed", "drop", "cut", "truncate",
                 "stream_error"):
        parser.add_argument(f"--rate-{kind.replace('_', '-')}", type=float, default=0.0,
                            metavar="P", help=f"probability of a {kind} fault per request")
    args = parser.parse_args(argv)

    latency: float | tuple[float, float] = args.latency
    if args.latency_max is not None:
        latency = (args.latency, args.latency_max)
    fake = FakeProvider(latency=latency, seed=args.seed, port=args.port, hang=args.hang,
                        retry_after=args.retry_after, chunk_delay=args.chunk_delay,
                        cut_after=args.cut_after)
    rates = {f"rate_{k}": getattr(args, f"rate_{k}") for k in
             ("429", "500", "503", "timeout", "malformed", "drop", "cut", "truncate",
              "stream_error")}
    fake.fault_rates(**rates)

    done = threading.Event()
    # SIGTERM would otherwise kill us without the clean shutdown below.
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    fake.start()
    print(fake.port, flush=True)
    print(f"orchnb fake server on {fake.anthropic_base_url} (OpenAI: {fake.openai_base_url})",
          file=sys.stderr, flush=True)
    while not done.wait(0.5):
        pass
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

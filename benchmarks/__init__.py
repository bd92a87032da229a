"""orchnb's benchmarks against LangGraph, LangChain and the plain-Python / raw-SDK floor.

    python -m benchmarks            # full run (several minutes), writes results/latest.{json,md}
    python -m benchmarks --quick    # a smoke run in under a minute
    python -m benchmarks --only chain,fanout

Every scenario runs the same work through every contender in one process, in rotating order,
repeated; results are medians with their spread and the ratio to the scenario's floor.
"""

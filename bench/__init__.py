"""The benchmark: ``python -m bench [--quick] [--json PATH]``.

It starts its own embedded database in a temporary directory, seeds it, runs the app
under uvicorn on loopback (one worker, in a child process) with a "floor" route beside
it — the driver's own find_one with the same projection, encoded with orjson — and
measures every surface against that floor in one run, alternating the variants.
"""

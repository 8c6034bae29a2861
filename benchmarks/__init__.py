"""Side-by-side benchmarks of ``sips_async`` against hand-written aiohttp code.

Run ``python -m benchmarks`` (everything), ``python -m benchmarks NAME`` (one of
``submit``, ``ingest``, ``roundtrip``, ``memory``) or add ``--quick`` for a short
smoke run (CI; no thresholds enforced, BENCHMARKS.md left alone).

Method, shared by every benchmark:

* Every party runs in its own process, started with ``multiprocessing``'s
  *spawn* method: the loopback aiohttp server(s), bound to 127.0.0.1 port 0 and
  reporting the port back to the parent, and one client process per side
  (the SDK and each baseline), so no two sides share an event loop.
* Sides run interleaved against the same server process: a warm-up round that
  is discarded, then rounds of one trial per side (``A B C``, then ``C B A``,
  ...), nine in a full run, two with ``--quick`` (a single trial moves by
  20-30% on a small shared VM; the memory benchmark, deterministic, uses
  three fresh processes per side). Each round yields a ratio
  SDK/baseline; the reported figure is the median of those ratios, and each
  side's own figures are medians across its trials.
* Each trial opens a fresh client (or receiver), warms it with one request per
  concurrent worker (connections, token), then runs a fixed number of
  operations with a fixed number of concurrent workers: every load loop is
  bounded and stops by itself (and under a deadline).
* Client-side CPU is ``time.process_time()`` of the process under test over
  the timed section, divided by the operations done; beside it, the part of
  that time spent in the cyclic garbage collector (timed with
  ``gc.callbacks``).
* Client processes run on asyncio and, when importable, on uvloop. Servers and
  load generators, which are the same for every side, use uvloop when it is
  importable so that they are not the bottleneck.

Results go to ``benchmarks/results/NAME.json`` (gitignored); a full run also
rewrites ``BENCHMARKS.md`` with the tables, the targets (PASS/FAIL) and the
machine description.
"""

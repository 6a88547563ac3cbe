"""Throughput of actors.exchange.book.OrderBook against the NaiveBook yardstick.

Replays the seeded operation stream of ``<repo>/../shared/bench/naive_book.py`` (override the
directory holding it with ``DESKSIM_SHARED``) through both books in the same process, best of
``--repeat`` runs each (fresh books every run), and prints ops/s and the ratio
OrderBook / NaiveBook. Exits non-zero if the two books disagree on the total filled quantity.

    python benchmarks/bench_book.py --ops 1000000 --repeat 3 --seed 1
    python benchmarks/bench_book.py --profile        # cProfile of one OrderBook run
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from actors.exchange.book import OrderBook  # noqa: E402
from actors.messages import OrderFilled  # noqa: E402


def _load_naive() -> Any:
    env = os.environ.get("DESKSIM_SHARED")
    base = Path(env) if env else REPO.parent / "shared"
    candidates = [base / "bench" / "naive_book.py", base / "naive_book.py"]
    for path in candidates:
        if path.is_file():
            sys.path.insert(0, str(path.parent))
            import naive_book

            return naive_book
    tried = ", ".join(str(p) for p in candidates)
    sys.exit(
        f"bench_book: cannot find naive_book.py (tried {tried}); "
        "set DESKSIM_SHARED to the directory containing bench/naive_book.py"
    )


def _replay(book: Any, ops: list[tuple[Any, ...]], collect: bool, gc_off: bool) -> tuple[float, list[Any]]:
    submit: Callable[..., Any] = book.submit
    cancel: Callable[..., Any] = book.cancel
    out: list[Any] = []
    keep = out.append
    gc.collect()
    if gc_off:
        gc.disable()
    try:
        t0 = time.perf_counter()
        if collect:
            for op in ops:
                if op[0] == "A":
                    keep(submit(op[1], op[2], op[3], op[4]))
                else:
                    keep(cancel(op[1]))
        else:
            for op in ops:
                if op[0] == "A":
                    submit(op[1], op[2], op[3], op[4])
                else:
                    cancel(op[1])
        dt = time.perf_counter() - t0
    finally:
        gc.enable()
    return dt, out


def _best(nb: Any, ops: list[tuple[Any, ...]], repeat: int, gc_off: bool) -> tuple[float, float]:
    """Best-of-``repeat`` seconds for (NaiveBook, OrderBook); runs interleaved so that load drift
    on a shared machine hits both alike. Events are dropped as produced (the exchange would
    forward them), as NaiveBook produces none."""
    best_naive = best_book = float("inf")
    for _ in range(repeat):
        best_naive = min(best_naive, _replay(nb.NaiveBook(), ops, False, gc_off)[0])
        best_book = min(best_book, _replay(OrderBook("BENCH"), ops, False, gc_off)[0])
    return best_naive, best_book


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--gc",
        choices=("both", "on", "off"),
        default="both",
        help="time with the cyclic GC enabled, disabled, or both (default)",
    )
    ap.add_argument("--profile", action="store_true", help="cProfile one OrderBook replay")
    args = ap.parse_args(argv)

    nb = _load_naive()
    ops = nb.make_stream(args.ops, seed=args.seed)
    n = len(ops)
    print(f"stream: {n} ops (seed {args.seed}), python {sys.version.split()[0]}")

    if args.profile:
        import cProfile
        import pstats

        book = OrderBook("BENCH")
        prof = cProfile.Profile()
        prof.enable()
        _replay(book, ops, False, False)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
        return 0

    modes = [False, True] if args.gc == "both" else [args.gc == "off"]
    timings = {gc_off: _best(nb, ops, args.repeat, gc_off) for gc_off in modes}

    # One more (untimed) replay that keeps the events, to check them against NaiveBook.
    naive = nb.NaiveBook()
    _replay(naive, ops, False, False)
    _, results = _replay(OrderBook("BENCH"), ops, True, False)
    n_events = fills = filled_taker = filled_maker = 0
    for evs in results:
        n_events += len(evs)
        for ev in evs:
            if type(ev) is OrderFilled:
                fills += 1
                if ev.liquidity == "taker":
                    filled_taker += ev.qty
                else:
                    filled_maker += ev.qty

    for gc_off, (best_naive, best_book) in timings.items():
        naive_rate, book_rate = n / best_naive, n / best_book
        label = "gc disabled during replay" if gc_off else "gc enabled (interpreter default)"
        print(f"[{label}]")
        print(f"  NaiveBook : {naive_rate:12,.0f} ops/s  (best of {args.repeat}: {best_naive:.3f} s)")
        print(f"  OrderBook : {book_rate:12,.0f} ops/s  (best of {args.repeat}: {best_book:.3f} s)")
        print(f"  ratio OrderBook/NaiveBook: {book_rate / naive_rate:.3f}x")
    print(
        f"OrderBook: {n_events:,} events, {fills:,} fill events ({fills // 2:,} matches), "
        f"filled qty {filled_taker:,}; NaiveBook filled qty {naive.filled:,}"
    )
    if filled_taker != naive.filled or filled_maker != filled_taker:
        print(
            f"WARNING: filled quantity disagrees: OrderBook taker {filled_taker:,} / maker "
            f"{filled_maker:,} vs NaiveBook {naive.filled:,}",
            file=sys.stderr,
        )
        return 1
    print("filled quantity agrees with NaiveBook")
    return 0


if __name__ == "__main__":
    sys.exit(main())

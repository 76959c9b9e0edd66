"""Work for the watchdog tests' children: module-level (found by name), stdlib only."""

import os
import time


def steady(rounds, seconds, progress):
    progress("start")
    for r in range(1, rounds + 1):
        time.sleep(seconds[r - 1] if isinstance(seconds, list) else seconds)
        progress("round", r, {"round": r})
    return "finished"


def hang_after_first_round(marker, progress):
    progress("start")
    progress("round", 1, None)
    attempts = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(attempts))
    if attempts == 1:
        time.sleep(1e6)  # stops making progress (as a parked XLA runtime would)
    progress("round", 2, None)
    return attempts


def hang_always(progress):
    progress("start")
    progress("round", 1, None)
    time.sleep(0.2)
    progress("round", 2, None)
    time.sleep(1e6)


def die(progress):
    progress("start")
    os._exit(3)


def fail(progress):
    raise ArithmeticError("the work itself failed")


def cells_hang(cells, outs, cache, tensorboard, progress):
    """In place of the runner's child work: two quick rounds, then no more progress."""
    hang_always(progress)

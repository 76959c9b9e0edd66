"""Deferred modules: gymnax's rendering imports cost nothing until something draws."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from metapbt._deferred import Deferred, defer

assert "graphlib" not in sys.modules
defer(("graphlib",))
import graphlib

assert isinstance(graphlib, Deferred)
assert list(graphlib.TopologicalSorter({"b": {"a"}}).static_order()) == ["a", "b"]  # the real one
assert not isinstance(sys.modules["graphlib"], Deferred)  # replaced on first use

from metapbt import envs

envs.make("cart_pole", "earth")
assert isinstance(sys.modules["seaborn"], Deferred), "gymnax imported seaborn"
assert "scipy.stats" not in sys.modules
import matplotlib.pyplot as plt

plt.figure()  # deferred pyplot still works
print("ok")
"""


def test_deferred_modules_load_on_first_use_and_gymnax_skips_its_renderers():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"

"""Traced programs kept on disk, so that a warm process loads them instead of tracing them again.

JAX's persistent compilation cache (`metapbt.compile_cache`) stores compiled programs,
but a process must still trace a function to Python-free form and lower it before it can look
the compiled program up: for a default CartPole run that is about a second of tracing and
lowering the trainer's two programs and the GP fit, every process. A `StoredProgram`
wraps such a jitted function: the first time it is called with a given signature it is exported
(`jax.export.export`), serialised and written beside the compilation cache; a later
process with the same key deserialises it and calls it, tracing nothing of the function.

The key is everything that shapes the program: the function's name, its owner's description
(for a trainer: environment, every member's context values, the agent, its preset's fields
and the population size), the static arguments, the structure, shapes and dtypes of the arguments,
the versions of JAX, jaxlib and the libraries that build the program (flax, optax, gymnax,
brax), the device, and a digest of this package's source. The whole key is stored in the file
and compared on load, so a file renamed, swapped or written by other code is never used; a
file that does not match, cannot be read or cannot be deserialised is replaced by tracing
again (with a warning for the unreadable ones). Deleting the directory is always safe.

Where: ``programs/`` inside the compilation cache's directory; off when that cache is off, or
with ``METAPBT_STORED_PROGRAMS=off`` (then every process traces, as before).
The program a process loads computes exactly what the traced one does (tested bitwise).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metapbt import compile_cache
from metapbt._atomic import write_atomic

logger = logging.getLogger(__name__)

FORMAT = 1
"""Bumped when the file layout changes."""

LIBRARIES = ("jax", "jaxlib", "flax", "optax", "gymnax", "brax", "distrax", "navix")
"""Packages whose versions are part of every key (what builds the traced programs)."""


ENV_VAR = "METAPBT_STORED_PROGRAMS"


def directory() -> Path | None:
    """Where programs are stored: ``programs/`` in the compilation cache (``None``: off)."""
    if os.environ.get(ENV_VAR, "").strip().lower() in compile_cache.OFF:
        return None
    cache = compile_cache.current()
    return Path(cache) / "programs" if cache else None


@functools.cache
def source_digest() -> str:
    """SHA-256 of every Python file of this package (any change to the code changes keys)."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.cache
def _environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}  # None: not installed
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    device = jax.devices()[0]
    return {
        "format": FORMAT,
        "versions": versions,
        "platform": device.platform,
        "device": device.device_kind,
        "source": source_digest(),
    }


def _programs(jitted: Callable[..., Any]) -> int:
    """Programs a ``jax.jit`` function has compiled (its private ``_cache_size``)."""
    return jitted._cache_size()  # type: ignore[attr-defined]  # jax's types omit it


class UndescribableError(TypeError):
    """A static argument whose every field cannot be written into a key."""


def describe(value: Any) -> Any:
    """``value`` as JSON data with every field, or `UndescribableError`.

    Dataclasses (a GP model, its kernel and constraints) are described field by field, all
    fields (those left out of their ``repr`` too), with their type; anything else that is not
    plain data (a function, an arbitrary object) cannot be described, so a program closing over
    it is never stored.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return [describe(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): describe(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        kind = f"{type(value).__module__}.{type(value).__qualname__}"
        fields = {f.name: describe(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"type": kind, **fields}
    raise UndescribableError(f"cannot describe a {type(value).__name__} in a key")


def signature(args: tuple[Any, ...]) -> tuple[list[Any], Any, list[jax.ShapeDtypeStruct]]:
    """(flat leaves, tree structure, shape and dtype of each leaf) of ``args``.

    Weak types are left out: a program is traced for strong types, which every later state
    has (a fresh state's step counters are weakly typed, a trained one's are not, and a
    deserialised program returns strong types), so one program serves both.
    """
    leaves, tree = jax.tree.flatten(args)
    leaves = [leaf if hasattr(leaf, "dtype") else jnp.asarray(leaf) for leaf in leaves]
    return leaves, tree, [jax.ShapeDtypeStruct(np.shape(leaf), leaf.dtype) for leaf in leaves]


class StoredProgram:
    """A jitted function, exported on first use and loaded from disk by later processes.

    Args:
        name: The function's name in the key (``"train"``, ``"gp.fit"``).
        fn: A ``jax.jit``-wrapped function of pytrees of arrays (static arguments by keyword).
        owner: Description of everything the function closes over that shapes its program (a
            trainer's environment, contexts, preset and size): plain data or dataclasses
            (`describe`). Static arguments are described the same way; a program with
            one that cannot be described is not stored (it runs traced, as before); ``None``:
            never stored (a user's code shapes it).
        output: The output's tree structure, from the arguments
            (``lambda args: jax.tree.structure(args[0])``); ``None``: the output is one array.
    """

    def __init__(
        self,
        name: str,
        fn: Callable[..., Any],
        owner: Mapping[str, Any] | None,
        output: Callable[[tuple[Any, ...]], Any] | None = None,
    ) -> None:
        self.name, self.fn, self.output = name, fn, output
        try:
            self._owner: Any = None if owner is None else describe(owner)
        except UndescribableError as err:
            logger.debug("%s not stored: %s", name, err)
            self._owner = None
        # Per stored file (the store's folder and the key's digest): the jitted call and the
        # output's tree structure (None: one array). Keyed by file, so another store (a
        # changed compilation cache directory) loads or writes its own.
        self._calls: dict[Path, tuple[Callable[..., Any], Any]] = {}

    def __call__(self, *args: Any, **static: Any) -> Any:
        """``fn(*args, **static)``, through the stored program where the store is on."""
        folder = directory()
        if folder is None or self._owner is None:
            return self.fn(*args, **static)
        try:
            described = describe(static)
        except UndescribableError as err:
            logger.debug("%s not stored: %s", self.name, err)
            return self.fn(*args, **static)
        leaves, tree, specs = signature(args)
        key = {
            "name": self.name,
            "owner": self._owner,
            "static": described,
            "tree": str(tree),
            "avals": [[list(x.shape), str(x.dtype)] for x in specs],
            **_environment(),
        }
        text = json.dumps(key, sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        path = folder / f"{digest}.bin"
        if path not in self._calls:
            call = self._load(path, text, tree, specs, static)
            output = None if self.output is None else self.output(jax.tree.unflatten(tree, leaves))
            self._calls[path] = call, output
        call, output = self._calls[path]
        # Strong types in: one compiled call for a fresh state and a trained one.
        out = call(*(_strong(leaf) for leaf in leaves))
        return out[0] if output is None else jax.tree.unflatten(output, out)

    def cache_size(self) -> int:
        """Programs this function has compiled in this process (a new input adds none)."""
        return _programs(self.fn) + sum(_programs(call) for call, _ in self._calls.values())

    def _load(
        self, path: Path, key: str, tree: Any, specs: list[Any], static: Mapping[str, Any]
    ) -> Callable[..., Any]:
        """The jitted call of the stored program at ``path``, exporting it first if needed."""
        exported = read(path, key)
        if exported is not None:
            logger.debug("loaded %s (%s)", self.name, path.name)
            return jax.jit(exported.call)
        logger.debug("tracing and storing %s (%s)", self.name, path.name)
        fn = self.fn

        @jax.jit
        def flat(*leaves: Any) -> list[Any]:  # over flat leaves: no tree to serialise
            return jax.tree.leaves(fn(*jax.tree.unflatten(tree, leaves), **static))

        try:
            exported = jax.export.export(flat)(*specs)
        except Exception as err:  # a program JAX cannot export still runs, traced as before
            logger.warning("%s cannot be stored (%s): traced in every process", self.name, err)
            return flat
        self._store(path, key, exported)
        return jax.jit(exported.call)

    def _store(self, path: Path, key: str, exported: Any) -> None:
        """Write ``exported`` under ``key`` (a failure only warns)."""
        try:
            blob = bytes(exported.serialize())
            write_atomic(path, lambda tmp: tmp.write_bytes(_header(key) + blob))
        except Exception as err:  # storing is an optimisation: never stop a run
            logger.warning("could not store the traced program %s (%s)", self.name, err)


def _strong(leaf: Any) -> Any:
    """``leaf`` without a weak type and committed to its device (the values are unchanged).

    Either difference would compile the loaded call again: a fresh state's counters are weakly
    typed, and a state's new hyperparameters from the host (``set_hparams``) are uncommitted
    where a program's outputs are committed.
    """
    if getattr(leaf, "weak_type", False):
        leaf = jax.lax.convert_element_type(leaf, leaf.dtype)
    if isinstance(leaf, jax.Array) and not leaf.committed:
        leaf = jax.device_put(leaf, next(iter(leaf.devices())))
    return leaf


def _header(key: str) -> bytes:
    return key.encode() + b"\n"


def read(path: Path, key: str) -> Any | None:
    """The exported program stored at ``path`` under exactly ``key``, else ``None``.

    A missing file or one stored under another key is a quiet miss; a file that cannot be
    read or deserialised is a miss with a warning (it is replaced by the next export).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        logger.warning("traced program %s unreadable (%s): tracing again", path.name, err)
        return None
    stored, _, blob = data.partition(b"\n")
    if stored != key.encode():
        logger.debug("traced program %s was stored under another key: tracing again", path.name)
        return None
    try:
        return jax.export.deserialize(bytearray(blob))
    except Exception as err:  # any corruption means: trace again
        logger.warning("traced program %s is corrupt (%s): tracing again", path.name, err)
        return None

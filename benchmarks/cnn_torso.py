"""The CNN torso's convolution: XLA's convolution against patches times a dense kernel.

    python benchmarks/cnn_torso.py [--env gymnax:Breakout-MinAtar] [--members 4] [--repeats 3]

Trains ``--members`` PPO members (``fast`` preset) for one 16,000-step interval each on an
image environment, with the torso as shipped (:class:`metapbt.engine.networks.ConvTorso`:
``conv_general_dilated_patches`` then a dense kernel) and with ``flax.linen.Conv`` in its place
(the same 3x3 SAME convolution of 16 channels), and with the MLP torso on the flattened image for
scale. Per variant: one warm-up call (compiling), then ``--repeats`` timed calls; prints the
median seconds and env steps/s and writes benchmarks/results/cnn_torso.json. Runs unchanged on a
GPU. Measure on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import flax.linen as nn
import jax

from metapbt import stored_programs
from metapbt.engine import networks, presets
from metapbt.engine.factory import make_trainer


class XlaConvTorso(nn.Module):
    """``ConvTorso`` with XLA's convolution (``flax.linen.Conv``)."""

    channels: int = 16

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        lead = x.shape[:-3]
        y = x.reshape((-1, *x.shape[-3:]))
        y = nn.relu(nn.Conv(self.channels, (3, 3), padding="SAME")(y))
        return y.reshape((*lead, -1))


def time_variant(env: str, members: int, repeats: int, torso: str, conv: type) -> list[float]:
    """Seconds of ``repeats`` timed one-interval calls (after one warm-up call)."""
    networks.ConvTorso = conv  # the name _mlp looks up when the network is traced
    config = presets.make("fast", torso=torso)
    trainer = make_trainer(env, None, config, members)
    state = trainer.init(jax.random.PRNGKey(0), [{"lr": 3e-4}] * members)
    state = jax.block_until_ready(trainer.train(state, 16_000))
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        state = jax.block_until_ready(trainer.train(state, 16_000))
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    # The variants share a program's key (same env, preset and size): never load a stored one.
    os.environ[stored_programs.ENV_VAR] = "off"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="gymnax:Breakout-MinAtar")
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    shipped = networks.ConvTorso
    variants = {
        "patches (shipped)": ("cnn", shipped),
        "flax Conv": ("cnn", XlaConvTorso),
        "mlp on the flattened image": ("mlp", shipped),
    }
    device = jax.devices()[0]
    print(f"device: {device.platform} {device.device_kind}; {args.env}, {args.members} members")
    results = {}
    for name, (torso, conv) in variants.items():
        seconds = time_variant(args.env, args.members, args.repeats, torso, conv)
        median = statistics.median(seconds)
        rate = args.members * 16_000 / median
        results[name] = {"seconds": seconds, "median_s": median, "env_steps_per_s": rate}
        print(f"{name:28s} {median:7.2f} s per interval  {rate:9,.0f} env steps/s")
    networks.ConvTorso = shipped
    out = Path(__file__).parent / "results" / "cnn_torso.json"
    out.parent.mkdir(exist_ok=True)
    meta = {"device": f"{device.platform} {device.device_kind}", **vars(args)}
    out.write_text(json.dumps({**meta, "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Add the protocol to bundled meta-data files written before it was recorded.

    python tools/record_bundled_protocol.py src/metapbt/data/meta --preset fast

The rows of each file are checked against the protocol (population = distinct members, the
last time = budget, the time step = interval) before the file's metadata is rewritten (atomically);
a file whose rows disagree is reported and left unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from metapbt._atomic import write_atomic


def protocol_of_rows(path: Path, preset: str) -> dict[str, object]:
    """The protocol a file's rows imply (members, last time, time step) under ``preset``."""
    frame = pq.read_table(path).to_pandas()
    times = np.unique(frame["time"].to_numpy())
    steps = np.unique(np.diff(times))
    if len(steps) != 1:
        raise ValueError(f"{path}: irregular sync points {steps}")
    return {
        "preset": preset,
        "population": int(frame["member"].nunique()),
        "budget": int(times.max()),
        "interval": int(steps[0]),
    }


def main() -> int:
    """Rewrite every file's metadata under the root; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--preset", required=True)
    args = parser.parse_args()
    failed = 0
    for path in sorted(args.root.glob("*/*/*.parquet")):
        table = pq.read_table(path)
        meta = json.loads(table.schema.metadata[b"metapbt"])
        try:
            protocol = protocol_of_rows(path, args.preset)
        except ValueError as err:
            print(err, file=sys.stderr)
            failed += 1
            continue
        if meta.get("protocol") not in (None, protocol):
            print(f"{path}: records {meta['protocol']}, rows say {protocol}", file=sys.stderr)
            failed += 1
            continue
        meta["protocol"] = protocol
        table = table.replace_schema_metadata({b"metapbt": json.dumps(meta).encode()})
        write_atomic(path, lambda tmp, table=table: pq.write_table(table, tmp))
        print(f"{path}: {protocol}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env bash
# The development-set choice of the -patient variants' rule (issue "Beyond the portfolio"):
# explore_quality.py's rising, moving and good-start problems, 20 seeds, for every window and
# tolerance below. Writes benchmarks/results/explore_quality_patience_w<W>_t<T>.json; the
# figures and the choice are in docs/concepts.md ("Patience"). Deterministic; about 2 minutes
# per setting on the 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
for w in 1 2 3; do
    for t in 0 0.05 0.1 0.2; do
        label="patience_w${w}_t${t}"
        [ -f "benchmarks/results/explore_quality_${label}.json" ] && continue
        python benchmarks/explore_quality.py --methods pbt-patient,pb2-star-patient \
            --scenarios rising,moving,good --no-calibration --seeds 20 \
            --patience "window=${w},tolerance=${t}" --label "$label"
    done
done
# The unpatient bases, for comparison.
[ -f benchmarks/results/explore_quality_patience_base.json ] ||
    python benchmarks/explore_quality.py --methods pbt,pb2-star \
        --scenarios rising,moving,good --no-calibration --seeds 20 --label patience_base

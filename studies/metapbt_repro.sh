#!/usr/bin/env bash
# Builds the inputs of studies/metapbt_repro.toml, runs the study and writes its report.
# Every step resumes where it stopped (finished runs and cells are skipped): after an
# interruption, run this script again. About 6 hours on an idle 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."

META=src/metapbt/data/meta
RUNS=studies/results/meta_runs

# 1. Meta-data: PB2 on the reference's grids, under the study's protocol for each env.
metapbt metadata build --env cart_pole --contexts grid:length --method pb2 --seeds 3 \
    --preset classic --population 4 --budget 600000 --interval 40000 \
    --out "$META/cart_pole@length" --runs "$RUNS/cart_pole@length"
LEGS="leg_height=1.6;leg_height=3.2;leg_height=4.8;leg_height=6.4;leg_height=8"
LEGS="$LEGS;leg_height=9.6;leg_height=11.2;leg_height=12.8;leg_height=14.4;leg_height=16"
metapbt metadata build --env lunar_lander --contexts "$LEGS" --method pb2 --seeds 1 \
    --preset box2d --population 4 --budget 520000 --interval 52000 \
    --out "$META/lunar_lander@leg_height" --runs "$RUNS/lunar_lander@leg_height"

# 2. The study and its report.
metapbt study run studies/metapbt_repro.toml
metapbt study report studies/metapbt_repro.toml --out studies/results/metapbt_repro_report

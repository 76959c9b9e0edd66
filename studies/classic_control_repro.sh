#!/usr/bin/env bash
# Builds the inputs of studies/classic_control_repro.toml, runs the study and writes its report.
# Every step resumes where it stopped (finished runs, tasks and cells are skipped): after an
# interruption, run this script again. About 4-5 hours on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVS=(cart_pole mountain_car pendulum acrobot)
PLANETS=(uranus venus saturn earth neptune)
PROTOCOL=(--preset classic --population 4 --budget 600000 --interval 40000)

# 1. Meta-data: PB2 on every task, 3 seeds, into the package's bundled store.
for env in "${ENVS[@]}"; do
    metapbt metadata build --env "$env" --contexts planets --method pb2 --seeds 3 "${PROTOCOL[@]}" \
        --out "src/metapbt/data/meta/$env" --runs "studies/results/meta_runs/$env"
done

# 2. Portfolios: the reference's three steps across all 20 tasks, one candidate per task.
PF=studies/portfolios/classic
metapbt portfolio candidates --env cart_pole --env mountain_car --env pendulum --env acrobot \
    --contexts planets --configs 30 --seeds 4 --steps 160000 --best 1 --preset classic --out "$PF"
metapbt portfolio evaluate "$PF"
for env in "${ENVS[@]}"; do
    for planet in "${PLANETS[@]}"; do
        # general (the reference's): covers all 19 other tasks
        metapbt portfolio select "$PF" --size 5 --exclude "$env $planet" \
            --out "$PF/general/${env}__${planet}.json" > /dev/null
        # per environment: covers the env's 4 other planets, from every env's candidates
        metapbt portfolio select "$PF" --size 5 --exclude "$env $planet" --env "$env" \
            --out "$PF/$env/${env}__${planet}.json" > /dev/null
    done
done

# 3. The study and its report.
metapbt study run studies/classic_control_repro.toml
metapbt study report studies/classic_control_repro.toml --out studies/results/classic_control_repro_report

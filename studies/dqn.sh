#!/usr/bin/env bash
# Builds the inputs of studies/dqn.toml (DQN meta-data and a DQN portfolio), runs the study and
# writes its report. Every step resumes where it stopped: after an interruption, run it again.
# Not run yet: its first step is `metapbt calibrate --agent dqn` on acrobot (below), which says
# whether the `classic` DQN preset learns Acrobot within 100k steps; the study waits for it.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVS=(cart_pole acrobot)
PLANETS=(uranus venus saturn earth neptune)
PROTOCOL=(--agent dqn --preset classic --population 4 --budget 100000 --interval 10000)

# 0. Calibration: does DQN learn each env, and do its hyperparameters matter?
metapbt calibrate --agent dqn --env cart_pole --env acrobot --configs 16 \
    --out studies/results/calibration_dqn

# 1. Meta-data: PB2 on every task, 3 seeds (DQN runs: meta methods refuse PPO meta-data).
for env in "${ENVS[@]}"; do
    metapbt metadata build --env "$env" --contexts planets --method pb2 --seeds 3 "${PROTOCOL[@]}" \
        --out "studies/results/dqn_meta/$env" --runs "studies/results/dqn_meta_runs/$env"
done

# 2. Portfolio: candidates scored by DQN on all 10 tasks, one per task; the target left out.
PF=studies/portfolios/dqn
metapbt portfolio candidates --agent dqn --env cart_pole --env acrobot --contexts planets \
    --configs 20 --seeds 2 --best 1 --preset classic --out "$PF"
metapbt portfolio evaluate "$PF"
for env in "${ENVS[@]}"; do
    for planet in "${PLANETS[@]}"; do
        metapbt portfolio select "$PF" --size 4 --exclude "$env $planet" \
            --out "$PF/general/${env}__${planet}.json" > /dev/null
    done
done

# 3. The study and its report.
metapbt study run studies/dqn.toml
metapbt study report studies/dqn.toml --out studies/results/dqn_report

#!/usr/bin/env bash
# Runs studies/warm_attribution.toml and writes its report and the explore-step picks. Every
# step resumes where it stopped: after an interruption, run this script again. About 10-11 hours
# on an idle 2-core machine (estimate in the study file); never beside another study.
set -euo pipefail
cd "$(dirname "$0")/.."

# Seeds 0-4 of every task first (a complete 5-seed study), then seeds 5-9.
metapbt study run studies/warm_attribution.toml --first-seeds 5
metapbt study run studies/warm_attribution.toml
metapbt study report studies/warm_attribution.toml --out studies/results/warm_attribution_report
python studies/warm_picks.py studies/warm_attribution.toml
python studies/warm_attribution.py

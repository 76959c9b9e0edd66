"""Meta-data: previous runs on related tasks, their scaling to a target, and RGPE weights.

This layer is data and numpy maths only; the explorers fit surrogate models on what it returns.
"""

"""Offline experiment grids above the engine: portfolio construction and studies."""

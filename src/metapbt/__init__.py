"""metapbt: population-based hyperparameter optimisation for reinforcement learning.

The public core:

```python
from metapbt import Float, Population, SearchSpace

space = SearchSpace(
    {"lr": Float(1e-5, 1e-3, log=True), "clip": Float(0.1, 0.5)}
)
pop = Population(space, size=4, method="pb2-star", seed=0)
configs = pop.ask()
decisions = pop.tell(step=40_000, rewards=[...])
```
"""

from metapbt._version import __version__ as __version__  # re-exported
from metapbt.errors import (
    ConfigError,
    DiskFullError,
    MetaPBTError,
    PopulationStateError,
    SurrogateError,
    UnknownNameError,
)
from metapbt.population.decisions import Clone, Decision, Keep
from metapbt.population.history import History, SurrogateData
from metapbt.population.methods import Method
from metapbt.population.population import Population
from metapbt.population.space import Categorical, Config, Float, Int, SearchSpace, default_space

__all__ = [
    "Categorical",
    "Clone",
    "Config",
    "ConfigError",
    "Decision",
    "DiskFullError",
    "Float",
    "History",
    "Int",
    "Keep",
    "MetaPBTError",
    "Method",
    "Population",
    "PopulationStateError",
    "SearchSpace",
    "SurrogateData",
    "SurrogateError",
    "UnknownNameError",
    "default_space",
]

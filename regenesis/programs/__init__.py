"""The DSPy modules that propose reasoning paths: ReGenesis and the baselines."""

from regenesis.programs.chain_of_thought import ChainOfThoughtSolver
from regenesis.programs.regenesis import ReGenesis
from regenesis.programs.self_discover import SelfDiscover
from regenesis.programs.star import STaR

__all__ = ["ChainOfThoughtSolver", "ReGenesis", "STaR", "SelfDiscover"]

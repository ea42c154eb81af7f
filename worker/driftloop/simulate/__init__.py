"""Simulation mode: synthetic traffic with injected drift, a closed-loop simulated system, reports.

`driftloop simulate` and `driftloop demo` drive it; see `runner.run_simulation`.
"""

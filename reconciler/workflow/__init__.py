"""The use cases (plan, apply, destroy, status...): spec, client, lockfile, planner, executor."""

"""Session-wide fixtures. Service fixtures live in tests/plugins/ (one file per service)."""

pytest_plugins = ["tests.plugins.slurm", "tests.plugins.mlflow_server"]

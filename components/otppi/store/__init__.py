"""The shared store: one SQLite database, its models, migrations and settings."""

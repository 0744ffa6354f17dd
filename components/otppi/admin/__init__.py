"""The admin web: first-run setup, login, every settings page, tools and the live monitor (port 8888)."""

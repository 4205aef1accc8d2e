"""The admin API (aiohttp handlers). One API serves the CLI (bearer) and, later, the console."""

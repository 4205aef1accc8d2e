"""The node bus: gateway nodes sharing one database tell each other to end sessions.

`signals` is the pure codec (what a signal may say, validated on receipt); `sqlite_bus` polls a
table in the shared SQLite file (one machine, several processes); `postgres_bus` uses LISTEN/NOTIFY
on a dedicated connection; `open` picks one from gateway.json's "database" (docs/SCALE-OUT.md).
"""

"""The operator's side of the admin API: `staffroom login`, users, keys, audit (a thin client)."""

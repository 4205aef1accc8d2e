"""The gateway's listening socket: who may hold a connection, and for how long."""

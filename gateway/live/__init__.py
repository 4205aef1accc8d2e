"""The live path: the tunnel endpoint, the login decision, the session broker, live sessions and
the observers (recording, officers watching) that see their frames."""

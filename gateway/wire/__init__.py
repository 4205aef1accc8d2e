"""Wire formats shared by gateway and agent. Imports only the standard library."""

"""PyInstaller's entry script for the staffroom-agent bundle (packaging/staffroom-agent.spec)."""

from __future__ import annotations

from agent.main import main

raise SystemExit(main())

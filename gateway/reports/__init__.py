"""Records for the board's offices: work hours from the audit trail, signed work receipts."""

"""The run screen's regions, one widget per file."""

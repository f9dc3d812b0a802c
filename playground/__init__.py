"""Agent Playground."""

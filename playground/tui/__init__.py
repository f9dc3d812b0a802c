"""The Textual TUI: the home and run screens, their widgets, and the bridge from engine events.

Only this package imports Textual; the engine runs without it.
"""

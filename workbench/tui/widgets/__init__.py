"""Widgets of our own that several screens use: the fast table, the footer."""

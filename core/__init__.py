"""Headlight core: everything that is neither UI nor SQL."""

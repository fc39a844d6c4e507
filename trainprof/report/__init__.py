"""Render an Analysis: terminal, JSON (and HTML, TensorBoard)."""

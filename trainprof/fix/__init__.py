"""Fixes: codemods (declared in the rules' files), `apply` and `verify`."""

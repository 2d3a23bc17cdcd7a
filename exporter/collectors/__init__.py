"""Collectors, one module or package per config section; `registry` lists them.

Importing this package or `base` loads no collector (nor its database or Redis driver): only
the registry and the command line that uses it pull every collector in.
"""

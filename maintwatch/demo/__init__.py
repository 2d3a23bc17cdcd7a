"""The demo: a small broken world, its configs, and a launcher that runs it under supervisord.

`python -m maintwatch.demo` (or `bash scripts/demo.sh`) builds `var/demo/`, validates every
config and replaces itself with `supervisord -n`; `--check` stops after validation.
"""

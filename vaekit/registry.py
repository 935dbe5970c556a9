"""Name -> class tables for the families users choose by name (likelihoods, priors, objectives)."""

from __future__ import annotations


def registrar(table: dict):
    """A `register(name)` class decorator for `table`: it stores the class under `name` (the name
    --likelihood, --prior or --objective and config.yaml use) and sets the class's `name`."""

    def register(name: str):
        def wrap(cls):
            cls.name = name
            table[name] = cls
            return cls

        return wrap

    return register

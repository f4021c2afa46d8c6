"""Argument types shared by the command modules (``main``, ``registry``, ``governance``)."""

from __future__ import annotations

import argparse
from typing import Callable


def name_list(value: str) -> list[str]:
    """``NAME,NAME,...`` as a list (``--features``, ``--keep``, ``--for-table``); an empty name is a usage error.

    >>> name_list("id, region")
    ['id', 'region']
    """
    items = [v.strip() for v in value.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(f"expected NAME,NAME,... without empty names, got {value!r}")
    return items


def number_from_one(noun: str) -> Callable[[str], int]:
    """An argument type for numbers that start at 1 (migrations, versions), named ``noun`` in its errors.

    >>> number_from_one("version number")("3")
    3
    """

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {noun}, got {value!r}") from None
        if number < 1:
            raise argparse.ArgumentTypeError(f"{noun}s start at 1")
        return number

    return parse


#: versions are PostgreSQL integers
MAX_VERSION = 2**31 - 1


def version_number(value: str) -> int:
    """A model version on the command line: 1 .. 2147483647.

    >>> version_number("2")
    2
    """
    n = number_from_one("version number")(value)
    if n > MAX_VERSION:
        raise argparse.ArgumentTypeError(f"version {value} is beyond the largest version number, {MAX_VERSION}")
    return n


def model_ref(value: str) -> str:
    """NAME, NAME@VERSION or NAME@ALIAS; a version is checked as :func:`version_number`.

    >>> model_ref("churn@3")
    'churn@3'
    """
    name, at, rest = value.partition("@")
    if at and rest.strip().isdigit():
        try:
            version_number(rest)
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentTypeError(f"{value!r}: {e}") from None
    return value

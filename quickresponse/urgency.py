"""Recognise a message that describes an emergency happening now."""

from __future__ import annotations

import re

# Placeholder patterns; the tuned detector replaces these.
_URGENT = re.compile(
    r"着火|失火|起火|火灾|救命|被困|困住|煤气味|燃气味|晕倒|昏倒|没有呼吸|没呼吸|溺水|触电"
    r"|\bfire\b|\bhelp\b|trapped|collapsed|not breathing|drowning|smell gas"
)


def is_urgent(normalised: str) -> bool:
    return bool(_URGENT.search(normalised))

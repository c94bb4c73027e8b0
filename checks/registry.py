"""Every check by id: the audit's numbers (1.1 to 7.3) and the unit checks of the two functions.

Each area module defines ``CHECKS``, a dict of id -> check function; this merges them in the
audit's order.
"""

from __future__ import annotations

from collections.abc import Callable

from checks import checkpoints, loop, modes, outcomes, schedule_clipping, units

CHECKS: dict[str, Callable[..., None]] = {
    **units.CHECKS,
    **loop.CHECKS,
    **modes.CHECKS,
    **schedule_clipping.CHECKS,
    **outcomes.CHECKS,
    **checkpoints.CHECKS,
}

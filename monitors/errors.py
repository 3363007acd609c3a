"""What a command can answer besides success, so a page or the CLI catches what it means.

    MonitorsError
     ├── NotFound   no such alert, monitor, dataset, run or partition
     ├── Refused    the request is understood but not allowed now (someone changed the alert
     │              since it was read, no name given, a finished run cancelled)
     ├── Invalid    the input itself is wrong (a config, an option, a date range)
     └── Unreachable  something the work depends on is out of reach now (a SQL source that
                    refuses connections or times out): an outage, tried again later,
                    never a verdict on the data

Each is a ValueError as well, so callers written before the hierarchy keep working.
"""
from __future__ import annotations


class MonitorsError(ValueError):
    """Anything the product refuses with a sentence a person can act on."""


class NotFound(MonitorsError, LookupError):
    """The thing named does not exist (or not any more)."""


class Refused(MonitorsError):
    """Understood, but not allowed in the current state."""


class Invalid(MonitorsError):
    """The input is wrong; the message names what and where."""


class Unreachable(MonitorsError):
    """An outage, not bad input: nothing is recorded about the data, and the work is tried
    again later."""

"""Events pushed to subscribers (the staff tray): the audit trail's records, filtered per peer."""

from guardd.events.bus import EventBus, Subscriber
from guardd.events.visibility import visible

__all__ = ["EventBus", "Subscriber", "visible"]

"""Notifications: the outbox rows written with each change, and their delivery.

``notices`` plans what an event tells (a referrer's receipt and outcome, ``notify:`` on
transitions and states); ``outbox`` decides who is told and makes every outbox row (each
payload filtered for its agency; email carries no field value unless the workflow opts
in). ``claims`` picks the due rows (a lease per claim) and ``sweep`` puts the forgotten
onto the queue; ``delivery`` sends them through ``channels`` (signed webhooks in the
Standard Webhooks envelope of ``events``, email rendered by ``render`` with ``acklink``
acknowledge links, a log file), records every attempt and retries or dead-letters
(``facts``). ``operations`` are the administrator's: list and replay dead letters,
re-enable a webhook, send a test notification.
"""

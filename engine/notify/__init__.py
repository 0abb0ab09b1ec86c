"""Notifications: the outbox rows written with each change, and their delivery.

``outbox`` decides who is told and plans the rows (each payload filtered for its
agency); ``claims`` picks the due rows (a lease per claim), ``sweep`` puts the forgotten
onto the queue; ``delivery`` sends them through ``channels`` (signed webhooks, email, a log
file) and records every attempt, retrying or dead-lettering.
"""

"""Notifications: the outbox rows written with each change, and their delivery.

``outbox`` decides who is told and plans the rows (each payload filtered for its
agency); ``delivery`` claims due rows, sends them through ``channels`` (signed
webhooks, email, a log file) and records every attempt, retrying or dead-lettering.
"""

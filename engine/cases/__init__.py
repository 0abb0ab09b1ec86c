"""Cases: the one write path (open, fire, assign) and every read of a case.

``service`` is the entry point; ``data`` checks field values against their types;
``access`` decides who may act and read; ``audit`` plans the hash-chained events and
verifies the chain; ``milestones`` plans what a step reaches; ``views`` are the frozen,
reader-filtered results; ``queue`` is an agency's work list.
"""

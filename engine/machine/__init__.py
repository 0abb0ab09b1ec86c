"""Machines: a deployed workflow version compiled once to a ``transitions`` machine.

``deploy`` stores immutable (workflow, version) rows and caches their compiled form;
``compiled`` decides transitions (guards, roles, parallel tracks); ``hsm`` is the
``transitions`` subclass it builds on; ``reject`` explains refused triggers.
"""

"""Storage: the tables, their migrations, engines and sessions, and the fast path.

``tables`` is the schema (SQLAlchemy models, used for reads and administration);
``db`` makes engines and sessions and applies migrations; ``fastpath`` runs Core
statements compiled once on the DB-API cursor, and is the only module that touches a
cursor; ``caserow`` loads, claims and writes the case row; ``writers`` holds the one
writer per table that every write path uses.
"""

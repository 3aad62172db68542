"""The ``sqlite:///`` store: samples, derived values, alarm events, quarantined records, the table
inventory and leases in one file.

- store.py: SQLiteStore, the Store protocol over the database, with its three worker threads;
- db.py: SQLiteDB, one connection: opening and setting up the file, health checks, writes;
- reads.py: SQLiteDB's reads (a mixin), and the caches that turn row ids back into values;
- schema.py: the tables, the SQL statements and the constants they share.
"""

from receiver.store.sqlite.store import SYNCHRONOUS_MODES, SQLiteStore

__all__ = ["SYNCHRONOUS_MODES", "SQLiteStore"]

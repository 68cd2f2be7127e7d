"""`kubelabel backup` / `kubelabel restore`: the whole database to a bucket and back.

- store.py: where a backup lives (a bucket URI), its gzip parts and its manifest, pruning;
- dump.py: the consistent snapshot of SQLite (the backup API) or PostgreSQL (one read-only
  snapshot, `COPY ... TO STDOUT`);
- load.py: restore into an empty database, checksums verified;
- cli.py: the two commands (configuration from env and flags, output, exit codes).
"""

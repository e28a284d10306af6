// Package postgres is a storage engine on a PostgreSQL 15+ schema (pgx
// v5): the cloud store when several cloud workers share one database.
// Several Stores, in one process or many, may open the same schema.
//
// # Tables
//
// MigrationSQL gives the DDL (create_tables runs it at start when
// something is missing, under an advisory lock). items holds one row per
// record keyed by (pk, sk); entries one row per secondary index entry,
// keyed by (ix, hash, sort, pk, sk); outbox one row per emitted change
// keyed by seq; meta the layout version and the highest seq trimmed.
// Keys, index values and items are bytea: bytea compares byte by byte
// (memcmp, then length), exactly as badger orders its keys, where text
// would follow a collation and refuse NUL. The item is kept as its exact
// bytes, which Get returns unchanged: jsonb would reorder keys and
// respace them, and a jsonb copy beside it would double the table for
// nothing iotod reads. items also keeps the item's owner (the
// owner_attribute of its JSON, or a tombstone's owner) in a column,
// indexed with the version's wall time, and the model with it: a device's
// catch-up (pipeline.ChangeFinder) reads only the device's records, the
// broadcast models' and the unowned tombstones changed since its cursor.
// Expired items are hidden from reads at once and deleted every
// sweep_interval.
//
// # Transactions
//
// View is a REPEATABLE READ, READ ONLY transaction: one snapshot. Update
// is SERIALIZABLE, PostgreSQL's equivalent of badger's conflict
// detection: when concurrent updates could not have run one after the
// other (SQLSTATE 40001), or deadlock (40P01), the loser is rolled back
// and its function runs again, after a short jittered pause, up to
// conflict_retries times. Writes are queued and sent in one round trip
// before the transaction's next read and at commit (pgx batches): only a
// key's last write is sent, the rows of every Put in one upsert statement
// and their index entries in one insert (arrays, unnest), the entries of
// a key deleted first unless the transaction read it without any. A
// record the tables cannot hold is refused before anything is sent, so an
// item's error leaves the transaction usable. Prefetch (pipeline.
// Prefetcher) reads many keys in one query, a primary-key lookup each.
// Under SERIALIZABLE a sequential scan locks a whole table against every
// concurrent write, an index scan only the pages it reads: an update's
// transaction turns sequential scans off (SET LOCAL enable_seqscan), so
// that its reads of small tables take index scans too.
//
// # Outbox order
//
// Seqs come from an identity column, whose values are taken when a row is
// inserted, not when its transaction commits: two writers could commit
// seqs 8 and 7 in that order, and a reader that read 8 before 7 committed
// would skip 7 for good. So an Update that emitted inserts its outbox rows
// as its last statements, after taking a transaction-level advisory lock
// of the schema (pg_advisory_xact_lock, one key per schema), which it
// holds until its commit or rollback. Seqs are thus taken one
// transaction at a time, each after the previous holder committed (the
// lock is released after the commit is visible): they are assigned in
// commit order, so a snapshot that sees a seq sees every lower one that
// will ever exist, and Read, one statement, never skips one. Rolled back
// transactions leave gaps, never filled. The cost: commits that emit are
// serialized (each waits for the previous one's commit, fsync included),
// while their other work runs concurrently; updates that do not emit do
// not take the lock. Alternatives rejected: a counter row (same
// serialization, plus serialization failures under SERIALIZABLE), and
// readers waiting for the oldest transaction in flight (pg_snapshot_xmin:
// a long transaction would stall the outbox).
//
// A client that stalls between its outbox insert and its commit (a
// process frozen, a network cut) holds the lock, and so every other
// emitting commit, until its session ends: the server's
// idle_in_transaction_session_timeout and TCP keepalives bound that.
//
// Last never goes backwards: it is the greater of the highest seq kept
// and the highest seq ever trimmed (meta), and identity values are never
// reused. Notify fires after a commit of this Store that emitted and,
// with listen (default), after those of other processes on the schema:
// each such commit runs pg_notify('iotod_outbox', schema), and a
// connection of the store LISTENs (made again after a failure, waking
// Notify in case a commit went unheard).
//
// # Connections and secrets
//
// The pool holds up to max_conns connections; listen takes one more.
// Statements are prepared and cached per connection (pgx's default), and
// LISTEN needs a session of its own: behind PgBouncer in transaction
// mode, use a version that keeps prepared statements (1.21+) and set
// listen to false.
//
// An unreachable server fails Open within connect_timeout, with an error
// naming its host and port; it is not pipeline.Permanent (retrying may
// help), unlike a bad config, failed authentication, a missing database
// or missing tables with create_tables off. The password is never logged
// nor put in an error: messages name host, port, database and user only,
// and any message from the driver or server is scrubbed of it.
package postgres

// Package sqlite is a storage engine on SQLite (modernc.org/sqlite, pure
// Go, so it builds for 32-bit ARM and 386 without a C toolchain): the
// device store for 32-bit devices, where badger is unsafe, and for anyone
// who prefers one database file.
//
// Items are rows of a records table keyed by (pk, sk) as blobs, compared
// byte by byte as badger compares its keys; secondary index entries are
// rows of an entries table; the outbox is a table whose AUTOINCREMENT key
// is the change's Seq (never reused, even after a trim or a restart). The
// database runs in WAL mode: readers keep a snapshot while one writer
// commits.
//
// Group commit: Update calls from concurrent writers queue to one writer
// goroutine, which runs as many as are waiting in one SQLite transaction,
// each inside its own SAVEPOINT, so one that fails rolls back alone; a
// single commit (and, with durability sync, one fsync) then serves them all.
package sqlite

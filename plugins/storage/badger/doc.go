// Package badger is the iotod storage engine on BadgerDB v4: items, their
// secondary indexes, TTL expiry and the outbox in one embedded key-value
// store, written together in one transaction per Update.
//
// # Key layout
//
// Every string in a key is escaped and terminated: each 0x00 byte becomes
// 0x00 0xFF and the string ends with 0x00 0x01. The terminator sorts below
// every escaped byte, so the byte order of keys is the lexicographic order of
// the tuple of strings they hold, and no two tuples share an encoding
// (pk "a", sk "b#c" never meets pk "a#b", sk "c"). enc(s) below is this form.
//
//	'r' enc(pk) enc(sk)                                  record envelope
//	'i' enc(index) enc(hash) enc(sort) enc(pk) enc(sk)   empty (secondary index entry)
//	'x' expires(8, big endian ms) enc(pk) enc(sk)        empty (TTL expiry entry)
//	'o' seq(8, big endian)                               change envelope (outbox)
//	'm' "outbox-hwm"                                     highest trimmed seq (8, big endian)
//
// A record envelope holds the model, the item, the record's index entries,
// version and expiry, so that Put and Delete find and remove the index and
// expiry entries a record had before. A secondary index entry points at its
// record through the primary key at its end. Records whose Expires is at or
// before now are invisible to Get and Scan at once, and a sweeper deletes
// them with their entries every SweepInterval.
//
// # Durability and the outbox
//
// Badger runs with SyncWrites off. With durability "sync" each Update commits
// and then waits for a shared group-commit syncer, whose fsync covers every
// commit finished before it began, so concurrent writers share one fsync.
// The syncer fdatasyncs badger's log files itself rather than calling
// DB.Sync, which blocks every write batch while it syncs, and it also syncs
// each log badger rotated away from, which DB.Sync would miss.
// Outbox sequence numbers are allocated just before commit; a watermark
// below which every allocated number has committed (and, with "sync", become
// durable) or aborted bounds what Read returns, so a reader never skips a
// change that commits late with a lower number. Trim persists a high-water
// mark so numbers are never reused after a restart.
//
// Badger v4.9.6 is unsafe on 32-bit platforms; Open refuses them.
package badger

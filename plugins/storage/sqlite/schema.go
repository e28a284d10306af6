package sqlite

// schemaVersion is the layout of the tables below; a file of another
// version is refused rather than guessed at.
const schemaVersion = 1

// schemaDDL creates the tables of an empty database. Keys are blobs so
// that they compare byte by byte (memcmp), as badger orders its keys.
var schemaDDL = []string{
	`CREATE TABLE IF NOT EXISTS iotod_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS records (
		pk BLOB NOT NULL, sk BLOB NOT NULL,
		model TEXT NOT NULL, item BLOB NOT NULL,
		wall INTEGER NOT NULL, counter INTEGER NOT NULL, origin TEXT NOT NULL,
		expires INTEGER NOT NULL, indexes TEXT,
		PRIMARY KEY (pk, sk)) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS records_expires ON records (expires) WHERE expires > 0`,
	`CREATE TABLE IF NOT EXISTS entries (
		ix BLOB NOT NULL, hash BLOB NOT NULL, sort BLOB NOT NULL, pk BLOB NOT NULL, sk BLOB NOT NULL,
		PRIMARY KEY (ix, hash, sort, pk, sk)) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS entries_key ON entries (pk, sk)`,
	`CREATE TABLE IF NOT EXISTS outbox (
		seq INTEGER PRIMARY KEY AUTOINCREMENT,
		model TEXT NOT NULL, op TEXT NOT NULL, pk BLOB NOT NULL, sk BLOB NOT NULL, item BLOB,
		wall INTEGER NOT NULL, counter INTEGER NOT NULL, vorigin TEXT NOT NULL,
		origin TEXT NOT NULL, time INTEGER NOT NULL)`,
}

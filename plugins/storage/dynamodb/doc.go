// Package dynamodb is the iotod storage engine on an AWS DynamoDB table,
// with items stored as OneTable 2.7 stores them, so that OneTable, the AWS
// SDK and the console read and write the same items. docs/dynamodb.md is
// the user documentation; this is the summary.
//
// # Item layout
//
// A record of a model is its item's JSON attributes as DynamoDB values:
// strings S, numbers N (their text, never through a float), booleans
// BOOL, null NULL, objects M, arrays L. The key attributes (the schema's
// primary hash and sort, usually pk and sk), the type field (_type or the
// schema's typeField) holding the model, the hidden _version holding the
// record's version, each index's key attributes and the TTL attribute
// (epoch seconds) are taken from the item, where iotod's database always
// puts them; they must agree with the record. When an item lacks one, the
// store adds it and lists the added names in the string set _iotod, so
// that a read gives back the item as written.
//
// Records of iotod's internal models, whose names start with "~" (OneTable
// model names cannot), get the key, type, version and TTL attributes
// added: a remove's tombstone is {pk, sk, _type: "~tombstone", model,
// owner, _version, <ttl>}, and a meta record {pk: "~meta", sk: name,
// _type: "~meta", _value}. Neither is in any secondary index.
//
// # Reads
//
// Get is a GetItem, strongly consistent by default. A query of one hash
// value is a Query on the table or on the index named as the schema's
// index (global indexes are eventually consistent, a DynamoDB limit);
// records with equal index keys are returned in primary key order, each
// such group read whole. A hash-prefix walk is a Scan of the whole table
// or index filtered by begins_with, sorted in memory. Indexes that do not
// project every attribute are followed with BatchGetItem. Expired records
// are hidden at once; DynamoDB's TTL deletes them later.
//
// # Updates
//
// Update is optimistic: Gets (and Scans) inside it record what they saw;
// Puts and Deletes are buffered and written at the end in one conditional
// PutItem or DeleteItem, or one TransactWriteItems of up to 100 items, each
// write conditioned on its item being what was read (the same _version, or
// absent). When another writer got there first the function runs again,
// up to conflict_retries times. Throttling and transient failures are
// retried with exponential backoff and full jitter, up to max_attempts.
//
// The store has no outbox: the table's stream will be its change feed.
package dynamodb

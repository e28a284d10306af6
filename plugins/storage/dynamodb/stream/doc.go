// Package stream turns a DynamoDB table's stream (DynamoDB Streams,
// NEW_AND_OLD_IMAGES) into replication changes for iotod's down pipeline:
// it is the outbox of the DynamoDB store. docs/dynamodb.md, "The change
// stream", describes it for users.
//
// The store makes one Source per table and returns it from Outbox:
//
//	src, err := stream.New(stream.Config{
//		Client:  ddb,     // *dynamodb.Client of the table
//		Streams: streams, // *dynamodbstreams.Client: dynamodbstreams.NewFromConfig(awsCfg),
//		                  // or dynamodbstreams.New(dynamodbstreams.Options{BaseEndpoint: …}) for DynamoDB Local
//		Table:   "iotod",
//		Site:    "cloud-1", // this worker's site: the origin of writes made outside iotod
//		TypeField: "_type", UpdatedField: "updated", HashKey: "pk", SortKey: "sk", // the schema's
//	})
//	err = src.Start(ctx)            // optional: fails at once on a missing table or stream
//	var outbox pipeline.Outbox = src // Store.Outbox()
//	…
//	err = src.Close(ctx)            // Store.Close: last checkpoints, leases released
//
// A Source implements pipeline.Outbox: Read hands out the changes read
// from every shard, numbered by local sequence numbers that increase in
// read order within the process; Trim(upTo) checkpoints each shard in the
// table (pk "~stream", sk "checkpoint#<shardId>") at its last record whose
// change is at or below upTo; Stats reports what is read and not trimmed;
// Notify fires when records arrive. Shards are polled with GetRecords every
// PollInterval (250ms) while they have nothing new.
//
// Several workers share a stream: each shard is read by the holder of its
// lease (pk "~stream", sk "lease#<shardId>"), taken with a conditional
// write when free or expired, renewed every RenewInterval and released at
// Close. A worker that dies stops renewing; another takes its shards once
// the leases expire and resumes after their checkpoints. A child shard is
// read only after its parent was read to its end.
//
// Converter is the record-to-change conversion on its own, for other
// readers of the stream (a Lambda handler): the model from the type field,
// the item as JSON with numbers kept as their text, tombstones as removes,
// the version and origin from _version, or for a write made outside iotod
// from its updated time with the cloud site as origin; iotod's bookkeeping
// items (pk "~…") are skipped.
//
// Source is also a prometheus.Collector (iotod_dynamodb_stream_*), and
// Counters gives the same numbers; no line is logged per record.
package stream

// Package stream turns a DynamoDB table's stream (DynamoDB Streams,
// NEW_AND_OLD_IMAGES) into replication changes for iotod's down pipeline.
package stream

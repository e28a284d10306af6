// Package httpbus is the logic of the example httpbus transport: a
// pipeline.Transport over plain HTTP. A hub (the cloud side) runs an
// in-process bus and serves it over HTTP to clients (devices, cloud
// workers), each known by a bearer token bound to a site. The plugin
// binary (examples/plugins/httpbus) serves it to iotod.
//
// The HTTP API of a hub (every request carries `Authorization: Bearer
// TOKEN`; an unknown token gets 401; errors are a line of text):
//
//	POST /v1/publish?channel=C&site=S   body: the payload
//	     X-Iotod-Uuid: the message's UUID (printable ASCII)
//	     X-Iotod-Metadata: a JSON object of strings (at most 16 KiB, 64 keys)
//	     200: the bus took it; 400 bad input; 403 not allowed;
//	     413 over max_payload; 503 the bus failed (retry)
//	GET  /v1/subscribe?channel=C&site=S  (S empty: every site)
//	     200 and a stream of JSON lines: {"ready":true,"sub":"ID"}, then
//	     {"n":1,"uuid":"...","metadata":{...},"payload":"BASE64"} per message
//	POST /v1/ack?sub=ID                 body: {"n":1,"ack":true}
//	     200; 403 not the token that opened the stream; 404 not pending
//
// A device token (a site other than "*") may publish as its own site on
// up, down-ack and sync, and subscribe for its own site to down and
// up-ack. A "*" token (a cloud worker) may do anything. The bus sets
// pipeline.MetaSite from the site of the request, which the token vouches
// for. A stream gets its next message once the current one is acked or
// nacked (a nacked one comes again); when the stream ends, its unsettled
// message is dropped and the framework sends it again.
package httpbus

// Command httpbus is an example iotod transport plugin: a transport over
// plain HTTP. One process runs the hub (an in-process bus served over
// HTTP, with a bearer token per client bound to a site); devices, and
// cloud workers in other processes, are its clients. Build it with `go
// build`, then name it in the YAML of the cloud (the hub):
//
//	transports:
//	  bus:
//	    type: plugin
//	    path: ./httpbus
//	    config:
//	      listen: 0.0.0.0:7480
//	      max_payload: 262144              # bytes (default 256 KiB, up to 16 MiB)
//	      clients:
//	        - {token: "s3cret-dev-1", site: dev-1}   # a device: its own site only
//	        - {token: "s3cret-worker", site: "*"}    # a cloud worker: everything
//
// and of each device (a client of the hub):
//
//	transports:
//	  bus:
//	    type: plugin
//	    path: ./httpbus
//	    config:
//	      url: http://hub.example:7480
//	      token: s3cret-dev-1
//	      connect_timeout: 5s              # how long Subscribe waits for the hub
//
// Plain HTTP sends the tokens and the data in clear: put the hub behind a
// TLS-terminating proxy (clients then use an https:// url) or on a
// private network. The HTTP API is described in package httpbus.
package main

import (
	"github.com/iotod/iotod/examples/plugins/httpbus/httpbus"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{
		Validate: func(b []byte) error { _, err := httpbus.Parse(b); return err },
		Transport: func(b []byte) (pipeline.Transport, error) {
			c, err := httpbus.Parse(b)
			if err != nil {
				return nil, err
			}
			// Typed nils must not become non-nil interfaces: check err.
			if c.IsHub() {
				h, err := httpbus.NewHub(c)
				if err != nil {
					return nil, err
				}
				return h, nil
			}
			cl, err := httpbus.NewClient(c)
			if err != nil {
				return nil, err
			}
			return cl, nil
		},
	})
}

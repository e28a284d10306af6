// Command redact is an example iotod stage plugin: it removes fields from
// the items of the changes that pass (passwords, tokens, personal data
// that must not leave the device) and refuses the changes of models the
// config names. Build it with `go build`, then name it in the YAML:
//
//	stages:
//	  - plugin/redact:
//	      path: ./redact
//	      config: {fields: [password, token], refuse: [Secret]}
package main

import (
	"github.com/iotod/iotod/examples/plugins/redact/redact"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{
		Validate: func(b []byte) error { _, err := redact.Parse(b); return err },
		Stage: func(b []byte) (pipeline.Stage, error) {
			c, err := redact.Parse(b)
			return redact.New(c), err
		},
	})
}

package main

import (
	"errors"
	"fmt"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/external"
	"github.com/iotod/iotod/plugins/stages/batch"
	"github.com/iotod/iotod/plugins/stages/policy"
	"github.com/iotod/iotod/plugins/transport/inproc"
	"github.com/iotod/iotod/plugins/transport/mqtt"
	exectrigger "github.com/iotod/iotod/plugins/triggers/exec"
	logtrigger "github.com/iotod/iotod/plugins/triggers/log"
	publishtrigger "github.com/iotod/iotod/plugins/triggers/publish"
	"github.com/iotod/iotod/plugins/triggers/webhook"
)

// components builds the registry of the plugins built into iotod: the one
// place that lists them. The stores depend on the build (build tags):
//
//	full build (no tag)                 badger, sqlite, dynamodb, postgres
//	device build, 64-bit (-tags device) badger
//	device build, 32-bit (-tags device) sqlite (GOARCH arm, 386, mips, mipsle)
//
// components_stores_*.go hold each set, components_cloud.go and
// components_device.go the cloud stores. A store a build leaves out is
// registered as omitted: a config, init or plugins describe naming it is
// told that this build does not include it, and which one does.
func components() (*pipeline.Registry, error) {
	reg, err := pipeline.NewRegistry(append(append(cloudStorage(), deviceStorage()...),
		// transports
		inproc.NewFactory(),
		mqtt.NewFactory(),
		// stages
		policy.NewFactory(),
		batch.NewFactory(),
		external.NewStageFactory(),
		// triggers
		logtrigger.NewFactory(),
		exectrigger.NewFactory(),
		webhook.NewFactory(),
		publishtrigger.NewFactory(),
		external.NewTriggerFactory(),
		// transports in processes of their own
		external.NewTransportFactory(),
	)...)
	if err != nil {
		return nil, err
	}
	if err := reg.Omit(append(cloudOmitted(), deviceOmitted()...)...); err != nil {
		return nil, fmt.Errorf("components: %w", err)
	}
	return reg, nil
}

// omittedStore is a store this build leaves out, with why.
func omittedStore(typ, why string) pipeline.Omitted {
	return pipeline.Omitted{Kind: pipeline.KindStorage, Type: typ, Why: why}
}

// checkOmittedStore is the error for a store this build leaves out, nil
// for any other.
func checkOmittedStore(typ string) error {
	for _, o := range deviceOmitted() {
		if o.Type == typ {
			return errors.New(o.String())
		}
	}
	return nil
}

package main

import (
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/external"
	"github.com/iotod/iotod/plugins/stages/batch"
	"github.com/iotod/iotod/plugins/stages/policy"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/plugins/storage/sqlite"
	"github.com/iotod/iotod/plugins/transport/inproc"
	"github.com/iotod/iotod/plugins/transport/mqtt"
	exectrigger "github.com/iotod/iotod/plugins/triggers/exec"
	logtrigger "github.com/iotod/iotod/plugins/triggers/log"
	publishtrigger "github.com/iotod/iotod/plugins/triggers/publish"
	"github.com/iotod/iotod/plugins/triggers/webhook"
)

// components builds the registry of the plugins built into iotod: the one
// place that lists them.
func components() (*pipeline.Registry, error) {
	return pipeline.NewRegistry(append(cloudStorage(),
		// storage
		badger.NewFactory(),
		sqlite.NewFactory(),
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
}

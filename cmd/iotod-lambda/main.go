// Command iotod-lambda is iotod's cloud-to-device sender as an AWS Lambda
// function on a DynamoDB table's stream: it publishes the table's changes
// to the devices over MQTT, as the down pipeline of `iotod run` does, and
// reports the records it could not publish in BatchItemFailures.
//
// Configuration: environment variables (IOTOD_SCHEMA, IOTOD_SITE,
// IOTOD_OWNER, IOTOD_MQTT_URL, IOTOD_MQTT_USERNAME, IOTOD_MQTT_PASSWORD,
// IOTOD_MQTT_CLIENT_ID, IOTOD_MQTT_TOPIC, IOTOD_PUBLISH_TIMEOUT) and/or a
// YAML file named by IOTOD_LAMBDA_CONFIG. See docs/dynamodb.md, "Running
// as an AWS Lambda".
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/iotod/iotod/cmd/iotod-lambda/handler"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/transport/mqtt"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	h, err := setup(log)
	if err != nil {
		log.Error("iotod-lambda: start", "err", err)
		fmt.Fprintln(os.Stderr, "iotod-lambda:", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}

// setup reads the configuration and connects to the broker (in the
// background): once per cold start, the connection serves every
// invocation of this instance.
func setup(log *slog.Logger) (*handler.Handler, error) {
	cfg, err := handler.FromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	t, err := mqtt.New(cfg.MQTT, pipeline.Settings{Kind: pipeline.KindTransport, Site: cfg.Site, Logger: log})
	if err != nil {
		return nil, err
	}
	h, err := handler.New(cfg, t, log)
	if err != nil {
		_ = t.Close(context.Background())
		return nil, err
	}
	return h, nil
}

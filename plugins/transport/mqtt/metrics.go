package mqtt

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a received message is dropped, the label of
// iotod_mqtt_dropped_total.
const (
	dropTopic     = "topic"     // the topic does not fit the template
	dropUnclaimed = "unclaimed" // no subscription wanted it within claimWait
	dropAbandoned = "abandoned" // its subscription ended before acking it
	dropInvalid   = "invalid"   // its UUID property is not one Publish sends
)

// Reasons Publish refuses a message, the label of
// iotod_mqtt_publish_refused_total.
const (
	refusedInvalid  = "invalid"   // its site, UUID or metadata cannot travel in a topic or property
	refusedTooLarge = "too_large" // over max_payload or the broker's maximum packet size
	refusedDropped  = "dropped"   // dropped from the session: the broker refused it
)

// metrics of one transport, labelled with its component id so that
// several mqtt transports share a registry.
type metrics struct {
	connected prometheus.Gauge
	connects  prometheus.Counter
	dropped   *prometheus.CounterVec
	// refused counts the messages Publish refused, and those the session
	// guard dropped.
	refused *prometheus.CounterVec
	// propsDropped counts the user properties of received messages not
	// kept as metadata.
	propsDropped prometheus.Counter
}

func newMetrics(id string) metrics {
	labels := prometheus.Labels{"transport": id}
	m := metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "iotod_mqtt_connected", ConstLabels: labels,
			Help: "1 while the transport is connected to the broker with its subscriptions in place.",
		}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iotod_mqtt_connections_total", ConstLabels: labels,
			Help: "Connections made to the broker, reconnections included.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iotod_mqtt_dropped_total", ConstLabels: labels,
			Help: "Received messages acknowledged to the broker without delivery, by reason: topic (not of the template), unclaimed (no subscription wanted it in time), abandoned (its subscription ended), invalid (a UUID property no iotod transport sends).",
		}, []string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "iotod_mqtt_publish_refused_total", ConstLabels: labels,
			Help: "Messages not published, by reason: invalid (a site, UUID or metadata that cannot travel in a topic or user property), too_large (over max_payload or the broker's maximum packet size), dropped (dropped from the session after the broker refused it).",
		}, []string{"reason"}),
		propsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "iotod_mqtt_properties_dropped_total", ConstLabels: labels,
			Help: "User properties of received messages dropped: not a metadata_keys key, repeated, or a value over the bounds.",
		}),
	}
	for _, r := range []string{dropTopic, dropUnclaimed, dropAbandoned, dropInvalid} {
		m.dropped.WithLabelValues(r)
	}
	for _, r := range []string{refusedInvalid, refusedTooLarge, refusedDropped} {
		m.refused.WithLabelValues(r)
	}
	return m
}

// register adds the metrics to reg.
func (m metrics) register(reg prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{m.connected, m.connects, m.dropped, m.refused, m.propsDropped} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

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
)

// metrics of one transport, labelled with its component id so that
// several mqtt transports share a registry.
type metrics struct {
	connected prometheus.Gauge
	connects  prometheus.Counter
	dropped   *prometheus.CounterVec
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
			Help: "Received messages acknowledged to the broker without delivery, by reason: topic (not of the template), unclaimed (no subscription wanted it in time), abandoned (its subscription ended).",
		}, []string{"reason"}),
	}
	for _, r := range []string{dropTopic, dropUnclaimed, dropAbandoned} {
		m.dropped.WithLabelValues(r)
	}
	return m
}

// register adds the metrics to reg.
func (m metrics) register(reg prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{m.connected, m.connects, m.dropped} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

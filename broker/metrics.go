package broker

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the broker's Prometheus series. Refusals are counted here,
// never logged above debug.
type metrics struct {
	refused         *prometheus.CounterVec // by action: publish, subscribe
	connectsRefused *prometheus.CounterVec // by reason: credentials, will, client_id
	clients         prometheus.Gauge       // set each second from mochi's $SYS info
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iotod_broker_acl_refused_total",
			Help: "Publishes dropped and subscriptions refused by the broker's per-site ACL, by action."}, []string{"action"}),
		connectsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iotod_broker_connections_refused_total",
			Help: "Connections the broker refused, by reason (credentials, will, client_id)."}, []string{"reason"}),
		clients: prometheus.NewGauge(prometheus.GaugeOpts{Name: "iotod_broker_clients",
			Help: "Clients connected to the broker (refreshed each second)."}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.refused, err = register(reg, m.refused); err != nil {
		return nil, err
	}
	if m.connectsRefused, err = register(reg, m.connectsRefused); err != nil {
		return nil, err
	}
	if m.clients, err = register(reg, m.clients); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// its name, so a broker started again in one process keeps counting.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("broker metrics: %w", err)
}

// Package runner builds the pipelines a config declares and runs them:
// senders move a store's outbox out through a transport and trim it on the
// far side's acks; receivers apply what a transport brings on a watermill
// router (Recoverer, Retry with backoff and jitter, PoisonQueue) and ack it.
package runner

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the runner's Prometheus series. Per-change events are
// counted here, never logged.
type metrics struct {
	changesIn   *prometheus.CounterVec // by pipeline
	changesOut  *prometheus.CounterVec
	batchSize   *prometheus.HistogramVec
	acks        *prometheus.CounterVec // by pipeline, result (applied, rejected)
	resends     *prometheus.CounterVec
	rejects     *prometheus.CounterVec
	stageTime   *prometheus.HistogramVec // by pipeline, stage
	outboxDepth *prometheus.GaugeVec     // by storage
	outboxAge   *prometheus.GaugeVec
	inFlight    *prometheus.GaugeVec // by pipeline: changes sent, not yet acked
	poisoned    prometheus.Counter
	// syncRequests counts devices' sync requests on the cloud, by result:
	// served, coalesced (replaced a waiting one), refused (unreadable).
	syncRequests *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		changesIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iotod_changes_in_total",
			Help: "Changes a pipeline took in (read from an outbox or received)."}, []string{"pipeline"}),
		changesOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iotod_changes_out_total",
			Help: "Changes a pipeline delivered (published, or applied to its store)."}, []string{"pipeline"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "iotod_batch_changes",
			Help: "Changes per batch sent.", Buckets: prometheus.ExponentialBuckets(1, 4, 8)}, []string{"pipeline"}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iotod_acks_total",
			Help: "Changes settled by the far side's acks, by result."}, []string{"pipeline", "result"}),
		resends: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iotod_resends_total",
			Help: "Batches sent again after no ack came in time."}, []string{"pipeline"}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iotod_rejects_total",
			Help: "Changes refused (by a stage, the store or the far side), kept as dead letters."}, []string{"pipeline"}),
		stageTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "iotod_stage_seconds",
			Help: "Time a stage took per batch.", Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10)}, []string{"pipeline", "stage"}),
		outboxDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "iotod_outbox_depth",
			Help: "Changes in a store's outbox not yet acknowledged."}, []string{"storage"}),
		outboxAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "iotod_outbox_oldest_age_seconds",
			Help: "Age of the oldest change in a store's outbox."}, []string{"storage"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "iotod_in_flight_changes",
			Help: "Changes sent and not yet acknowledged."}, []string{"pipeline"}),
		poisoned: prometheus.NewCounter(prometheus.CounterOpts{Name: "iotod_poison_messages_total",
			Help: "Received messages that can never be applied (malformed, unknown version), kept as dead letters."}),
		syncRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iotod_sync_requests_total",
			Help: "Devices' sync requests the cloud received, by result: served, coalesced (a repeat while the device's catch-up ran), refused (unreadable)."}, []string{"pipeline", "result"}),
	}
	for _, c := range []prometheus.Collector{m.changesIn, m.changesOut, m.batchSize, m.acks, m.resends, m.rejects,
		m.stageTime, m.outboxDepth, m.outboxAge, m.inFlight, m.poisoned, m.syncRequests} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

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
	// triggers counts trigger deliveries by trigger queue and result:
	// delivered, failed (tried again), dead (set aside).
	triggers *prometheus.CounterVec
	// syncs counts forced syncs (Runner.Sync) by result: synced, timeout,
	// canceled (the caller gave up), failed.
	syncs *prometheus.CounterVec
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
		triggers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iotod_trigger_deliveries_total",
			Help: "Changes handed to triggers, by trigger queue (pipeline:trigger) and result: delivered, failed (tried again with backoff), dead (set aside after the last attempt)."}, []string{"trigger", "result"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iotod_forced_syncs_total",
			Help: "Forced syncs (iotod sync, POST /v1/sync), by result: synced, timeout (not every change acknowledged in time), canceled (the caller gave up), failed."}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.changesIn, m.changesOut, m.batchSize, m.acks, m.resends, m.rejects,
		m.stageTime, m.outboxDepth, m.outboxAge, m.inFlight, m.poisoned, m.syncRequests, m.triggers, m.syncs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// registerDeadLetterMetrics exposes the dead-letter counts: how many were
// cut to their bounds, kept out of the file, and how often the file was
// rotated.
func registerDeadLetterMetrics(reg prometheus.Registerer, dl *DeadLetters) error {
	for _, c := range []struct {
		name, help string
		get        func(DeadLetterTotals) int64
	}{
		{"iotod_dead_letters_total", "Dead letters kept (refused changes and unreadable messages).", func(t DeadLetterTotals) int64 { return t.Total }},
		{"iotod_dead_letters_truncated_total", "Dead letters with a field cut to its bound or invalid UTF-8 replaced.", func(t DeadLetterTotals) int64 { return t.Truncated }},
		{"iotod_dead_letters_dropped_total", "Dead letters kept in memory only: larger than the file's cap, or the write failed.", func(t DeadLetterTotals) int64 { return t.Dropped }},
		{"iotod_dead_letter_file_rotations_total", "Rotations of the dead-letter file.", func(t DeadLetterTotals) int64 { return t.Rotations }},
	} {
		get := c.get
		if err := reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(get(dl.Totals())) })); err != nil {
			return err
		}
	}
	return nil
}

// forget drops the series of a pipeline a reload removed, and of its
// trigger queues.
func (m *metrics) forget(pipeline string, triggers []string) {
	by := prometheus.Labels{"pipeline": pipeline}
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{m.changesIn, m.changesOut, m.batchSize, m.acks, m.resends, m.rejects, m.stageTime, m.inFlight, m.syncRequests} {
		v.DeletePartialMatch(by)
	}
	for _, t := range triggers {
		m.triggers.DeletePartialMatch(prometheus.Labels{"trigger": t})
	}
}

package stream

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Counters are what a source has done since it was made. Records are
// counted, never logged one by one.
type Counters struct {
	// Records is every stream record read; Changes those that became a
	// change; Skipped the others by reason (Skip values).
	Records int64            `json:"records"`
	Changes int64            `json:"changes"`
	Skipped map[string]int64 `json:"skipped"`
	// Throttles counts throttled calls (each retried with backoff);
	// Retries every retry of a throttled or failed call.
	Throttles int64 `json:"throttles"`
	Retries   int64 `json:"retries"`
	// Errors counts failures that reached the source's loops (after the
	// retries), such as a lease renewal or a GetRecords that failed.
	Errors int64 `json:"errors"`
	// LeasesTaken and LeasesLost count this worker's shard leases won and
	// lost (taken over, or lapsed when renewals failed).
	LeasesTaken int64 `json:"leases_taken"`
	LeasesLost  int64 `json:"leases_lost"`
	// LeasesHandedOver counts leases this worker released to share the
	// shards with workers that hold fewer.
	LeasesHandedOver int64 `json:"leases_handed_over"`
	// Checkpoints counts checkpoint writes.
	Checkpoints int64 `json:"checkpoints"`
	// Trimmed counts shard positions lost to the stream's retention (24h):
	// reading restarted at the oldest record kept.
	Trimmed int64 `json:"trimmed"`
	// ShardsOwned is the number of shards this worker holds a lease on;
	// Buffered the changes read and not trimmed.
	ShardsOwned int64 `json:"shards_owned"`
	Buffered    int64 `json:"buffered"`
}

type metrics struct {
	records, changes, throttles, retries, errors atomic.Int64
	leasesTaken, leasesLost, checkpoints         atomic.Int64
	trimmed, leasesHandedOver                    atomic.Int64

	mu      sync.Mutex
	skipped map[Skip]int64
}

func (m *metrics) skip(reason Skip) {
	m.mu.Lock()
	if m.skipped == nil {
		m.skipped = map[Skip]int64{}
	}
	m.skipped[reason]++
	m.mu.Unlock()
}

// Counters returns the source's counters now.
func (s *Source) Counters() Counters {
	c := Counters{
		Records: s.m.records.Load(), Changes: s.m.changes.Load(), Throttles: s.m.throttles.Load(),
		Retries: s.m.retries.Load(), Errors: s.m.errors.Load(), LeasesTaken: s.m.leasesTaken.Load(),
		LeasesLost: s.m.leasesLost.Load(), LeasesHandedOver: s.m.leasesHandedOver.Load(), Checkpoints: s.m.checkpoints.Load(), Trimmed: s.m.trimmed.Load(),
		Skipped: map[string]int64{},
	}
	s.m.mu.Lock()
	for k, v := range s.m.skipped {
		c.Skipped[string(k)] = v
	}
	s.m.mu.Unlock()
	s.mu.Lock()
	c.ShardsOwned, c.Buffered = int64(len(s.shards)), int64(len(s.buf))
	s.mu.Unlock()
	return c
}

var (
	descRecords = prometheus.NewDesc("iotod_dynamodb_stream_records_total",
		"DynamoDB stream records read, by result: change, or the reason it was skipped.", []string{"table", "result"}, nil)
	descThrottles = prometheus.NewDesc("iotod_dynamodb_stream_throttles_total",
		"DynamoDB and DynamoDB Streams calls of the stream source that were throttled (retried with backoff).", []string{"table"}, nil)
	descRetries = prometheus.NewDesc("iotod_dynamodb_stream_retries_total",
		"Retries of throttled or failed calls of the stream source.", []string{"table"}, nil)
	descErrors = prometheus.NewDesc("iotod_dynamodb_stream_errors_total",
		"Failures of the stream source after retries (lease renewals, reads, checkpoints).", []string{"table"}, nil)
	descLeases = prometheus.NewDesc("iotod_dynamodb_stream_leases_total",
		"Shard leases this worker took, lost, or handed over to balance the workers.", []string{"table", "event"}, nil)
	descCheckpoints = prometheus.NewDesc("iotod_dynamodb_stream_checkpoints_total",
		"Shard checkpoints written.", []string{"table"}, nil)
	descTrimmed = prometheus.NewDesc("iotod_dynamodb_stream_trimmed_total",
		"Shard positions lost to the stream's 24h retention (reading restarted at the oldest record).", []string{"table"}, nil)
	descShards = prometheus.NewDesc("iotod_dynamodb_stream_shards_owned",
		"Shards this worker holds a lease on.", []string{"table"}, nil)
	descBuffered = prometheus.NewDesc("iotod_dynamodb_stream_buffered",
		"Changes read from the stream and not yet trimmed (acknowledged).", []string{"table"}, nil)
)

var _ prometheus.Collector = (*Source)(nil)

// Describe implements prometheus.Collector.
func (s *Source) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRecords, descThrottles, descRetries, descErrors, descLeases,
		descCheckpoints, descTrimmed, descShards, descBuffered} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: register a source to export
// its counters.
func (s *Source) Collect(ch chan<- prometheus.Metric) {
	c := s.Counters()
	t := s.cfg.Table
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{t}, labels...)...)
	}
	counter(descRecords, c.Changes, "change")
	for reason, n := range c.Skipped {
		counter(descRecords, n, reason)
	}
	counter(descThrottles, c.Throttles)
	counter(descRetries, c.Retries)
	counter(descErrors, c.Errors)
	counter(descLeases, c.LeasesTaken, "taken")
	counter(descLeases, c.LeasesLost, "lost")
	counter(descLeases, c.LeasesHandedOver, "handed_over")
	counter(descCheckpoints, c.Checkpoints)
	counter(descTrimmed, c.Trimmed)
	ch <- prometheus.MustNewConstMetric(descShards, prometheus.GaugeValue, float64(c.ShardsOwned), t)
	ch <- prometheus.MustNewConstMetric(descBuffered, prometheus.GaugeValue, float64(c.Buffered), t)
}

package runner

import (
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fleetMetrics are the fleet's counters; the gauges are computed at
// scrape time by fleetCollector. No label names a device.
type fleetMetrics struct {
	refused   prometheus.Counter
	untracked prometheus.Counter
	saves     *prometheus.CounterVec // by result: ok, failed
}

func newFleetMetrics() fleetMetrics {
	m := fleetMetrics{
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "iotod_fleet_refused_total",
			Help: "Changes from devices the cloud refused (and messages from devices refused whole), since the start."}),
		untracked: prometheus.NewCounter(prometheus.CounterOpts{Name: "iotod_fleet_untracked_messages_total",
			Help: "Messages from sites the fleet index does not keep: not a site id, or the index is full."}),
		saves: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iotod_fleet_saves_total",
			Help: "Saves of the devices' summary to the cloud store, by result: ok, failed (kept in memory, tried again)."}, []string{"result"}),
	}
	m.saves.WithLabelValues("ok")
	m.saves.WithLabelValues("failed")
	return m
}

// fleetStaleAges are the ages of iotod_fleet_devices_stale.
var fleetStaleAges = []struct {
	label string
	age   time.Duration
}{{"15m", 15 * time.Minute}, {"1h", time.Hour}, {"1d", 24 * time.Hour}}

// fleetAgeBuckets are the buckets of iotod_fleet_last_seen_age_seconds:
// a minute, 5 and 15 minutes, an hour, 6 hours, a day, a week.
var fleetAgeBuckets = []float64{60, 300, 900, 3600, 21600, 86400, 604800}

// fleetCollector computes the fleet's gauges from the index in one pass
// at each scrape.
type fleetCollector struct {
	f                                   *Fleet
	devices, connected, stale, lastSeen *prometheus.Desc
}

func newFleetCollector(f *Fleet) *fleetCollector {
	c := &fleetCollector{f: f,
		devices: prometheus.NewDesc("iotod_fleet_devices", "Devices the cloud has heard from (the fleet index).", nil, nil),
		stale: prometheus.NewDesc("iotod_fleet_devices_stale", "Devices not heard from for longer than age.",
			[]string{"age"}, nil),
		lastSeen: prometheus.NewDesc("iotod_fleet_last_seen_age_seconds", "Time since each device was last heard from.", nil, nil),
	}
	if f.connected != nil {
		c.connected = prometheus.NewDesc("iotod_fleet_devices_connected",
			"Devices connected to the embedded broker of this process.", nil, nil)
	}
	return c
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.devices
	ch <- c.stale
	ch <- c.lastSeen
	if c.connected != nil {
		ch <- c.connected
	}
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	stale := make([]float64, len(fleetStaleAges))
	counts := make([]uint64, len(fleetAgeBuckets)) // by the smallest bucket holding the age
	var sum float64
	connected := 0
	if c.connected != nil {
		for _, up := range c.f.connectedSites() {
			if up {
				connected++
			}
		}
	}
	c.f.mu.Lock()
	n := len(c.f.devices)
	for _, e := range c.f.devices {
		age := now.Sub(e.rec.LastSeen)
		for i, s := range fleetStaleAges {
			if age > s.age {
				stale[i]++
			}
		}
		secs := max(age.Seconds(), 0)
		sum += secs
		if i, _ := slices.BinarySearch(fleetAgeBuckets, secs); i < len(counts) {
			counts[i]++
		}
	}
	c.f.mu.Unlock()
	buckets := make(map[float64]uint64, len(fleetAgeBuckets)) // cumulative
	var below uint64
	for i, b := range fleetAgeBuckets {
		below += counts[i]
		buckets[b] = below
	}
	ch <- prometheus.MustNewConstMetric(c.devices, prometheus.GaugeValue, float64(n))
	for i, s := range fleetStaleAges {
		ch <- prometheus.MustNewConstMetric(c.stale, prometheus.GaugeValue, stale[i], s.label)
	}
	ch <- prometheus.MustNewConstHistogram(c.lastSeen, uint64(n), sum, buckets)
	if c.connected != nil {
		ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, float64(connected))
	}
}

// register adds the fleet's metrics to reg.
func (f *Fleet) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{f.m.refused, f.m.untracked, f.m.saves, newFleetCollector(f)} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

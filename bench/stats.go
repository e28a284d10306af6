// Package bench measures iotod against raw baselines measured in the same
// run, as ../shared/design/PERFORMANCE.md asks: every figure is printed
// beside its baseline and the ratio.
package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// latencies collects operation latencies from many goroutines.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(ds []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, ds...)
	l.mu.Unlock()
}

// Percentile returns the q-th percentile (0..1) of the collected values.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

// Dist summarises a latency distribution.
type Dist struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

func (l *latencies) dist() Dist {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := slices.Clone(l.all)
	slices.Sort(s)
	d := Dist{N: len(s), P50: percentile(s, 0.5), P99: percentile(s, 0.99)}
	if len(s) > 0 {
		d.Max = s[len(s)-1]
	}
	return d
}

func (d Dist) String() string {
	return fmt.Sprintf("p50 %s  p99 %s  max %s", round(d.P50), round(d.P99), round(d.Max))
}

func round(d time.Duration) time.Duration {
	switch {
	case d > 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d > 10*time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}

// median returns the median of runs.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// rssBytes reads this process's resident set size from /proc (0 elsewhere).
func rssBytes() int64 {
	return procStatus("VmRSS:")
}

// anonRSSBytes reads the anonymous part of the resident set: heap and
// other private memory, without file pages (memory-mapped tables) that the
// kernel can drop.
func anonRSSBytes() int64 {
	return procStatus("RssAnon:")
}

// peakRSSBytes reads the high-water mark of the resident set.
func peakRSSBytes() int64 {
	return procStatus("VmHWM:")
}

func procStatus(field string) int64 {
	return procFileStatus("/proc/self/status", field)
}

// procFileStatus reads a size field (in kB) of a /proc/<pid>/status file,
// in bytes; 0 when the file or the field is missing.
func procFileStatus(path, field string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// runtimeMem is the part of runtime.MemStats the benches report.
type runtimeMem struct{ heapInuse uint64 }

func (m *runtimeMem) read() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.heapInuse = ms.HeapInuse
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// procCPU is the user and system time of the process whose stat file is
// path, in seconds (Linux's clock ticks of 1/100 s), 0 when unknown.
func procCPU(path string) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis; utime and stime are fields 14 and 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return float64(u+s) / 100
}

// printJSON writes a report as one indented JSON document (--json).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

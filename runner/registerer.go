package runner

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// trackedRegisterer registers collectors with the runner's registry and
// remembers them, so that a component a reload replaces takes its metrics
// with it and its successor can register the same ones again.
type trackedRegisterer struct {
	reg prometheus.Registerer

	mu sync.Mutex
	cs []prometheus.Collector
}

func newTrackedRegisterer(reg prometheus.Registerer) *trackedRegisterer {
	return &trackedRegisterer{reg: reg}
}

// Register registers c and remembers it.
func (t *trackedRegisterer) Register(c prometheus.Collector) error {
	if err := t.reg.Register(c); err != nil {
		return err
	}
	t.mu.Lock()
	t.cs = append(t.cs, c)
	t.mu.Unlock()
	return nil
}

// MustRegister registers cs with prometheus' MustRegister (which panics
// on a conflict, as the interface says: components call Register) and
// remembers them.
func (t *trackedRegisterer) MustRegister(cs ...prometheus.Collector) {
	t.reg.MustRegister(cs...)
	t.mu.Lock()
	t.cs = append(t.cs, cs...)
	t.mu.Unlock()
}

// Unregister unregisters c and forgets it.
func (t *trackedRegisterer) Unregister(c prometheus.Collector) bool {
	t.mu.Lock()
	for i, have := range t.cs {
		if have == c {
			t.cs = append(t.cs[:i], t.cs[i+1:]...)
			break
		}
	}
	t.mu.Unlock()
	return t.reg.Unregister(c)
}

// unregisterAll unregisters every collector registered through t.
func (t *trackedRegisterer) unregisterAll() {
	if t == nil {
		return
	}
	t.mu.Lock()
	cs := t.cs
	t.cs = nil
	t.mu.Unlock()
	for _, c := range cs {
		t.reg.Unregister(c)
	}
}

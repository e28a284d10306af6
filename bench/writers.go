package bench

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// runWriters runs op from n goroutines for d and returns operations per
// second and the latency distribution. op gets the goroutine number and
// its own counter, from 1.
func runWriters(ctx context.Context, n int, d time.Duration, op func(w, i int) error) (float64, Dist, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var lat latencies
	var total atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := make([]time.Duration, 0, 4096)
			for i := 1; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if err := op(w, i); err != nil {
					if ctx.Err() == nil || !errors.Is(err, context.DeadlineExceeded) {
						once.Do(func() { firstErr = err; cancel() })
					}
					break
				}
				own = append(own, time.Since(t0))
			}
			total.Add(int64(len(own)))
			lat.add(own)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	return float64(total.Load()) / elapsed.Seconds(), lat.dist(), firstErr
}

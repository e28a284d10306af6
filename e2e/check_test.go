package e2e

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
)

// items reads every item of model matching props (pk fields), with the
// hidden attributes, keyed by "pk|sk".
func items(t *testing.T, c *api.Client, model string, props db.Item) map[string]db.Item {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := map[string]db.Item{}
	p := &db.Params{Hidden: true, Limit: 5000}
	for {
		res, err := c.Find(ctx, model, props, p)
		require.NoError(t, err, "find %s", model)
		for _, it := range res.Items {
			out[fmt.Sprint(it["pk"], "|", it["sk"])] = it
		}
		if res.Next == "" {
			return out
		}
		p.Next = res.Next
	}
}

// count is the number of items of model matching props.
func count(t *testing.T, c *api.Client, model string, props db.Item) int {
	t.Helper()
	res, err := c.Find(context.Background(), model, props, &db.Params{Count: true})
	require.NoError(t, err, "count %s", model)
	return res.Count
}

// sameItems checks two sides hold the same items (keys, versions and
// every attribute); what names the sides in messages.
func sameItems(t *testing.T, what string, want, got map[string]db.Item) {
	t.Helper()
	var missing, extra, differ []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case fmt.Sprint(w) != fmt.Sprint(g):
			differ = append(differ, fmt.Sprintf("%s:\n  want %v\n  got  %v", k, w, g))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	sort.Strings(differ)
	if len(missing)+len(extra)+len(differ) > 0 {
		t.Errorf("%s: of %d items, %d missing %v, %d extra %v, %d differ %v", what, len(want),
			len(missing), first(missing, 10), len(extra), first(extra, 10), len(differ), first(differ, 5))
	}
}

// first returns up to n elements, for messages.
func first[T any](s []T, n int) []T {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fmtAny(v any) string { return fmt.Sprint(v) }

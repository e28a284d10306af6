package badger

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lockedBuffer is a bytes.Buffer badger's goroutines may write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// TestLogKeysOnce: badger's own lines, through the logger the runner gives
// a store (its component set), name each key once.
func TestLogKeysOnce(t *testing.T) {
	needBadger(t)
	var buf lockedBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", "storage/badger/local")
	s, err := Open(t.Context(), testConfig(t.TempDir(), DurabilitySync), log)
	require.NoError(t, err)
	require.NoError(t, s.Close(context.Background()))

	buf.mu.Lock()
	defer buf.mu.Unlock()
	library := 0
	sc := bufio.NewScanner(&buf.b)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		_, err := dec.Token() // {
		require.NoError(t, err)
		keys := map[string]int{}
		for dec.More() {
			k, err := dec.Token()
			require.NoError(t, err)
			keys[k.(string)]++
			var v json.RawMessage
			require.NoError(t, dec.Decode(&v))
			if k == "library" && string(v) == `"badger"` {
				library++
			}
		}
		for k, n := range keys {
			assert.Equal(t, 1, n, "key %q in %s", k, sc.Text())
		}
	}
	assert.Positive(t, library, "badger's own lines are marked")
}

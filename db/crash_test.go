package db_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// TestCrashChild is the writer process of TestCrashSafety: it writes until
// killed, printing each write that returned success.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("IOTOD_CRASH_DIR")
	if dir == "" {
		t.Skip("only runs as the child of TestCrashSafety")
	}
	round := os.Getenv("IOTOD_CRASH_ROUND")
	e := open(t, dir)
	ctx := context.Background()
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	ack := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dev := fmt.Sprintf("r%s-w%d", round, w)
			for i := 1; ; i++ {
				if i%10 == 0 {
					ops := []db.WriteOp{
						{Op: pipeline.OpCreate, Model: "User", Item: db.Item{"accountId": dev, "email": fmt.Sprintf("a%d@x", i), "age": i}},
						{Op: pipeline.OpCreate, Model: "User", Item: db.Item{"accountId": dev, "email": fmt.Sprintf("b%d@x", i), "age": i}},
					}
					if _, err := e.db.Transact(ctx, ops); err != nil {
						ack("err %v", err)
						return
					}
					ack("tx %s %d", dev, i)
					continue
				}
				if _, err := e.db.Create(ctx, "Reading", db.Item{"deviceId": dev, "seq": i, "temp": i}, nil); err != nil {
					ack("err %v", err)
					return
				}
				ack("ack %s %d", dev, i)
			}
		}()
	}
	wg.Wait()
}

// TestCrashSafety kills a writer with SIGKILL in the middle of a write load,
// reopens the store and checks that every acknowledged write is there, no
// transaction is half-applied, and the outbox holds exactly the changes of
// the stored writes. It does this over several rounds on the same store.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns writer processes")
	}
	dir := t.TempDir()
	acked := map[string]bool{}   // "dev seq" of acknowledged Reading creates
	txAcked := map[string]bool{} // "dev i" of acknowledged transactions
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "IOTOD_CRASH_DIR="+dir, "IOTOD_CRASH_ROUND="+strconv.Itoa(round))
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		sc := bufio.NewScanner(stdout)
		deadline := time.Now().Add(20 * time.Second)
		n := 0
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 3 && f[0] == "ack":
				acked[f[1]+" "+f[2]] = true
			case len(f) == 3 && f[0] == "tx":
				txAcked[f[1]+" "+f[2]] = true
			case len(f) > 0 && f[0] == "err":
				t.Fatalf("writer failed: %s", sc.Text())
			default:
				continue
			}
			n++
			if n == 1500+round*700 || time.Now().After(deadline) {
				break
			}
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
		require.Greater(t, n, 100, "round %d: the writer acknowledged writes before it was killed", round)
		verifyAfterCrash(t, dir, acked, txAcked)
	}
}

func verifyAfterCrash(t *testing.T, dir string, acked, txAcked map[string]bool) {
	t.Helper()
	ctx := context.Background()
	e := open(t, dir)
	defer e.store.Close(ctx)

	readings, err := findAll(ctx, e.db, "Reading", db.Item{}, nil)
	require.NoError(t, err)
	stored := map[string]bool{}
	for _, it := range readings.Items {
		k := fmt.Sprintf("%s %s", it["deviceId"], it["seq"])
		stored[k] = true
		require.Equal(t, it["seq"], it["temp"], "item %s is whole", k)
	}
	for k := range acked {
		require.True(t, stored[k], "acknowledged write %s survived the crash", k)
	}

	users, err := findAll(ctx, e.db, "User", db.Item{}, nil)
	require.NoError(t, err)
	pairs := map[string]int{}
	for _, u := range users.Items {
		pairs[fmt.Sprintf("%s %s", u["accountId"], u["age"])]++
	}
	for k, c := range pairs {
		require.Equal(t, 2, c, "transaction %s is all or nothing", k)
	}
	for k := range txAcked {
		require.Equal(t, 2, pairs[k], "acknowledged transaction %s survived", k)
	}

	changes, err := e.store.Outbox().Read(ctx, 0, 1<<30)
	require.NoError(t, err)
	inOutbox := map[pipeline.Key]int{}
	for _, c := range changes {
		inOutbox[c.Key]++
	}
	want := len(readings.Items) + len(users.Items)
	require.Len(t, changes, want, "one outbox change per stored write")
	for _, model := range []string{"Reading", "User"} {
		keys, err := findAll(ctx, e.db, model, db.Item{}, &db.Params{Hidden: true})
		require.NoError(t, err)
		for _, it := range keys.Items {
			k := pipeline.Key{PK: it["pk"].(string), SK: it["sk"].(string)}
			require.Equal(t, 1, inOutbox[k], "outbox holds the change of %s", k)
		}
	}
}

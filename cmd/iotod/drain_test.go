package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/api"
	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/schema"
)

const allInOneConfig = `site: cli-test
schema: schema.json5
storage:
  local: {type: badger, path: dev, durability: sync}
  cloud: {type: badger, path: cloud, durability: sync, side: cloud, site: cloud}
transports:
  bus: {type: inproc}
pipelines:
  up:
    from: storage/local
    stages:
      - policy: {}
      - batch: {delay: 20ms, count: 200}
    to: transport/bus
  ingest:
    from: transport/bus
    stages: [ {policy: {}} ]
    to: storage/cloud
api:
  listen: 127.0.0.1:0
`

// TestDrainUnderLoad sends SIGTERM during a steady write load through
// device -> inproc -> cloud, restarts, and checks every acknowledged write
// is in the cloud store exactly once, at its latest version.
func TestDrainUnderLoad(t *testing.T) {
	bin := buildIotod(t)
	cfg := writeConfig(t, allInOneConfig)
	d := startDaemon(t, bin, cfg)
	client, err := api.NewClient(d.addr, "")
	require.NoError(t, err)

	ctx := context.Background()
	var mu sync.Mutex
	latest := map[string]int{} // email -> last acknowledged age
	stopLoad := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				email := fmt.Sprintf("w%d-%d@x.io", w, i/3)
				var err error
				if i%3 == 0 {
					_, err = client.Create(ctx, "User", db.Item{"accountId": "acme", "email": email, "age": i}, nil)
				} else {
					_, err = client.Update(ctx, "User", db.Item{"accountId": "acme", "email": email, "age": i}, nil)
				}
				if err != nil {
					return // the daemon is going away
				}
				mu.Lock()
				latest[email] = i
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-d.done:
		require.NoError(t, err, "drained and exited cleanly:\n%s", d.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("iotod run did not stop:\n%s", d.stderr)
	}
	close(stopLoad)
	wg.Wait()
	require.Greater(t, len(latest), 100, "the load ran")

	dir := filepath.Dir(cfg)
	dev := openStore(t, dir, "dev", schema.SideDevice, "cli-test")
	st, err := dev.Store().Outbox().Stats(ctx)
	require.NoError(t, err)
	require.Zero(t, st.Depth, "the drain sent and settled everything before exiting")
	closeStore(t, dev)

	// Restart: nothing is pending, sync returns at once, and the cloud holds
	// every acknowledged write exactly once in its latest version.
	d2 := startDaemon(t, bin, cfg)
	client2, err := api.NewClient(d2.addr, "")
	require.NoError(t, err)
	require.NoError(t, client2.Sync(ctx, 10*time.Second))
	d2.stop(t)

	dev = openStore(t, dir, "dev", schema.SideDevice, "cli-test")
	cloud := openStore(t, dir, "cloud", schema.SideCloud, "cloud")
	devUsers, err := findAll(ctx, dev, "User", db.Item{"accountId": "acme"}, &db.Params{Hidden: true})
	require.NoError(t, err)
	cloudUsers, err := findAll(ctx, cloud, "User", db.Item{"accountId": "acme"}, &db.Params{Hidden: true})
	require.NoError(t, err)
	require.Equal(t, len(devUsers.Items), len(cloudUsers.Items), "exactly once: as many items in the cloud as on the device")
	byEmail := map[string]db.Item{}
	for _, u := range cloudUsers.Items {
		byEmail[u["email"].(string)] = u
	}
	for email, age := range latest {
		u, ok := byEmail[email]
		require.True(t, ok, "acknowledged write %s reached the cloud", email)
		require.Equal(t, fmt.Sprint(age), fmt.Sprint(u["age"]), "%s at its latest acknowledged version", email)
	}
	for _, u := range devUsers.Items {
		require.Equal(t, u[db.VersionAttr], byEmail[u["email"].(string)][db.VersionAttr], "same version on both sides")
	}
}

func openStore(t *testing.T, dir, sub string, side schema.Side, site string) *db.DB {
	t.Helper()
	ctx := context.Background()
	sch, err := schema.Load(filepath.Join(dir, "schema.json5"))
	require.NoError(t, err)
	cfg := badger.NewDefaultConfig()
	cfg.Path = filepath.Join(dir, sub)
	st, err := badger.Open(ctx, cfg, nil)
	require.NoError(t, err)
	d, err := db.Open(ctx, db.Options{Schema: sch, Store: st, Site: site, Side: side})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close(ctx) })
	return d
}

func closeStore(t *testing.T, d *db.DB) {
	t.Helper()
	require.NoError(t, d.Store().Close(context.Background()))
}

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// postgresURL is the tests' PostgreSQL (IOTOD_POSTGRES_URL, which
// `make test` sets); without it the test fails saying how to get one.
func postgresURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("IOTOD_POSTGRES_URL")
	if url == "" {
		t.Fatal("IOTOD_POSTGRES_URL is not set: this test needs PostgreSQL; run `make services-start` and `export $(bash scripts/services.sh env)`, or `make test` (docs/testing.md), or use go test -short to skip it")
	}
	return url
}

// freshSchema names a new PostgreSQL schema for a test, dropped from the
// server at url when the test ends (registered first, so after the
// processes the test starts are gone).
func freshSchema(t *testing.T, url, prefix string) string {
	t.Helper()
	schema := fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, url); err == nil {
			_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			_ = conn.Close(ctx)
		}
	})
	return schema
}

// newPostgresRig starts the embedded broker in a process of its own (it
// outlives the workers), workers cloud workers sharing one fresh
// PostgreSQL schema (dropped at the end) and splitting the devices'
// messages (an MQTT shared subscription), and a device per site.
func newPostgresRig(t *testing.T, workers int, sites ...string) *rig {
	t.Helper()
	iotodBin(t) // skips under -short before anything starts
	url := postgresURL(t)
	schema := freshSchema(t, url, "e2e")
	r := &rig{t: t, kind: ownProcess, devices: map[string]*node{}, addr: freeAddr(t)}
	r.broker = startNode(t, "broker", brokerOnlyConfig(t, r.addr, sites))
	for w := 1; w <= workers; w++ {
		cfg := fmt.Sprintf("site: cloud\nschema: %s\nstorage:\n  cloud: {type: postgres, url: %q, schema: %s, side: cloud, site: cloud-%d}\n",
			schemaPath(t), url, schema, w)
		transport := mqttTransport(r.addr, fmt.Sprintf("worker-%d", w), cloudUser, cloudPassword) + "    share_group: iotod\n"
		r.workers = append(r.workers, startNode(t, fmt.Sprintf("worker-%d", w), cfg+pipelinesOver(transport)))
	}
	for _, s := range sites {
		r.addDevice(s)
	}
	return r
}

// TestPostgresWorkersDevicesOnSQLiteAndBadger runs two cloud workers on
// one PostgreSQL schema with a device on badger and one on SQLite, a
// write load both ways for each device, and SIGKILLs the workers in turn
// mid-stream: each device converges with the cloud (every acknowledged
// write once, at its latest version, on the other side), the down feed
// passing from a killed worker to the other.
func TestPostgresWorkersDevicesOnSQLiteAndBadger(t *testing.T) {
	r := newPostgresRig(t, 2, "dev-b", "dev-s-sqlite")
	devB, devS := r.devices["dev-b"], r.devices["dev-s-sqlite"]
	upB, downB := readingLoad(t, devB, "dev-b", 2), commandLoad(t, r.workers[0], "dev-b", 1)
	upS, downS := readingLoad(t, devS, "dev-s-sqlite", 2), commandLoad(t, r.workers[0], "dev-s-sqlite", 1)
	for i := range kills + 1 {
		time.Sleep(loadPhase)
		w := r.workers[i%2]
		w.kill()
		time.Sleep(300 * time.Millisecond)
		w.start()
	}
	time.Sleep(loadPhase)
	converge(t, "badger device, postgres workers", devB, r.workers[0], upB, downB)
	converge(t, "sqlite device, postgres workers", devS, r.workers[0], upS, downS)
	// Each worker sees the other's writes: the store is shared.
	for _, w := range r.workers {
		require.Equal(t, count(t, r.workers[0].client(), "Reading", nil), count(t, w.client(), "Reading", nil))
	}
}

// TestPostgresWorkerKilledUnderIngest SIGKILLs a worker on PostgreSQL
// many times while a device writes; another worker keeps running. Every
// acknowledged write reaches the store once, at its latest version.
func TestPostgresWorkerKilledUnderIngest(t *testing.T) {
	r := newPostgresRig(t, 2, "dev-1")
	dev := r.devices["dev-1"]
	up := readingLoad(t, dev, "dev-1", 4)
	for range 2 * kills {
		time.Sleep(loadPhase / 2)
		r.workers[1].kill()
		time.Sleep(200 * time.Millisecond)
		r.workers[1].start()
	}
	time.Sleep(loadPhase)
	converge(t, "postgres worker killed", dev, r.workers[1], up)
	require.True(t, strings.Contains(r.workers[1].logText(), "postgres storage open"), "the worker ran on PostgreSQL")
}

// TestQuickstartPostgres runs the bash blocks of the quick start's
// section "The cloud side on PostgreSQL" as a reader would, in a copy of
// the files it uses, against the tests' PostgreSQL on a schema of its own,
// with the worker and the device in the background. The lines shown
// after a block must come out in order; a block that only reads is run
// again until they do.
func TestQuickstartPostgres(t *testing.T) {
	iotodBin(t) // skips under -short
	url := postgresURL(t)
	if _, err := exec.LookPath("psql"); err != nil {
		t.Fatalf("the quick start's PostgreSQL section uses psql: %v", err)
	}
	steps := quickstartBashSteps(t, "The cloud side on PostgreSQL")
	require.GreaterOrEqual(t, len(steps), 6, "bash blocks in the section")
	schema := freshSchema(t, url, "quickstart")
	ran := runQuickstartSection(t, steps, map[string]string{"IOTOD_POSTGRES_URL": url, "IOTOD_POSTGRES_SCHEMA": schema}, "psql ")
	require.GreaterOrEqual(t, ran, 6, "commands run")
}

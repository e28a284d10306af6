package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/internal/dynamotest"
	"github.com/iotod/iotod/pipeline"
	ddbstore "github.com/iotod/iotod/plugins/storage/dynamodb"
	pgstore "github.com/iotod/iotod/plugins/storage/postgres"
)

// TestFleetWorkersShareAStore: two workers (two store connections on
// one table or schema) record and save the same devices at the same time,
// round after round; a third reads back exactly the sum of their counts,
// on each cloud store: the save's read-merge-write is one transaction,
// retried on a conflict (DynamoDB: conditioned on the record's version;
// PostgreSQL: serializable; badger: conflict detection).
func TestFleetWorkersShareAStore(t *testing.T) {
	t.Run("badger", func(t *testing.T) {
		st := openBadger(t, t.TempDir())
		t.Cleanup(func() { _ = st.Close(context.Background()) })
		fleetWorkers(t, func() pipeline.Store { return st })
	})
	t.Run("dynamodb", func(t *testing.T) {
		cfg := ddbstore.NewDefaultConfig()
		cfg.Table = dynamotest.UniqueName("iotod-fleet")
		cfg.Endpoint, cfg.Region = dynamotest.URL(t), dynamotest.Region
		cfg.AccessKeyID, cfg.SecretAccessKey = "iotod", "iotod"
		cfg.CreateTable = true
		cfg.Stream = false // no outbox needed: the fleet's records are not in it
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _ = dynamotest.Client(t).DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(cfg.Table)})
		})
		fleetWorkers(t, func() pipeline.Store {
			st, err := ddbstore.Open(context.Background(), cfg, nil, nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = st.Close(context.Background()) })
			return st
		})
	})
	t.Run("postgres", func(t *testing.T) {
		cfg := pgstore.NewDefaultConfig()
		cfg.URL = fleetPostgresURL(t)
		cfg.Schema = fleetSchema(t, cfg.URL)
		cfg.ConnectTimeout = 5 * time.Second
		fleetWorkers(t, func() pipeline.Store {
			st, err := pgstore.Open(context.Background(), cfg, nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = st.Close(context.Background()) })
			return st
		})
	})
}

func fleetWorkers(t *testing.T, open func() pipeline.Store) {
	ctx := context.Background()
	const devices, rounds = 30, 5
	var wg sync.WaitGroup
	for w := 1; w <= 2; w++ {
		f := newFleet(open(), fmt.Sprintf("cloud-%d", w), nil)
		wg.Go(func() {
			for round := range rounds {
				for d := range devices {
					f.upBatch(fmt.Sprintf("dev-%02d", d), w, 1, fmt.Sprintf("worker %d round %d", w, round))
				}
				f.syncRequest("dev-00", &pipeline.SyncRequest{Cursor: fmt.Sprintf("cursor-%d-%d", w, round)})
				assert.NoError(t, f.save(ctx, false))
			}
		})
	}
	wg.Wait()
	reader := newFleet(open(), "cloud-3", nil)
	require.NoError(t, reader.load(ctx))
	p, err := reader.List(FleetQuery{Limit: 100})
	require.NoError(t, err)
	require.Len(t, p.Devices, devices)
	for _, d := range p.Devices {
		assert.EqualValues(t, rounds*(1+2), d.Changes, "%s: each worker's changes, once", d.Site)
		assert.EqualValues(t, rounds*2, d.Refused, "%s", d.Site)
		assert.True(t, strings.HasSuffix(d.LastRefusal, fmt.Sprintf("round %d", rounds-1)), "%s: %s", d.Site, d.LastRefusal)
	}
	assert.True(t, strings.HasPrefix(p.Devices[0].Cursor, "cursor-"), p.Devices[0].Cursor)
}

// fleetPostgresURL is the test server's URL (IOTOD_POSTGRES_URL): unset,
// the test is skipped under -short and fails otherwise, as the other
// PostgreSQL tests do.
func fleetPostgresURL(t *testing.T) string {
	t.Helper()
	u := strings.TrimSpace(os.Getenv("IOTOD_POSTGRES_URL"))
	switch {
	case u != "":
		return u
	case testing.Short():
		t.Skip("IOTOD_POSTGRES_URL is not set: skipping this PostgreSQL test under -short")
	}
	t.Fatal("IOTOD_POSTGRES_URL is not set: this test needs PostgreSQL; start it with `make services-start` and `export $(bash scripts/services.sh env)`, or use go test -short to skip it")
	return ""
}

// fleetSchema is a fresh schema name, dropped when t ends.
func fleetSchema(t *testing.T, url string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "iotod_test_fleet_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer func() { _ = conn.Close(ctx) }()
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

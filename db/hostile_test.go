package db_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/internal/testenv"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/schema"
)

// hostileCase is one entry of testdata/hostile-changes.yaml.
type hostileCase struct {
	Name   string `yaml:"name"`
	From   string `yaml:"from"`
	Change struct {
		Model   string  `yaml:"model"`
		Op      string  `yaml:"op"`
		PK      string  `yaml:"pk"`
		SK      string  `yaml:"sk"`
		Item    string  `yaml:"item"`
		Origin  string  `yaml:"origin"`
		Wall    string  `yaml:"wall"`
		Counter uint32  `yaml:"counter"`
		VOrigin *string `yaml:"vorigin"`
	} `yaml:"change"`
	Error   string `yaml:"error"`
	Applied bool   `yaml:"applied"`
}

func (hc *hostileCase) change(t testing.TB, now time.Time) pipeline.Change {
	c := hc.Change
	origin := c.Origin
	if origin == "" {
		origin = hc.From
	}
	vorigin := origin
	if c.VOrigin != nil {
		vorigin = *c.VOrigin
	}
	var wall int64
	switch {
	case c.Wall == "" || c.Wall == "now":
		wall = now.UnixMilli()
	case strings.HasPrefix(c.Wall, "now+"):
		d, err := time.ParseDuration(strings.TrimPrefix(c.Wall, "now+"))
		require.NoError(t, err)
		wall = now.Add(d).UnixMilli()
	default:
		var err error
		wall, err = strconv.ParseInt(c.Wall, 10, 64)
		require.NoError(t, err)
	}
	ff := strings.NewReplacer("<FF>", "\xff")
	var item []byte
	if c.Item != "" {
		item = []byte(ff.Replace(c.Item))
	}
	return pipeline.Change{Model: c.Model, Op: pipeline.Op(c.Op), Key: pipeline.Key{PK: ff.Replace(c.PK), SK: ff.Replace(c.SK)}, Item: item,
		Version: pipeline.Version{Wall: wall, Counter: c.Counter, Origin: vorigin}, Origin: origin}
}

// openHostileCloud opens a cloud DB over testdata/hostile-schema.json5.
func openHostileCloud(t *testing.T, skew time.Duration) (*db.DB, pipeline.Store) {
	testenv.NeedBadger(t)
	t.Helper()
	ctx := context.Background()
	sch, err := schema.Load("testdata/hostile-schema.json5")
	require.NoError(t, err)
	cfg := badger.NewDefaultConfig()
	cfg.Path = t.TempDir()
	st, err := badger.Open(ctx, cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close(ctx) })
	cloud, err := db.Open(ctx, db.Options{Schema: sch, Store: st, Site: "cloud", Side: schema.SideCloud, MaxClockSkew: skew})
	require.NoError(t, err)
	return cloud, st
}

// snapshot reads every record of the store.
func snapshot(t *testing.T, st pipeline.Store) map[pipeline.Key]string {
	t.Helper()
	out := map[pipeline.Key]string{}
	require.NoError(t, st.View(context.Background(), func(tx pipeline.ReadTx) error {
		return tx.Scan(context.Background(), pipeline.Query{HashPrefix: true}, func(rec *pipeline.Record, _ pipeline.Position) (bool, error) {
			out[rec.Key] = fmt.Sprintf("%s %s %s", rec.Model, rec.Version, rec.Item)
			return true, nil
		})
	}))
	return out
}

// TestHostileChangesAreRefusedAtApply applies, on the cloud, each change of
// testdata/hostile-changes.yaml as sent by a device with valid
// credentials, and checks the result and that nothing else stored moved.
func TestHostileChangesAreRefusedAtApply(t *testing.T) {
	ctx := context.Background()
	raw, err := os.ReadFile("testdata/hostile-changes.yaml")
	require.NoError(t, err)
	var cases []hostileCase
	require.NoError(t, yaml.Unmarshal(raw, &cases))
	require.NotEmpty(t, cases)

	cloud, st := openHostileCloud(t, 0)

	// What is stored before the attacks: dev2's items (one removed since),
	// and a command for dev1 the cloud wrote.
	now := time.Now()
	v := func(site string, off time.Duration) pipeline.Version {
		return pipeline.Version{Wall: now.Add(off).UnixMilli(), Origin: site}
	}
	setup := []pipeline.Change{
		{Model: "Reading", Op: pipeline.OpCreate, Key: pipeline.Key{PK: "device#dev2", SK: "reading#R1"}, Item: []byte(`{"deviceId":"dev2","id":"R1","temp":1}`), Version: v("dev2", -time.Minute), Origin: "dev2"},
		{Model: "Status", Op: pipeline.OpCreate, Key: pipeline.Key{PK: "status#S1", SK: "status#"}, Item: []byte(`{"id":"S1","deviceId":"dev2","temp":1}`), Version: v("dev2", -time.Minute), Origin: "dev2"},
		{Model: "Status", Op: pipeline.OpCreate, Key: pipeline.Key{PK: "status#S2", SK: "status#"}, Item: []byte(`{"id":"S2","deviceId":"dev2"}`), Version: v("dev2", -time.Minute), Origin: "dev2"},
		{Model: "Status", Op: pipeline.OpRemove, Key: pipeline.Key{PK: "status#S2", SK: "status#"}, Version: v("dev2", -30*time.Second), Origin: "dev2"},
	}
	res, err := cloud.Apply(ctx, db.Source{Site: "dev2", Owner: "deviceId"}, setup)
	require.NoError(t, err)
	for i, r := range res {
		require.NoError(t, r.Err, "setup[%d]", i)
		require.True(t, r.Applied, "setup[%d]", i)
	}
	_, err = cloud.Create(ctx, "Command", db.Item{"deviceId": "dev1", "id": "C1", "command": "reboot"}, nil)
	require.NoError(t, err)
	require.NoError(t, cloud.SetMeta(ctx, "catchup-cursor", "kept"))

	for _, hc := range cases {
		t.Run(hc.Name, func(t *testing.T) {
			c := hc.change(t, time.Now())
			before := snapshot(t, st)
			res, err := cloud.Apply(ctx, db.Source{Site: hc.From, Owner: "deviceId"}, []pipeline.Change{c})
			require.NoError(t, err, "a refused change is a result, not a store failure")
			require.Len(t, res, 1)
			after := snapshot(t, st)
			if hc.Applied {
				require.NoError(t, res[0].Err)
				assert.True(t, res[0].Applied)
				delete(before, c.Key)
				delete(after, c.Key)
				assert.Equal(t, before, after, "only the change's own key moved")
				return
			}
			require.Error(t, res[0].Err)
			assert.False(t, res[0].Applied)
			assert.ErrorContains(t, res[0].Err, hc.Error)
			assert.True(t, pipeline.IsPermanent(res[0].Err), "a refusal is final: %v", res[0].Err)
			assert.LessOrEqual(t, len(pipeline.Reason(res[0].Err)), pipeline.MaxReasonLen)
			assert.Equal(t, before, after, "nothing stored changed")
		})
	}
	// No attack moved the cloud's clock.
	assert.Less(t, cloud.Clock().Next().Wall, time.Now().Add(time.Minute).UnixMilli(), "the cloud's clock stayed near the wall clock")
}

// An error about a huge model name repeats only a prefix of it.
func TestRefusalsRepeatOnlyAPrefixOfTheInput(t *testing.T) {
	ctx := context.Background()
	cloud := openSide(t, schema.SideCloud, "cloud")
	long := strings.Repeat("M", 100_000)
	c := pipeline.Change{Model: long, Op: pipeline.OpRemove, Key: pipeline.Key{PK: strings.Repeat("k", 2000)},
		Version: pipeline.Version{Wall: time.Now().UnixMilli(), Origin: "dev1"}, Origin: "dev1"}
	res, err := cloud.db.Apply(ctx, db.Source{Site: "dev1"}, []pipeline.Change{c})
	require.NoError(t, err)
	require.Error(t, res[0].Err)
	assert.Less(t, len(res[0].Err.Error()), 300, "the error: %.400s", res[0].Err)
}

// A device refuses cloud changes of models that do not replicate down.
func TestDeviceRefusesModelsThatDoNotReplicateDown(t *testing.T) {
	ctx := context.Background()
	dev := openSide(t, schema.SideDevice, "dev1")
	item := []byte(`{"pk":"reading#dev1","sk":"reading#00000001","deviceId":"dev1","seq":1}`)
	c := pipeline.Change{Model: "Reading", Op: pipeline.OpUpsert, Key: pipeline.Key{PK: "reading#dev1", SK: "reading#00000001"}, Item: item,
		Version: pipeline.Version{Wall: time.Now().UnixMilli(), Origin: "cloud"}, Origin: "cloud"}
	res, err := dev.db.Apply(ctx, db.Source{Site: "cloud"}, []pipeline.Change{c})
	require.NoError(t, err)
	require.ErrorContains(t, res[0].Err, "does not replicate to the device")
	_, err = dev.db.Get(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 1}, nil)
	require.ErrorIs(t, err, pipeline.ErrNotFound)
}

// MaxClockSkew sets how far ahead a device's version may be.
func TestMaxClockSkewIsConfigurable(t *testing.T) {
	ctx := context.Background()
	cloud, _ := openHostileCloud(t, time.Minute)
	at := func(id string, ahead time.Duration) pipeline.Change {
		return pipeline.Change{Model: "Reading", Op: pipeline.OpUpsert, Key: pipeline.Key{PK: "device#dev1", SK: "reading#" + id},
			Item:    []byte(`{"deviceId":"dev1","id":"` + id + `"}`),
			Version: pipeline.Version{Wall: time.Now().Add(ahead).UnixMilli(), Origin: "dev1"}, Origin: "dev1"}
	}
	res, err := cloud.Apply(ctx, db.Source{Site: "dev1", Owner: "deviceId"}, []pipeline.Change{at("a", 30*time.Second), at("b", 2*time.Minute)})
	require.NoError(t, err)
	require.NoError(t, res[0].Err, "30s ahead is within a minute")
	require.ErrorContains(t, res[1].Err, "ahead of this site's clock (at most 1m0s is accepted)")
}

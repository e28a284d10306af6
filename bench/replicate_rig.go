package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/iotod/iotod/broker"
	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/stages/batch"
	"github.com/iotod/iotod/plugins/stages/policy"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/plugins/transport/mqtt"
	"github.com/iotod/iotod/runner"
	"github.com/iotod/iotod/schema"
)

// The replication rig: an embedded broker on a free loopback port, and a
// device runner and a cloud runner in this process, each with its own mqtt
// transport and badger store, wired as the all-in-one pipelines.yaml.
const (
	deviceSite = "bench-device"
	rawSite    = "bench-raw" // the raw paho baseline publishes as this site
	devicePass = "device-secret"
	rawPass    = "raw-secret"
	cloudUser  = "cloud"
	cloudPass  = "cloud-secret"
)

// replicateSchema has a model that replicates up (Bench, as bench db's)
// and one that replicates down to the device its deviceId names.
const replicateSchema = `{
  "format": "onetable:1.1.0", "version": "1.0.0", "params": {"isoDates": true, "timestamps": true},
  "indexes": {"primary": {"hash": "pk", "sort": "sk"}},
  "models": {
    "Bench": {
      "pk": {"type": "string", "value": "bench#${dev}"},
      "sk": {"type": "string", "value": "bench#${id}"},
      "dev": {"type": "string", "required": true},
      "id": {"type": "string", "required": true},
      "payload": {"type": "string"}
    },
    "Command": {
      "pk": {"type": "string", "value": "command#${deviceId}"},
      "sk": {"type": "string", "value": "command#${id}"},
      "deviceId": {"type": "string", "required": true},
      "id": {"type": "string", "required": true},
      "payload": {"type": "string"}
    }
  },
  "process": {"Bench": {"sync": "up"}, "Command": {"sync": "down"}}
}`

// rigConfig shapes one rig.
type rigConfig struct {
	dir        string
	delay      time.Duration // the batch stages' delay
	durability string        // the device store's
	// persist keeps the broker's sessions in badger, as pipelines.yaml does.
	persist bool
	// memory is the device store's memory budget (0: the default sizes).
	memory pipeline.ByteSize
}

// rig is a started broker; runners are started on it one side at a time.
type rig struct {
	cfg    rigConfig
	sch    *schema.Schema
	broker *broker.Broker
	url    string
}

func startRig(ctx context.Context, cfg rigConfig) (*rig, error) {
	sch, err := schema.ParseBytes([]byte(replicateSchema), "json", "bench")
	if err != nil {
		return nil, fmt.Errorf("bench schema: %w", err)
	}
	bc := broker.NewDefaultConfig()
	bc.Listen = "127.0.0.1:0"
	if cfg.persist {
		bc.Persistence = filepath.Join(cfg.dir, "broker")
	}
	bc.Users = []broker.User{
		{Username: deviceSite, Password: devicePass, Site: deviceSite},
		{Username: rawSite, Password: rawPass, Site: rawSite},
		{Username: cloudUser, Password: cloudPass, Role: broker.RoleCloud},
	}
	b, err := broker.Start(ctx, bc, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("bench broker: %w", err)
	}
	return &rig{cfg: cfg, sch: sch, broker: b, url: "mqtt://" + b.Addr()}, nil
}

func (r *rig) close(ctx context.Context) error { return r.broker.Close(ctx) }

// side is a started runner and its database.
type side struct {
	r  *runner.Runner
	db *db.DB
}

// startDevice starts the device's runner: up (policy, batch) and apply.
func (r *rig) startDevice(ctx context.Context) (*side, error) {
	tc := r.transport(deviceSite, devicePass, "", "device")
	plan := runner.Plan{Site: deviceSite, Schema: r.sch, Dir: r.cfg.dir,
		Storage:    map[string]runner.StoragePlan{"local": r.storage("device", schema.SideDevice, deviceSite, r.cfg.durability)},
		Transports: map[string]runner.ComponentPlan{"device": {Factory: mqtt.NewFactory(), Config: tc}},
		Pipelines: []runner.PipelinePlan{
			{Name: "up", Direction: pipeline.Up, From: runner.Ref{Kind: pipeline.KindStorage, Name: "local"},
				To: runner.Ref{Kind: pipeline.KindTransport, Name: "device"}, Stages: r.sendStages()},
			{Name: "apply", Direction: pipeline.Down, From: runner.Ref{Kind: pipeline.KindTransport, Name: "device"},
				To: runner.Ref{Kind: pipeline.KindStorage, Name: "local"}, Stages: r.receiveStages()},
		}}
	return r.start(ctx, plan, "local")
}

// startCloud starts the cloud's runner: ingest and down (policy, batch).
func (r *rig) startCloud(ctx context.Context) (*side, error) {
	tc := r.transport(cloudUser, cloudPass, "cloud-worker-1", "cloud")
	plan := runner.Plan{Site: "cloud", Schema: r.sch, Dir: r.cfg.dir,
		Storage:    map[string]runner.StoragePlan{"cloud": r.storage("cloud", schema.SideCloud, "cloud", badger.DurabilitySync)},
		Transports: map[string]runner.ComponentPlan{"cloud": {Factory: mqtt.NewFactory(), Config: tc}},
		Pipelines: []runner.PipelinePlan{
			{Name: "ingest", Direction: pipeline.Up, From: runner.Ref{Kind: pipeline.KindTransport, Name: "cloud"},
				To: runner.Ref{Kind: pipeline.KindStorage, Name: "cloud"}, Stages: r.receiveStages()},
			{Name: "down", Direction: pipeline.Down, From: runner.Ref{Kind: pipeline.KindStorage, Name: "cloud"},
				To: runner.Ref{Kind: pipeline.KindTransport, Name: "cloud"}, Stages: r.sendStages()},
		}}
	return r.start(ctx, plan, "cloud")
}

func (r *rig) start(ctx context.Context, plan runner.Plan, store string) (*side, error) {
	rn, err := runner.New(plan, runner.Options{})
	if err != nil {
		return nil, fmt.Errorf("%s runner: %w", plan.Site, err)
	}
	if err := rn.Start(ctx); err != nil {
		return nil, fmt.Errorf("%s runner: %w", plan.Site, err)
	}
	return &side{r: rn, db: rn.DB(store)}, nil
}

// shutdown stops the given sides (nil ones skipped), device first.
// shutdown stops the sides in order, waiting at most 30s in all for
// in-flight batches: what is not acknowledged by then does not matter once
// a measurement is done, and a drain must not hang a benchmark.
func shutdown(ctx context.Context, sides ...*side) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var errs []error
	for _, s := range sides {
		if s != nil {
			if err := s.r.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (r *rig) transport(user, pass, clientID, name string) *mqtt.Config {
	c := mqtt.NewDefaultConfig()
	c.URL, c.Username, c.Password, c.ClientID = r.url, user, pass, clientID
	c.SessionDir = filepath.Join(r.cfg.dir, "session-"+name)
	return &c
}

func (r *rig) storage(name string, sd schema.Side, site, durability string) runner.StoragePlan {
	cfg := badger.NewDefaultConfig()
	cfg.Path, cfg.Durability = filepath.Join(r.cfg.dir, name), durability
	if sd == schema.SideDevice {
		cfg.Memory = r.cfg.memory
	}
	return runner.StoragePlan{ComponentPlan: runner.ComponentPlan{Factory: badger.NewFactory(), Config: &cfg},
		Side: sd, Site: site}
}

// sendStages are pipelines.yaml's: policy, then batch with the rig's
// delay, 64KB and 500 changes.
func (r *rig) sendStages() []runner.ComponentPlan {
	pf, bf := policy.NewFactory(), batch.NewFactory()
	bc := batch.NewDefaultConfig()
	bc.Delay, bc.Limit, bc.Count = r.cfg.delay, 64*pipeline.Kilobyte, 500
	return []runner.ComponentPlan{
		{ID: pipeline.ID{Type: pf.Type()}, Factory: pf, Config: pf.NewDefaultConfig()},
		{ID: pipeline.ID{Type: bf.Type()}, Factory: bf, Config: bc},
	}
}

func (r *rig) receiveStages() []runner.ComponentPlan {
	pf := policy.NewFactory()
	return []runner.ComponentPlan{{ID: pipeline.ID{Type: pf.Type()}, Factory: pf, Config: pf.NewDefaultConfig()}}
}

// queueOffline writes n creates on the device store alone (the runner not
// started), so n changes wait in its outbox.
func (r *rig) queueOffline(ctx context.Context, n int) error {
	cfg := badger.NewDefaultConfig()
	cfg.Path, cfg.Durability, cfg.Memory = filepath.Join(r.cfg.dir, "device"), badger.DurabilityAsync, r.cfg.memory
	st, err := badger.Open(ctx, cfg, nil)
	if err != nil {
		return fmt.Errorf("queue offline: %w", err)
	}
	defer st.Close(ctx)
	d, err := db.Open(ctx, db.Options{Schema: r.sch, Store: st, Site: deviceSite})
	if err != nil {
		return fmt.Errorf("queue offline: %w", err)
	}
	defer d.Close(ctx)
	const chunk = 500
	for i := 0; i < n; i += chunk {
		ops := make([]db.WriteOp, 0, chunk)
		for j := i; j < min(i+chunk, n); j++ {
			ops = append(ops, db.WriteOp{Op: pipeline.OpCreate, Model: "Bench", Item: benchItem(fmt.Sprintf("q%d", j/partition), j)})
		}
		if _, err := d.Transact(ctx, ops); err != nil {
			return fmt.Errorf("queue offline at %d: %w", i, err)
		}
	}
	return nil
}

package publish

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/pipeline/plugintest"
	"github.com/iotod/iotod/plugins/transport/mqtt"
)

var runs atomic.Int64

// runID is unique to one target of one test process.
func runID() string {
	return fmt.Sprintf("pt%d-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9, runs.Add(1))
}

// transportTarget is a publish trigger on an mqtt transport to brokerURL
// (edited by edit), publishing on plugintest/<run>/...; it returns the run.
func transportTarget(t *testing.T, brokerURL string, edit func(*mqtt.Config)) (plugintest.TriggerTarget, string) {
	t.Helper()
	run := runID()
	mc := mqtt.NewDefaultConfig()
	mc.URL = brokerURL
	mc.ClientID = "trigger-" + run
	mc.SessionDir = t.TempDir()
	mc.CleanStart = true
	if edit != nil {
		edit(&mc)
	}
	tr, err := mqtt.New(mc, pipeline.Settings{Site: "plugintest"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close(context.Background()) })
	cfg := NewFactory().NewDefaultConfig().(*Config)
	cfg.Transport = "bus"
	cfg.Topic = "plugintest/" + run + "/{model}/{op}/{pk}/{sk}"
	set := pipeline.Settings{Transport: func(name string) (pipeline.Transport, bool) { return tr, name == "bus" }}
	return plugintest.TriggerTarget{Config: cfg, Settings: set}, run
}

// silentBroker accepts connections and never answers: a broker that hangs.
func silentBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "mqtt://" + ln.Addr().String()
}

// The publish trigger through a real mosquitto: a plain MQTT client
// subscribed to the trigger's topics is the target; each message is a
// delivery of one change.
func TestConformance(t *testing.T) {
	u := os.Getenv("IOTOD_MOSQUITTO_URL")
	if u == "" {
		if testing.Short() {
			t.Skip("IOTOD_MOSQUITTO_URL is not set (make test starts mosquitto)")
		}
		t.Fatal("IOTOD_MOSQUITTO_URL is not set: start mosquitto with scripts/services.sh start")
	}
	plugintest.TestTrigger(t, plugintest.TriggerHarness{
		Factory:    NewFactory(),
		Concurrent: true,
		Working: func(t *testing.T) plugintest.TriggerTarget {
			target, run := transportTarget(t, u, nil)
			var mu sync.Mutex
			var got [][]pipeline.Change
			rawSubscriber(t, u, "sub-"+run, "plugintest/"+run+"/#", func(p *paho.Publish) {
				var c pipeline.Change
				if err := json.Unmarshal(p.Payload, &c); err != nil {
					t.Errorf("message on %s is not a change: %v", p.Topic, err)
				}
				mu.Lock()
				got = append(got, []pipeline.Change{c})
				mu.Unlock()
			})
			target.Received = func() [][]pipeline.Change {
				mu.Lock()
				defer mu.Unlock()
				return append([][]pipeline.Change(nil), got...)
			}
			return target
		},
		Hanging: func(t *testing.T) plugintest.TriggerTarget {
			target, _ := transportTarget(t, silentBroker(t), nil)
			return target
		},
		Refusals: []plugintest.TriggerRefusal{{
			// The transport takes no payload over max_payload: no retry helps.
			Name: "PayloadOverMaxPayload",
			New: func(t *testing.T) plugintest.TriggerTarget {
				target, _ := transportTarget(t, u, func(c *mqtt.Config) { c.MaxPayload = 16 })
				return target
			},
			Permanent: true,
		}},
	})
}

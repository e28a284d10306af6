package handler_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iotod/iotod/cmd/iotod-lambda/handler"
	"github.com/iotod/iotod/internal/dynamotest"
	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/plugins/transport/mqtt"
)

// failSite is a transport that refuses every publish to one site.
type failSite struct {
	pipeline.Transport
	site string
}

func (f failSite) Publish(ctx context.Context, ch pipeline.Channel, site string, msg *message.Message) error {
	if site == f.site {
		return fmt.Errorf("publish to %s: injected failure", site)
	}
	return f.Transport.Publish(ctx, ch, site, msg)
}

// topic is this run's topic template: the tests share the broker with
// other tests, which must not hear these batches nor send to these sites.
var topic = fmt.Sprintf("lambdatest-%d/{site}/{channel}", time.Now().UnixNano())

func newTransport(t *testing.T, url, clientID string) *mqtt.Transport {
	t.Helper()
	cfg := mqtt.NewDefaultConfig()
	cfg.URL, cfg.ClientID, cfg.SessionDir = url, clientID, t.TempDir()
	cfg.Topic, cfg.ShareGroup = topic, ""
	cfg.SessionExpiry, cfg.CleanStart = 0, true
	cfg.ConnectTimeout, cfg.PublishTimeout = 2*time.Second, 2*time.Second
	tr, err := mqtt.New(cfg, pipeline.Settings{Kind: pipeline.KindTransport, Site: "cloud"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close(context.Background()) })
	return tr
}

func testConfig() handler.Config {
	cfg := handler.DefaultConfig()
	cfg.Schema = filepath.Join("testdata", "schema.json5")
	cfg.PublishTimeout = time.Second
	return cfg
}

// item is a Command, Notice or Status item as the SDK writes it.
func item(model, pk, sk string, attrs map[string]string) map[string]ddbtypes.AttributeValue {
	m := map[string]ddbtypes.AttributeValue{
		"pk": &ddbtypes.AttributeValueMemberS{Value: pk}, "sk": &ddbtypes.AttributeValueMemberS{Value: sk},
		"_type": &ddbtypes.AttributeValueMemberS{Value: model},
	}
	for k, v := range attrs {
		m[k] = &ddbtypes.AttributeValueMemberS{Value: v}
	}
	return m
}

func command(dev, id string) map[string]ddbtypes.AttributeValue {
	return item("Command", "device#"+dev, "command#"+id, map[string]string{"id": id, "deviceId": dev, "command": "reboot"})
}

// streamEvent writes the items to a fresh stream table and returns the
// records Lambda would get for them, in order.
func streamEvent(t *testing.T, items ...map[string]ddbtypes.AttributeValue) events.DynamoDBEvent {
	t.Helper()
	c := dynamotest.Client(t)
	table, arn := dynamotest.StreamTable(t, c, "lambda")
	ctx := context.Background()
	for _, it := range items {
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}); err != nil {
			t.Fatal(err)
		}
	}
	recs := readStream(t, dynamotest.StreamsClient(t), arn, len(items))
	var ev events.DynamoDBEvent
	for _, r := range recs {
		ev.Records = append(ev.Records, eventRecord(t, r, arn))
	}
	return ev
}

// The items of the tests, in write order; the comments say where each goes.
func testItems() []map[string]ddbtypes.AttributeValue {
	own := pipeline.Version{Wall: time.Now().UnixMilli(), Origin: "dev-a"}.String()
	c3 := command("dev-a", "c3")
	c3["_version"] = &ddbtypes.AttributeValueMemberS{Value: own} // written by dev-a through iotod
	return []map[string]ddbtypes.AttributeValue{
		command("dev-a", "c1"), // 1: dev-a
		command("dev-b", "c2"), // 2: dev-b
		item("Notice", "notice#", "notice#n1", map[string]string{"id": "n1", "text": "hello"}), // 3: everyone
		item("Status", "device#dev-a", "status#", map[string]string{"deviceId": "dev-a"}),      // 4: up only: nowhere
		c3,                        // 5: from dev-a: not back to it
		command("dev-fail", "c4"), // 6: to the site whose publish fails
		command("dev-b", "c5"),    // 7: dev-b, in the batch of c2
		command("dev-fail", "c6"), // 8: to the failing site
	}
}

func subscribe(t *testing.T, tr *mqtt.Transport, site string) <-chan *message.Message {
	t.Helper()
	ch, err := tr.Subscribe(t.Context(), pipeline.ChanDown, site)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// received collects the batches that arrive within wait, by the site
// they were published to.
func received(t *testing.T, ch <-chan *message.Message, wait time.Duration) map[string][]*pipeline.Batch {
	t.Helper()
	out := map[string][]*pipeline.Batch{}
	deadline := time.After(wait)
	for {
		select {
		case m := <-ch:
			b, err := pipeline.DecodeBatch(m.Payload, 0)
			if err != nil {
				t.Fatalf("received a payload that is not a batch: %v: %s", err, m.Payload)
			}
			m.Ack()
			site := m.Metadata.Get(pipeline.MetaSite)
			out[site] = append(out[site], b)
		case <-deadline:
			return out
		}
	}
}

func sks(b *pipeline.Batch) []string {
	var out []string
	for _, c := range b.Changes {
		out = append(out, c.Key.SK)
	}
	return out
}

func TestHandlerRoutesAndReportsFailures(t *testing.T) {
	url := mosquittoURL(t)
	ev := streamEvent(t, testItems()...)
	if len(ev.Records) != 8 {
		t.Fatalf("%d stream records, want 8", len(ev.Records))
	}
	sub := newTransport(t, url, "lambda-test-sub")
	all := subscribe(t, sub, "") // every site's, not shared
	pub := newTransport(t, url, "lambda-test-pub")
	h, err := handler.New(testConfig(), failSite{Transport: pub, site: "dev-fail"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, st := h.HandleStats(context.Background(), ev)

	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	want := []string{ev.Records[5].Change.SequenceNumber, ev.Records[7].Change.SequenceNumber}
	if !slices.Equal(failed, want) {
		t.Errorf("BatchItemFailures = %v, want the records of dev-fail %v", failed, want)
	}
	if st.Skipped["not_down"] != 1 || st.Skipped["origin"] != 1 || st.Published != 4 {
		t.Errorf("stats %+v: want 1 up-only skipped, 1 not sent back to its origin, 4 published", st)
	}

	got := received(t, all, 1500*time.Millisecond)
	if len(got) != 3 {
		t.Errorf("batches went to %d sites, want 3 (dev-a, dev-b, all)", len(got))
	}
	check := func(site string, wantSK ...string) {
		t.Helper()
		if len(got[site]) != 1 {
			t.Errorf("%s got %d batches, want 1", site, len(got[site]))
			return
		}
		b := got[site][0]
		if !slices.Equal(sks(b), wantSK) {
			t.Errorf("%s got %v, want %v", site, sks(b), wantSK)
		}
		if b.Site != "cloud" || b.V != pipeline.ProtocolVersion {
			t.Errorf("%s: batch site %q v %d", site, b.Site, b.V)
		}
		for _, c := range b.Changes {
			if c.Origin == site {
				t.Errorf("%s got its own change %s back", site, c.Key)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("%s: change %s: %v", site, c.Key, err)
			}
		}
	}
	check("dev-a", "command#c1") // not c3 (its own), not the Status (up only)
	check("dev-b", "command#c2", "command#c5")
	check(pipeline.Broadcast, "notice#n1")
	if n := len(got["dev-fail"]); n != 0 {
		t.Errorf("dev-fail got %d batches through a failing publish", n)
	}
	for _, b := range got["dev-a"] {
		for _, c := range b.Changes {
			if strings.HasPrefix(c.Key.SK, "status#") {
				t.Errorf("an up-only Status was sent down: %s", c.Key)
			}
		}
	}
}

// With no broker to take them, every record that had something to send
// comes back in BatchItemFailures (in time: the publish timeout), and the
// records that had nothing to send do not.
func TestHandlerBrokerDown(t *testing.T) {
	mosquittoURL(t) // the same conditions as the other test
	ev := streamEvent(t, testItems()...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now
	pub := newTransport(t, "mqtt://"+addr, "lambda-test-down")
	h, err := handler.New(testConfig(), pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, _ := h.HandleStats(context.Background(), ev)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s with the broker down", d)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	var want []string
	for _, i := range []int{0, 1, 2, 5, 6, 7} { // not the Status, not dev-a's own c3
		want = append(want, ev.Records[i].Change.SequenceNumber)
	}
	if !slices.Equal(failed, want) {
		t.Errorf("BatchItemFailures = %v, want %v", failed, want)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{"IOTOD_SCHEMA": "/s.json5", "IOTOD_MQTT_URL": "mqtts://broker:8883",
		"IOTOD_MQTT_USERNAME": "u", "IOTOD_OWNER": "thing", "IOTOD_PUBLISH_TIMEOUT": "3s"}
	cfg, err := handler.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Schema != "/s.json5" || cfg.MQTT.URL != "mqtts://broker:8883" || cfg.MQTT.Username != "u" ||
		cfg.Owner != "thing" || cfg.PublishTimeout != 3*time.Second || cfg.Site != "cloud" {
		t.Errorf("config %+v", cfg)
	}
	if _, err := handler.FromEnv(func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "schema") {
		t.Errorf("no schema: err %v", err)
	}
	if _, err := handler.FromEnv(func(k string) string {
		return map[string]string{"IOTOD_SCHEMA": "x", "IOTOD_PUBLISH_TIMEOUT": "soon"}[k]
	}); err == nil {
		t.Error("a bad publish timeout was accepted")
	}
}

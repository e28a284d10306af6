package dynamodb

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

func testLayout(t *testing.T) *layout {
	t.Helper()
	l, err := newLayout("T", testSchema(t), "")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var v1 = pipeline.Version{Wall: 1732541234567, Counter: 3, Origin: "dev-1"}

// statusItem is a Status item as iotod's database writes it: every store
// attribute is in the item.
const statusItem = `{"_type":"Status","_version":"0001732541234567.00000003.dev-1","created":"2024-11-25T13:27:14.567Z","deviceId":"dev-1","expires":1732544834,"gs1pk":"device#dev-1","gs1sk":"status#01J","id":"01J","pk":"status#01J","sk":"status#","temp":21.5,"updated":"2024-11-25T13:27:14.567Z"}`

func statusRecord() *pipeline.Record {
	return &pipeline.Record{
		Key: pipeline.Key{PK: "status#01J", SK: "status#"}, Model: "Status", Item: []byte(statusItem),
		Indexes: []pipeline.IndexEntry{{Index: "gs1", Hash: "device#dev-1", Sort: "status#01J"}},
		Version: v1, Expires: 1732544834000,
	}
}

func TestTombstoneModelIsDBs(t *testing.T) {
	if tombstoneModel != db.TombstoneModel || versionAttr != db.VersionAttr {
		t.Fatalf("store's tombstone model %q / version attribute %q, db's %q / %q", tombstoneModel, versionAttr, db.TombstoneModel, db.VersionAttr)
	}
}

// TestRecordRoundTrip: records map onto attributes and back unchanged.
func TestRecordRoundTrip(t *testing.T) {
	l := testLayout(t)
	onlyKeys := &pipeline.Record{Key: pipeline.Key{PK: "a", SK: "1"}, Model: "Thing", Item: []byte(`{"pk":"a","sk":"1"}`),
		Indexes: []pipeline.IndexEntry{{Index: "gs1", Hash: "h", Sort: "s"}, {Index: "gs2", Hash: "k", Sort: "v"}},
		Version: v1, Expires: 1732544834000}
	for name, tc := range map[string]struct {
		rec   *pipeline.Record
		added []string // the store attributes the item lacked
		attrs map[string]string
	}{
		"database item": {rec: statusRecord(), attrs: map[string]string{"_type": "Status", "gs1pk": "device#dev-1", "expires": "1732544834"}},
		"suite record": {rec: onlyKeys, added: []string{"_type", "_version", "expires", "gs1pk", "gs1sk", "gs2pk", "gs2sk"},
			attrs: map[string]string{"_type": "Thing", "_version": v1.String(), "gs2sk": "v", "expires": "1732544834"}},
		"no key in the item": {rec: &pipeline.Record{Key: pipeline.Key{PK: "a", SK: "1"}, Model: "Other", Item: []byte(`{"v":2}`)},
			added: []string{"_type", "pk", "sk"}},
		"no model, no version": {rec: &pipeline.Record{Key: pipeline.Key{PK: "a", SK: "1"}, Item: []byte(`{"pk":"a","sk":"1"}`)}},
		"unicode key": {rec: &pipeline.Record{Key: pipeline.Key{PK: "设备#🛰", SK: "a\x00b"}, Model: "Thing", Item: []byte(`{"x":"é"}`)},
			added: []string{"_type", "pk", "sk"}},
		"tombstone": {rec: &pipeline.Record{Key: pipeline.Key{PK: "status#01J", SK: "status#"}, Model: "~tombstone",
			Item: []byte(`{"model":"Status","owner":"dev-1"}`), Version: v1, Expires: 1733146034000},
			attrs: map[string]string{"_type": "~tombstone", "model": "Status", "owner": "dev-1", "expires": "1733146034", "_version": v1.String()}},
		"meta text": {rec: &pipeline.Record{Key: pipeline.Key{PK: "~meta", SK: "cursor"}, Model: "~meta", Item: []byte("0001732541234567.00000003.cloud")},
			attrs: map[string]string{"_type": "~meta", "_value": "0001732541234567.00000003.cloud"}},
		"meta empty": {rec: &pipeline.Record{Key: pipeline.Key{PK: "~meta", SK: "empty"}, Model: "~meta", Item: nil},
			attrs: map[string]string{"_value": ""}},
		"meta JSON not canonical": {rec: &pipeline.Record{Key: pipeline.Key{PK: "~meta", SK: "j"}, Model: "~meta", Item: []byte(`{"b":1, "a":2}`)},
			attrs: map[string]string{"_value": `{"b":1, "a":2}`}},
		"meta holding a store attribute": {rec: &pipeline.Record{Key: pipeline.Key{PK: "~meta", SK: "j"}, Model: "~meta", Item: []byte(`{"pk":"x"}`)},
			attrs: map[string]string{"_value": `{"pk":"x"}`, "pk": "~meta"}},
	} {
		t.Run(name, func(t *testing.T) {
			attrs, err := l.toAttrs(tc.rec)
			if err != nil {
				t.Fatalf("to attributes: %v", err)
			}
			var added []string
			if a, ok := attrs[addedAttr].(*types.AttributeValueMemberSS); ok {
				added = a.Value
			}
			if !slices.Equal(added, tc.added) {
				t.Errorf("%s: %q, want %q", addedAttr, added, tc.added)
			}
			for name, want := range tc.attrs {
				var got string
				switch v := attrs[name].(type) {
				case *types.AttributeValueMemberS:
					got = v.Value
				case *types.AttributeValueMemberN:
					got = v.Value
				}
				if got != want {
					t.Errorf("attribute %q = %#v, want %q", name, attrs[name], want)
				}
			}
			if strings.HasPrefix(tc.rec.Model, "~") {
				if _, ok := attrs[addedAttr]; ok {
					t.Errorf("internal record with %s", addedAttr)
				}
			}
			back, err := l.fromAttrs(attrs)
			if err != nil {
				t.Fatalf("from attributes: %v", err)
			}
			if back.Key != tc.rec.Key || back.Model != tc.rec.Model || string(back.Item) != string(tc.rec.Item) ||
				back.Version != tc.rec.Version || back.Expires != tc.rec.Expires ||
				len(back.Indexes)+len(tc.rec.Indexes) > 0 && !reflect.DeepEqual(back.Indexes, tc.rec.Indexes) {
				t.Fatalf("round trip:\n got %+v (item %s)\nwant %+v (item %s)", back, back.Item, tc.rec, tc.rec.Item)
			}
		})
	}
}

// TestRecordInvalidUTF8Meta: a meta body that is not UTF-8 is kept as
// binary.
func TestRecordInvalidUTF8Meta(t *testing.T) {
	l := testLayout(t)
	rec := &pipeline.Record{Key: pipeline.Key{PK: "~meta", SK: "bin"}, Model: "~meta", Item: []byte{0xff, 0, 'a'}}
	attrs, err := l.toAttrs(rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := attrs[valueAttr].(*types.AttributeValueMemberB); !ok {
		t.Fatalf("%s is %#v, want binary", valueAttr, attrs[valueAttr])
	}
	back, err := l.fromAttrs(attrs)
	if err != nil || string(back.Item) != string(rec.Item) {
		t.Fatalf("round trip: %q, %v", back.Item, err)
	}
}

// TestRecordRefused: records the table cannot hold, or whose item
// disagrees with them, are refused with ErrInvalid naming the table, the
// key and what is wrong.
func TestRecordRefused(t *testing.T) {
	l := testLayout(t)
	mod := func(f func(r *pipeline.Record)) *pipeline.Record {
		r := statusRecord()
		f(r)
		return r
	}
	item := func(from, to string) func(r *pipeline.Record) {
		return func(r *pipeline.Record) { r.Item = []byte(strings.Replace(string(r.Item), from, to, 1)) }
	}
	for name, tc := range map[string]struct {
		rec  *pipeline.Record
		want string
	}{
		"empty pk":           {mod(func(r *pipeline.Record) { r.Key.PK = "" }), "key attributes cannot be empty"},
		"empty sk":           {mod(func(r *pipeline.Record) { r.Key.SK = "" }), "key attributes cannot be empty"},
		"bad UTF-8 key":      {mod(func(r *pipeline.Record) { r.Key.SK = "\xff" }), "not valid UTF-8"},
		"pk disagrees":       {mod(func(r *pipeline.Record) { r.Key.PK = "status#other" }), `item's "pk"`},
		"model disagrees":    {mod(func(r *pipeline.Record) { r.Model = "Other" }), `item's "_type"`},
		"version disagrees":  {mod(func(r *pipeline.Record) { r.Version.Counter = 4 }), `item's "_version"`},
		"no version":         {mod(func(r *pipeline.Record) { r.Version = pipeline.Version{} }), `item's "_version"`},
		"index disagrees":    {mod(func(r *pipeline.Record) { r.Indexes[0].Hash = "device#dev-2" }), `item's "gs1pk"`},
		"index missing":      {mod(func(r *pipeline.Record) { r.Indexes = nil }), `key attributes of index "gs1" but the record has no entry`},
		"unknown index":      {mod(func(r *pipeline.Record) { r.Indexes = append(r.Indexes, pipeline.IndexEntry{Index: "gs9", Hash: "h"}) }), `index "gs9" is not in the schema`},
		"two entries":        {mod(func(r *pipeline.Record) { r.Indexes = append(r.Indexes, r.Indexes[0]) }), `two entries for index "gs1"`},
		"empty index key":    {mod(func(r *pipeline.Record) { r.Indexes = append(r.Indexes, pipeline.IndexEntry{Index: "gs2", Hash: "h"}) }), "index key attributes cannot be empty"},
		"index key a number": {mod(item(`"gs1sk":"status#01J"`, `"gs1sk":5`)), `item's "gs1sk" (number 5)`},
		"expiry disagrees":   {mod(func(r *pipeline.Record) { r.Expires += 1000 }), `item's "expires"`},
		"expiry missing":     {mod(func(r *pipeline.Record) { r.Expires = 0 }), `disagrees with the record's expiry (none)`},
		"expiry negative":    {mod(func(r *pipeline.Record) { r.Expires = -5 }), "expiry -5 ms is out of range"},
		"reserved attribute": {mod(item(`"_type"`, `"_iotod":["x"],"_type"`)), `"_iotod" is reserved`},
		"not an object":      {mod(func(r *pipeline.Record) { r.Item = []byte(`[1]`) }), "not a JSON object"},
		"not JSON":           {mod(func(r *pipeline.Record) { r.Item = []byte(`{"a":`) }), "not JSON"},
		"huge number":        {mod(item(`"temp":21.5`, `"temp":1e300`)), `attribute "temp": number 1e300 is out of DynamoDB's range`},
		"internal with index": {&pipeline.Record{Key: pipeline.Key{PK: "a", SK: "b"}, Model: "~tombstone", Item: []byte(`{"model":"X"}`),
			Indexes: []pipeline.IndexEntry{{Index: "gs1", Hash: "h", Sort: "s"}}}, "no index entries"},
	} {
		_, err := l.toAttrs(tc.rec)
		if !errors.Is(err, pipeline.ErrInvalid) || !strings.Contains(err.Error(), tc.want) ||
			!strings.Contains(err.Error(), `table "T"`) || !strings.Contains(err.Error(), tc.rec.Key.String()) {
			t.Errorf("%s: got %v, want ErrInvalid naming the table, the key and %q", name, err, tc.want)
		}
	}
}

// TestFromOthers: items written by OneTable or the SDK, without _version
// or _iotod, read as records: model from the type field, zero version,
// expiry from the model's ttl field, index entries from the index keys.
func TestFromOthers(t *testing.T) {
	l := testLayout(t)
	S := func(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
	attrs := map[string]types.AttributeValue{
		"pk": S("status#02"), "sk": S("status#"), "_type": S("Status"), "id": S("02"),
		"gs1pk": S("device#d"), "gs1sk": S("status#02"), "deviceId": S("d"),
		"expires": &types.AttributeValueMemberN{Value: "1732544834"},
		"tags":    &types.AttributeValueMemberSS{Value: []string{"a"}},
		"updated": S("2024-11-25T13:27:14.567Z"),
	}
	rec, err := l.fromAttrs(attrs)
	if err != nil {
		t.Fatal(err)
	}
	want := &pipeline.Record{Key: pipeline.Key{PK: "status#02", SK: "status#"}, Model: "Status",
		Item:    []byte(`{"_type":"Status","deviceId":"d","expires":1732544834,"gs1pk":"device#d","gs1sk":"status#02","id":"02","pk":"status#02","sk":"status#","tags":["a"],"updated":"2024-11-25T13:27:14.567Z"}`),
		Indexes: []pipeline.IndexEntry{{Index: "gs1", Hash: "device#d", Sort: "status#02"}}, Expires: 1732544834000}
	if !reflect.DeepEqual(rec, want) {
		t.Fatalf("record:\n got %+v (item %s)\nwant %+v (item %s)", rec, rec.Item, want, want.Item)
	}
	// An item only partly in an index (no sort) is not in it; a ttl that is
	// not a number is no expiry.
	delete(attrs, "gs1sk")
	attrs["expires"] = S("2024-11-25T13:27:14.567Z")
	if rec, err = l.fromAttrs(attrs); err != nil || len(rec.Indexes) != 0 || rec.Expires != 0 {
		t.Fatalf("partial index keys, string ttl: %+v, %v", rec, err)
	}
	for name, bad := range map[string]map[string]types.AttributeValue{
		"no keys":         {"_type": S("Status")},
		"number type":     {"pk": S("a"), "sk": S("b"), "_type": &types.AttributeValueMemberN{Value: "1"}},
		"bad version":     {"pk": S("a"), "sk": S("b"), "_version": S("yesterday")},
		"version number":  {"pk": S("a"), "sk": S("b"), "_version": &types.AttributeValueMemberN{Value: "1"}},
		"added not a set": {"pk": S("a"), "sk": S("b"), "_iotod": S("pk")},
	} {
		if _, err := l.fromAttrs(bad); !errors.Is(err, pipeline.ErrInvalid) || !strings.Contains(err.Error(), `table "T"`) {
			t.Errorf("%s: got %v, want ErrInvalid naming the table", name, err)
		}
	}
}

// TestLayoutFromSchema: keys, indexes, key types and TTL attribute follow
// the schema; a schema the table cannot follow is refused.
func TestLayoutFromSchema(t *testing.T) {
	l := testLayout(t)
	if l.hash != "pk" || l.sort != "sk" || l.typeField != "_type" || l.ttlAttr != "expires" || l.ttlFor("Thing") != "expires" {
		t.Fatalf("layout %+v", l)
	}
	if len(l.indexes) != 2 || l.indexes[0].name != "gs1" || l.indexes[0].hash != "gs1pk" || l.indexes[1].sort != "gs2sk" {
		t.Fatalf("indexes %+v", l.indexes)
	}
	parse := func(text string) error {
		sch := parseSchema(t, text)
		_, err := newLayout("T", sch, "")
		return err
	}
	base := `format: 'onetable:1.1.0', version: '0.0.1', params: {typeField: 'kind'},`
	custom := parseSchema(t, `{`+base+` indexes: {primary: {hash: 'h', sort: 's'}, ls1: {type: 'local', sort: 'when'},
		gs1: {hash: 'n', sort: 'm', project: 'keys'}, gs2: {hash: 'g', project: ['a', 'h']}},
		models: {M: {h: {type: 'string'}, s: {type: 'string'}, n: {type: 'number'}, m: {type: 'string'}, until: {type: 'date', ttl: true}}}}`)
	l2, err := newLayout("T", custom, "")
	if err != nil {
		t.Fatal(err)
	}
	def := l2.tableDefinition()
	if l2.typeField != "kind" || l2.ttlAttr != "until" || len(def.GlobalSecondaryIndexes) != 2 || len(def.LocalSecondaryIndexes) != 1 {
		t.Fatalf("custom layout %+v, definition %+v", l2, def)
	}
	kinds := map[string]types.ScalarAttributeType{}
	for _, d := range def.AttributeDefinitions {
		kinds[*d.AttributeName] = d.AttributeType
	}
	if !reflect.DeepEqual(kinds, map[string]types.ScalarAttributeType{"h": "S", "s": "S", "when": "S", "n": "N", "m": "S", "g": "S"}) {
		t.Fatalf("attribute definitions %v", kinds)
	}
	g1, g2 := def.GlobalSecondaryIndexes[0], def.GlobalSecondaryIndexes[1]
	if g1.Projection.ProjectionType != types.ProjectionTypeKeysOnly || g2.Projection.ProjectionType != types.ProjectionTypeInclude ||
		!slices.Equal(g2.Projection.NonKeyAttributes, []string{"a"}) || len(g2.KeySchema) != 1 {
		t.Fatalf("projections %+v %+v", g1.Projection, g2.Projection)
	}
	if def.StreamSpecification == nil || *def.StreamSpecification.StreamEnabled != true ||
		def.StreamSpecification.StreamViewType != types.StreamViewTypeNewAndOldImages || def.BillingMode != types.BillingModePayPerRequest {
		t.Fatalf("stream %+v, billing %s", def.StreamSpecification, def.BillingMode)
	}
	for text, want := range map[string]string{
		`{` + base + ` indexes: {primary: {hash: 'h'}}, models: {M: {h: {type: 'string'}}}}`:                                                                                                                                            "needs a hash and a sort",
		`{` + base + ` indexes: {primary: {hash: 'h', sort: 's'}}, models: {M: {h: {type: 'number'}, s: {type: 'string'}}}}`:                                                                                                            `primary key attribute "h" must be a string`,
		`{` + base + ` indexes: {primary: {hash: 'h', sort: 's'}}, models: {A: {h: {type: 'string'}, s: {type: 'string'}, t: {type: 'date', ttl: true}}, B: {h: {type: 'string'}, s: {type: 'string'}, u: {type: 'date', ttl: true}}}}`: "t (A); u (B)",
		`{` + base + ` indexes: {primary: {hash: 'h', sort: 's'}, gs1: {hash: 'g'}}, models: {A: {h: {type: 'string'}, s: {type: 'string'}, g: {type: 'number', ttl: true}}}}`:                                                          `ttl attribute "g" is also a key`,
	} {
		if err := parse(text); !errors.Is(err, pipeline.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("%.80s: got %v, want %q", text, err, want)
		}
	}
}

// TestTombstoneTTL: tombstone_ttl keeps a tombstone at least that long; a
// longer expiry from its writer stands, other records are untouched.
func TestTombstoneTTL(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	cfg := NewDefaultConfig()
	cfg.Table, cfg.TombstoneTTL = "T", 30*24*time.Hour
	s := &Store{cfg: cfg, l: testLayout(t), now: func() time.Time { return now }}
	tomb := func(expires time.Time) *pipeline.Record {
		return &pipeline.Record{Key: pipeline.Key{PK: "a", SK: "1"}, Model: "~tombstone", Item: []byte(`{"model":"Status"}`),
			Version: v1, Expires: expires.UnixMilli()}
	}
	for name, tc := range map[string]struct {
		rec  *pipeline.Record
		want time.Time
	}{
		"7 days raised to 30": {tomb(now.Add(7 * 24 * time.Hour)), now.Add(30*24*time.Hour + time.Second).Truncate(time.Second)},
		"60 days kept":        {tomb(now.Add(60 * 24 * time.Hour)), now.Add(60 * 24 * time.Hour).Truncate(time.Second)},
		"no expiry raised":    {tomb(time.UnixMilli(0)), now.Add(30*24*time.Hour + time.Second).Truncate(time.Second)},
		"an item untouched": {&pipeline.Record{Key: pipeline.Key{PK: "a", SK: "1"}, Model: "Thing", Item: []byte(`{}`),
			Expires: now.Add(time.Hour).UnixMilli()}, now.Add(time.Hour).Truncate(time.Second)},
	} {
		tx := newWriteTx(s)
		if err := tx.Put(t.Context(), tc.rec); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		w := tx.writes[tc.rec.Key]
		if w.rec.Expires != tc.want.UnixMilli() {
			t.Errorf("%s: expires %s, want %s", name, time.UnixMilli(w.rec.Expires).UTC(), tc.want)
		}
		ttl, _ := w.attrs[s.l.ttlFor(w.rec.Model)].(*types.AttributeValueMemberN)
		if ttl == nil || ttl.Value != fmt.Sprint(tc.want.Unix()) {
			t.Errorf("%s: TTL attribute %#v, want %d", name, ttl, tc.want.Unix())
		}
	}
}

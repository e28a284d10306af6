package stream

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

const testSite = "cloud-1"

// fixedNow is the clock of the converters under test.
var fixedNow = time.Date(2027, 6, 1, 12, 0, 0, 0, time.UTC) // after the captured records

func testConverter() *Converter {
	return &Converter{Site: testSite, Clock: &pipeline.Clock{Origin: testSite, Now: func() time.Time { return fixedNow }},
		Now: func() time.Time { return fixedNow }}
}

func ms(s string) int64 {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli()
		}
	}
	panic(s)
}

func mustVersion(s string) pipeline.Version {
	v, err := pipeline.ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// TestConvertCapturedRecords converts the stream records DynamoDB Local
// gave for captureWrites (testdata/records.json, see capture_test.go).
func TestConvertCapturedRecords(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "records.json"))
	require.NoError(t, err)
	recs, err := decodeAnswers(data)
	require.NoError(t, err)
	require.Len(t, recs, len(captureWrites()), "one record per captured write")

	type want struct {
		event   types.OperationType
		skip    Skip
		model   string
		op      pipeline.Op
		key     pipeline.Key
		version pipeline.Version // Wall -1: the clock's (checked apart)
		item    string           // exact JSON; "" for none
	}
	r1 := pipeline.Key{PK: "device#dev1", SK: "reading#R1"}
	foreignR1 := pipeline.Version{Wall: ms("2026-01-02T03:05:00.000Z"), Origin: testSite}
	wants := []want{
		{event: "INSERT", model: "Reading", op: pipeline.OpCreate, key: r1, version: mustVersion("0001767323045678.00000000.dev1"),
			item: `{"_type":"Reading","_version":"0001767323045678.00000000.dev1","big":12345678901234567890.123456789,"blob":"AAEC/w==","blobs":["AQ==","AgM="],"counts":[1,2.5],"created":"2026-01-02T03:04:05.678Z","deviceId":"dev1","id":"R1","meta":{"list":[1,"x",null],"none":null,"ok":true},"pk":"device#dev1","sk":"reading#R1","tags":["a","b\"q"],"temp":21.5,"tiny":-0.000000000000000000000000000001,"updated":"2026-01-02T03:04:05.678Z"}`},
		{event: "MODIFY", model: "Reading", op: pipeline.OpUpdate, key: r1, version: foreignR1,
			item: `{"_type":"Reading","_version":"` + foreignR1.String() + `","big":12345678901234567890.123456789,"blob":"AAEC/w==","blobs":["AQ==","AgM="],"counts":[1,2.5],"created":"2026-01-02T03:04:05.678Z","deviceId":"dev1","id":"R1","meta":{"list":[1,"x",null],"none":null,"ok":true},"pk":"device#dev1","sk":"reading#R1","tags":["a","b\"q"],"temp":22,"tiny":-0.000000000000000000000000000001,"updated":"2026-01-02T03:05:00.000Z"}`},
		{event: "MODIFY", model: "Reading", op: pipeline.OpUpdate, key: r1, version: mustVersion("0001767323160000.00000002.dev2"),
			item: `{"_type":"Reading","_version":"0001767323160000.00000002.dev2","deviceId":"dev1","id":"R1","pk":"device#dev1","sk":"reading#R1","temp":23,"updated":"2026-01-02T03:06:00.000Z"}`},
		{event: "INSERT", model: "Status", op: pipeline.OpCreate, key: pipeline.Key{PK: "status#S1", SK: "status#"},
			version: pipeline.Version{Wall: 1767323045999, Origin: testSite},
			item:    `{"_type":"Status","_version":"0001767323045999.00000000.cloud-1","created":1767323045999,"id":"S1","pk":"status#S1","sk":"status#","temp":5,"updated":1767323045999}`},
		{event: "INSERT", model: "Note", op: pipeline.OpCreate, key: pipeline.Key{PK: "note#N1", SK: "note#"}, version: pipeline.Version{Wall: -1}},
		{event: "MODIFY", model: "Reading", op: pipeline.OpRemove, key: r1, version: mustVersion("0001767323170000.00000000.dev2")},
		{event: "REMOVE", model: "Status", op: pipeline.OpRemove, key: pipeline.Key{PK: "status#S1", SK: "status#"}, version: pipeline.Version{Wall: -1}},
		{event: "INSERT", skip: SkipBookkeeping},
		{event: "INSERT", skip: SkipNoModel},
		{event: "INSERT", model: "Reading", op: pipeline.OpCreate, key: pipeline.Key{PK: "device#dev1", SK: "reading#R2"},
			version: mustVersion("0001767323180000.00000000.dev1"),
			item:    `{"_type":"Reading","_version":"0001767323180000.00000000.dev1","deviceId":"dev1","id":"R2","pk":"device#dev1","sk":"reading#R2"}`},
		{event: "INSERT", model: "Reading", op: pipeline.OpRemove, key: pipeline.Key{PK: "device#dev1", SK: "reading#R3"},
			version: mustVersion("0001767323190000.00000001.dev3")},
		{event: "REMOVE", skip: SkipInternal},
		{event: "INSERT", skip: SkipBookkeeping},
		{event: "INSERT", model: "Note", op: pipeline.OpCreate, key: pipeline.Key{PK: "note#N2", SK: "note#"},
			version: pipeline.Version{Wall: ms("2026-01-02"), Origin: testSite},
			item:    `{"_type":"Note","_version":"0001767312000000.00000000.cloud-1","pk":"note#N2","sk":"note#","updated":"2026-01-02"}`},
	}
	require.Len(t, wants, len(recs))
	conv := testConverter()
	var last pipeline.Version
	for i, w := range wants {
		r := recs[i]
		require.Equal(t, w.event, r.EventName, "record %d", i)
		ch, skip, err := conv.Convert(&r)
		require.NoError(t, err, "record %d", i)
		require.Equal(t, w.skip, skip, "record %d", i)
		if w.skip != "" {
			continue
		}
		assert.Equal(t, w.model, ch.Model, "record %d model", i)
		assert.Equal(t, w.op, ch.Op, "record %d op", i)
		assert.Equal(t, w.key, ch.Key, "record %d key", i)
		assert.Equal(t, ch.Version.Origin, ch.Origin, "record %d: the origin is the version's", i)
		if w.version.Wall == -1 {
			assert.Equal(t, testSite, ch.Version.Origin, "record %d: a write outside iotod comes from the cloud site", i)
			assert.Equal(t, fixedNow.UnixMilli(), ch.Version.Wall, "record %d: stamped by the clock", i)
			assert.Positive(t, ch.Version.Compare(last), "record %d: the clock's versions increase", i)
			last = ch.Version
		} else {
			assert.Equal(t, w.version, ch.Version, "record %d version", i)
		}
		require.NoError(t, ch.Version.Validate(), "record %d", i)
		if w.op == pipeline.OpRemove {
			assert.Nil(t, ch.Item, "record %d: a remove has no item", i)
			continue
		}
		if w.item != "" {
			assert.Equal(t, w.item, string(ch.Item), "record %d item", i)
		}
		require.True(t, json.Valid(ch.Item), "record %d: item is JSON", i)
		var item map[string]any
		require.NoError(t, json.Unmarshal(ch.Item, &item))
		assert.Equal(t, ch.Version.String(), item[VersionAttr], "record %d: the item's _version is the change's", i)
		assert.NotContains(t, item, addedAttr, "record %d", i)
	}
}

func S(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func N(s string) types.AttributeValue { return &types.AttributeValueMemberN{Value: s} }

func record(event types.OperationType, oldImg, newImg map[string]types.AttributeValue) *types.Record {
	keys := map[string]types.AttributeValue{}
	for _, img := range []map[string]types.AttributeValue{oldImg, newImg} {
		for _, k := range []string{"pk", "sk"} {
			if v, ok := img[k]; ok {
				keys[k] = v
			}
		}
	}
	return &types.Record{EventName: event, Dynamodb: &types.StreamRecord{Keys: keys, OldImage: oldImg, NewImage: newImg,
		SequenceNumber: aws.String("1")}}
}

func img(kv ...any) map[string]types.AttributeValue {
	m := map[string]types.AttributeValue{"pk": S("device#d1"), "sk": S("thing#1")}
	for i := 0; i < len(kv); i += 2 {
		switch v := kv[i+1].(type) {
		case string:
			m[kv[i].(string)] = S(v)
		case types.AttributeValue:
			m[kv[i].(string)] = v
		}
	}
	return m
}

// TestConvertCases covers what the captured records do not.
func TestConvertCases(t *testing.T) {
	kept := "0001767323160000.00000002.dev2"
	for _, tc := range []struct {
		name    string
		rec     *types.Record
		conv    func(*Converter)
		skip    Skip
		errPart string
		check   func(t *testing.T, ch pipeline.Change)
	}{
		{name: "deleted by TTL", skip: SkipExpired,
			rec: func() *types.Record {
				r := record("REMOVE", img("_type", "Thing", "_version", kept), nil)
				r.UserIdentity = &types.Identity{PrincipalId: aws.String("dynamodb.amazonaws.com"), Type: aws.String("Service")}
				return r
			}()},
		{name: "unchanged image", skip: SkipUnchanged,
			rec: record("MODIFY", img("_type", "Thing", "_version", kept), img("_type", "Thing", "_version", kept))},
		{name: "tombstone rewritten with the same version", skip: SkipUnchanged,
			rec: record("MODIFY", img("_type", "~tombstone", "model", "Thing", "_version", kept, "_expires", N("1")),
				img("_type", "~tombstone", "model", "Thing", "_version", kept, "_expires", N("2")))},
		{name: "tombstone without the model", skip: SkipInvalid, errPart: "removed model",
			rec: record("INSERT", nil, img("_type", "~tombstone", "_version", kept))},
		{name: "tombstone body kept in _value",
			rec: record("INSERT", nil, img("_type", "~tombstone", "_value", `{"model":"Thing","owner":"d1"}`, "_version", kept)),
			check: func(t *testing.T, ch pipeline.Change) {
				assert.Equal(t, "Thing", ch.Model)
				assert.Equal(t, pipeline.OpRemove, ch.Op)
				assert.Equal(t, "dev2", ch.Origin)
			}},
		{name: "no keys", skip: SkipInvalid, errPart: `"pk" and "sk"`,
			rec: &types.Record{EventName: "INSERT", Dynamodb: &types.StreamRecord{NewImage: map[string]types.AttributeValue{"x": S("1")}}}},
		{name: "keys only stream", skip: SkipInvalid, errPart: "NEW_AND_OLD_IMAGES",
			rec: &types.Record{EventName: "MODIFY", Dynamodb: &types.StreamRecord{Keys: img()}}},
		{name: "unknown event", skip: SkipInvalid, errPart: "unknown stream event",
			rec: record("TRUNCATE", nil, img("_type", "Thing"))},
		{name: "unreadable _version is a write outside iotod",
			rec: record("INSERT", nil, img("_type", "Thing", "_version", "garbage", "updated", "2026-01-02T00:00:00Z")),
			check: func(t *testing.T, ch pipeline.Change) {
				assert.Equal(t, pipeline.Version{Wall: ms("2026-01-02T00:00:00Z"), Origin: testSite}, ch.Version)
				assert.Contains(t, string(ch.Item), `"_version":"`+ch.Version.String()+`"`)
			}},
		{name: "version with a bad origin is a write outside iotod",
			rec:   record("INSERT", nil, img("_type", "Thing", "_version", "0001767323160000.00000002.bad origin")),
			check: func(t *testing.T, ch pipeline.Change) { assert.Equal(t, testSite, ch.Origin) }},
		{name: "update outside iotod with an updated older than the kept version gets the clock's",
			rec: record("MODIFY", img("_type", "Thing", "_version", kept, "n", N("1")),
				img("_type", "Thing", "_version", kept, "n", N("2"), "updated", "2020-01-01T00:00:00Z")),
			check: func(t *testing.T, ch pipeline.Change) {
				assert.Equal(t, testSite, ch.Origin)
				assert.Positive(t, ch.Version.Compare(mustVersion(kept)), "beats the version it replaces")
				assert.Equal(t, pipeline.OpUpdate, ch.Op)
			}},
		{name: "update outside iotod beats a version ahead of the clock",
			rec: record("MODIFY", img("_type", "Thing", "_version", "0009999999999999.00000007.dev9", "n", N("1")),
				img("_type", "Thing", "_version", "0009999999999999.00000007.dev9", "n", N("2"))),
			check: func(t *testing.T, ch pipeline.Change) {
				assert.Equal(t, pipeline.Version{Wall: 9999999999999, Counter: 8, Origin: testSite}, ch.Version)
			}},
		{name: "delete outside iotod beats the deleted version",
			rec: record("REMOVE", img("_type", "Thing", "_version", "0009999999999999.00000007.dev9"), nil),
			check: func(t *testing.T, ch pipeline.Change) {
				assert.Equal(t, pipeline.OpRemove, ch.Op)
				assert.Equal(t, "Thing", ch.Model)
				assert.Positive(t, ch.Version.Compare(mustVersion("0009999999999999.00000007.dev9")))
				assert.Equal(t, testSite, ch.Origin)
			}},
		{name: "item back over a tombstone is a create",
			rec: record("MODIFY", img("_type", "~tombstone", "model", "Thing", "_version", kept),
				img("_type", "Thing", "_version", "0001767323160001.00000000.dev1")),
			check: func(t *testing.T, ch pipeline.Change) {
				assert.Equal(t, pipeline.OpCreate, ch.Op)
				assert.Equal(t, "dev1", ch.Origin)
			}},
		{name: "internal model", skip: SkipInternal, rec: record("INSERT", nil, img("_type", "~meta"))},
		{name: "custom type field and keys", conv: func(c *Converter) { c.TypeField, c.HashKey, c.SortKey = "kind", "h", "s" },
			rec: record("INSERT", nil, map[string]types.AttributeValue{"h": S("a#1"), "s": S("b#"), "kind": S("K"), "_type": S("Other")}),
			check: func(t *testing.T, ch pipeline.Change) {
				assert.Equal(t, "K", ch.Model)
				assert.Equal(t, pipeline.Key{PK: "a#1", SK: "b#"}, ch.Key)
			}},
		{name: "custom updated field", conv: func(c *Converter) { c.UpdatedField = "modifiedAt" },
			rec: record("INSERT", nil, img("_type", "Thing", "modifiedAt", N("1767323045"), "updated", N("5"))),
			check: func(t *testing.T, ch pipeline.Change) {
				assert.Equal(t, int64(1767323045000), ch.Version.Wall, "epoch seconds read as seconds")
			}},
		{name: "number forms JSON does not have",
			rec: record("INSERT", nil, img("_type", "Thing", "a", N("+1"), "b", N(".5"), "c", N("1E+2"))),
			check: func(t *testing.T, ch pipeline.Change) {
				assert.Contains(t, string(ch.Item), `"a":1,"b":0.5,"c":1E+2`)
			}},
		{name: "not a number", skip: SkipInvalid, errPart: `attribute "a"`,
			rec: record("INSERT", nil, img("_type", "Thing", "a", N("one")))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConverter()
			if tc.conv != nil {
				tc.conv(c)
			}
			ch, skip, err := c.Convert(tc.rec)
			require.Equal(t, tc.skip, skip)
			if tc.errPart != "" {
				require.ErrorContains(t, err, tc.errPart)
				return
			}
			require.NoError(t, err)
			if tc.check != nil {
				tc.check(t, ch)
			}
		})
	}
}

func TestUpdatedTime(t *testing.T) {
	for _, tc := range []struct {
		av   types.AttributeValue
		want int64
		ok   bool
	}{
		{S("2026-01-02T03:04:05.678Z"), ms("2026-01-02T03:04:05.678Z"), true},
		{S("2026-01-02T04:04:05.678+01:00"), ms("2026-01-02T03:04:05.678Z"), true},
		{S("2026-01-02"), ms("2026-01-02"), true},
		{N("1767323045678"), 1767323045678, true},
		{N("1767323045.5"), 1767323045500, true},
		{S("yesterday"), 0, false},
		{N("1e300"), 0, false},
		{&types.AttributeValueMemberBOOL{Value: true}, 0, false},
		{nil, 0, false},
	} {
		got, ok := UpdatedTime(tc.av)
		assert.Equal(t, tc.ok, ok, "%#v", tc.av)
		if ok {
			assert.Equal(t, tc.want, got.UnixMilli(), "%#v", tc.av)
		}
	}
}

func TestItemJSONKeepsNumbersExact(t *testing.T) {
	out, err := ItemJSON(map[string]types.AttributeValue{"n": N("0.1000000000000000000000000000000000001"),
		"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{N("99999999999999999999999999999999999999")}}})
	require.NoError(t, err)
	assert.Equal(t, `{"l":[99999999999999999999999999999999999999],"n":0.1000000000000000000000000000000000001}`, string(out))
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var v map[string]any
	require.NoError(t, dec.Decode(&v))
	assert.Equal(t, json.Number("0.1000000000000000000000000000000000001"), v["n"])
}

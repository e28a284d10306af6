package pipeline

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func goodBatch() Batch {
	return Batch{V: 1, ID: "01JABCDEFGHJKMNPQRSTVWXYZ0", Site: "dev1", Changes: []Change{{Model: "Reading", Op: OpUpsert,
		Key: Key{PK: "reading#dev1", SK: "reading#1"}, Item: json.RawMessage(`{"deviceId":"dev1"}`),
		Version: Version{Wall: 1700000000000, Origin: "dev1"}, Origin: "dev1"}}}
}

func TestBatchAndChangeValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(b *Batch)
		error string
	}{
		{"good", func(*Batch) {}, ""},
		{"unknown protocol version", func(b *Batch) { b.V = 2 }, "unknown protocol version 2"},
		{"no id", func(b *Batch) { b.ID = "" }, "batch id: empty"},
		{"id not UTF-8", func(b *Batch) { b.ID = "a\xffb" }, `batch id: "a\xffb" holds`},
		{"id with a topic separator", func(b *Batch) { b.ID = "a/b" }, `holds "/"`},
		{"id with a wildcard", func(b *Batch) { b.ID = "a+" }, `holds "+"`},
		{"id with NUL", func(b *Batch) { b.ID = "a\x00" }, `holds "\x00"`},
		{"id of 10 KB", func(b *Batch) { b.ID = strings.Repeat("x", 10240) }, "over 64"},
		{"unknown kind", func(b *Batch) { b.Kind = "evil" }, `unknown kind "evil"`},
		{"bad request id", func(b *Batch) { b.Request = "a b" }, "request:"},
		{"bad cursor", func(b *Batch) { b.Before = "x" }, "before:"},
		{"unknown op", func(b *Batch) { b.Changes[0].Op = "drop" }, `unknown op "drop"`},
		{"no model", func(b *Batch) { b.Changes[0].Model = "" }, "model is required"},
		{"model of 100 KB", func(b *Batch) { b.Changes[0].Model = strings.Repeat("M", 100_000) }, "over 128"},
		{"model with a control character", func(b *Batch) { b.Changes[0].Model = "Rea\nding" }, "control character"},
		{"no pk", func(b *Batch) { b.Changes[0].Key.PK = "" }, "key.pk is required"},
		{"pk not UTF-8", func(b *Batch) { b.Changes[0].Key.PK = "\xff" }, "not valid UTF-8"},
		{"sk over DynamoDB's limit", func(b *Batch) { b.Changes[0].Key.SK = strings.Repeat("s", 1025) }, "over 1024"},
		{"upsert without item", func(b *Batch) { b.Changes[0].Item = nil }, "upsert without item"},
		{"origin no site id", func(b *Batch) { b.Changes[0].Origin = "../x" }, "origin:"},
		{"zero version", func(b *Batch) { b.Changes[0].Version = Version{} }, "must be after 1970"},
		{"negative wall", func(b *Batch) { b.Changes[0].Version.Wall = -5 }, "must be after 1970"},
		{"version of another origin", func(b *Batch) { b.Changes[0].Version.Origin = "dev2" }, `version origin "dev2" is not the change's origin "dev1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := goodBatch()
			tc.edit(&b)
			err := b.Validate()
			if err == nil {
				err = b.Changes[0].Validate()
			}
			if tc.error == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.error)
			assert.True(t, IsPermanent(err))
			assert.Less(t, len(err.Error()), 400, "an error repeats only a prefix of the input")
		})
	}
}

func TestDecodeBatchChecksSizeAndDepthBeforeParsing(t *testing.T) {
	good, err := json.Marshal(goodBatch())
	require.NoError(t, err)
	b, err := DecodeBatch(good, len(good))
	require.NoError(t, err)
	assert.Equal(t, "dev1", b.Changes[0].Origin)

	b, err = DecodeBatch(good, len(good)-1)
	require.ErrorIs(t, err, ErrTooLarge)
	require.NotNil(t, b, "the header of an oversized batch is read, so it can be acked")
	assert.Equal(t, goodBatch().ID, b.ID)
	assert.Empty(t, b.Changes, "an oversized batch's changes are not decoded")

	deep := []byte(`{"v":1,"id":"x","changes":[{"item":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}]}`)
	_, err = DecodeBatch(deep, 0)
	require.ErrorContains(t, err, "nested deeper than 40")

	_, err = DecodeBatch([]byte(`{"v":1,"id":"01`), 0)
	require.ErrorIs(t, err, ErrInvalid)
}

func TestCheckJSONDepthIgnoresBracketsInStrings(t *testing.T) {
	require.NoError(t, CheckJSONDepth([]byte(`{"a":"[[[[[[\"[[[["}`), 2))
	require.Error(t, CheckJSONDepth([]byte(`{"a":[[{}]]}`), 3))
	require.NoError(t, CheckJSONDepth([]byte(`{"a":[[{}]]}`), 4))
}

func TestDecodeAckAndSyncRequest(t *testing.T) {
	a, err := DecodeAck([]byte(`{"v":1,"batch":"b1","applied":2,"rejected":[{"reason":"`+strings.Repeat("r", 5000)+`"}]}`), 0)
	require.NoError(t, err)
	assert.LessOrEqual(t, len(a.Rejected[0].Reason), MaxReasonLen)
	for _, bad := range []string{`{"v":1,"batch":"a/b"}`, `{"v":2,"batch":"b"}`, `{"v":1,"batch":"b","applied":-1}`, `[`} {
		_, err := DecodeAck([]byte(bad), 0)
		assert.Error(t, err, bad)
	}
	r, err := DecodeSyncRequest([]byte(`{"v":1,"id":"r1","cursor":"0000001700000000000.00000000.cloud","full":true}`))
	require.NoError(t, err)
	assert.True(t, r.Full)
	for _, bad := range []string{`{"v":1,"id":""}`, `{"v":1,"id":"r#"}`, `{"v":1,"id":"r","cursor":"x"}`, `{"v":1,"id":"r","pad":"` + strings.Repeat("x", 2000) + `"}`} {
		_, err := DecodeSyncRequest([]byte(bad))
		assert.Error(t, err, bad)
	}
}

func TestTruncateAndQuote(t *testing.T) {
	assert.Equal(t, "abc", Truncate("abc", 5))
	s := Truncate(strings.Repeat("é", 100), 11)
	assert.True(t, utf8.ValidString(s))
	assert.LessOrEqual(t, len(s), 11)
	assert.True(t, utf8.ValidString(Truncate("a\xffb", 10)))
	q := Quote(strings.Repeat("x", 1000))
	assert.Less(t, len(q), 60)
	assert.Contains(t, q, "(1000 bytes)")
	assert.Equal(t, `"a\xff"`, Quote("a\xff"))
	assert.Equal(t, "", Reason(nil))
	assert.Len(t, Reason(errors.New(strings.Repeat("e", 1000))), MaxReasonLen)
}

func TestVersionChecks(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	ok := Version{Wall: now.UnixMilli(), Origin: "dev1"}
	require.NoError(t, ok.Validate())
	require.NoError(t, ok.CheckSkew(now, time.Minute))
	require.NoError(t, Version{Wall: now.Add(time.Minute).UnixMilli(), Origin: "dev1"}.CheckSkew(now, time.Minute))
	require.ErrorContains(t, Version{Wall: now.Add(time.Minute + time.Millisecond).UnixMilli(), Origin: "dev1"}.CheckSkew(now, time.Minute), "ahead of this site's clock")
	require.ErrorContains(t, Version{Wall: math.MaxInt64, Counter: math.MaxUint32, Origin: "dev1"}.CheckSkew(now, time.Minute), "more than 100 years ahead")
	require.ErrorContains(t, Version{Wall: now.Add(time.Hour).UnixMilli(), Origin: "dev1"}.CheckSkew(now, time.Minute), "1h0m0s ahead")
	require.Error(t, Version{}.Validate())
	require.Error(t, Version{Wall: 5, Origin: ""}.Validate())
	require.Error(t, Version{Wall: 5, Origin: "a/b"}.Validate())
}

// The clock never wraps its counter: an exhausted counter moves the wall
// part on, so every version is greater than the one before.
func TestClockNeverWraps(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	c := &Clock{Origin: "cloud", Now: func() time.Time { return now }}
	c.Observe(Version{Wall: now.UnixMilli(), Counter: math.MaxUint32 - 1, Origin: "dev1"})
	prev := c.Next()
	assert.Equal(t, uint32(math.MaxUint32), prev.Counter)
	for i := 0; i < 3; i++ {
		v := c.Next()
		require.Equal(t, 1, v.Compare(prev), "%v after %v", v, prev)
		prev = v
	}
	assert.Equal(t, now.UnixMilli()+1, prev.Wall)
}

package pipeline

import (
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// FuzzDecodeBatch feeds the envelope decoders arbitrary payloads: they
// never panic, an accepted batch holds only ids, sites, models and keys
// within the envelope's bounds, and every error reads as bounded, valid
// UTF-8 (errors end up in acks and logs).
func FuzzDecodeBatch(f *testing.F) {
	good, _ := json.Marshal(goodBatch())
	f.Add(good)
	f.Add([]byte(`{"v":1,"id":"b\xff","changes":[]}`))
	f.Add([]byte(`{"v":1,"id":"b","kind":"synced","catchup":true,"count":3,"after":"0000001700000000000.00000000.cloud"}`))
	f.Add([]byte(`{"v":1,"id":"b","changes":[{"model":"M","op":"remove","key":{"pk":"p"},"version":{"wall":9223372036854775807,"counter":4294967295,"origin":"d"},"origin":"d"}]}`))
	if seeds, err := filepath.Glob("testdata/batches/*.json"); err == nil {
		for _, s := range seeds {
			if b, err := os.ReadFile(s); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		b, err := DecodeBatch(payload, 64*1024)
		if err != nil {
			msg := err.Error()
			if !utf8.ValidString(Reason(err)) || len(Reason(err)) > MaxReasonLen {
				t.Fatalf("reason not bounded UTF-8: %q", Reason(err))
			}
			if !IsPermanent(err) {
				t.Fatalf("a decode error must be permanent: %s", msg)
			}
			return
		}
		if ValidID(b.ID) != nil {
			t.Fatalf("accepted id %q", b.ID)
		}
		for _, c := range b.Changes {
			err := c.Validate()
			if err == nil && (ValidText(c.Model, MaxModelLen) != nil || ValidText(c.Key.PK, MaxPKLen) != nil || ValidText(c.Key.SK, MaxSKLen) != nil ||
				ValidSite(c.Origin) != nil || c.Version.Origin != c.Origin || c.Version.Wall <= 0 || !c.Op.Valid()) {
				t.Fatalf("accepted change %+v", c)
			}
			if r := Reason(err); !utf8.ValidString(r) || len(r) > MaxReasonLen {
				t.Fatalf("reason not bounded UTF-8: %q", r)
			}
		}
		if _, err := DecodeAck(payload, 0); err == nil {
			return // some payloads read as both: fine
		}
		_, _ = DecodeSyncRequest(payload)
	})
}

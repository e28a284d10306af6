package httpbus

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
)

// FuzzDecodeMetadata: the hub reads X-Iotod-Metadata from anyone with a
// token. Whatever it accepts is within the bounds and survives the trip
// back through the client's encoder.
func FuzzDecodeMetadata(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"a":"b"}`, `{"a":1}`, `null`, `[]`, `{"":"x"}`, `{"a":"\u0000\n"}`, `{"a":"b","a":"c"}`, `{"a":`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		md, err := decodeMetadata(h)
		if err != nil {
			return
		}
		if md == nil || len(md) > maxMetadataKeys || len(h) > maxMetadata {
			t.Fatalf("accepted %q as %v", h, md)
		}
		back, err := encodeMetadata(md)
		if err != nil {
			t.Fatalf("accepted %q, but cannot encode it again: %v", h, err)
		}
		again, err := decodeMetadata(back)
		if err != nil || !maps.Equal(again, md) {
			t.Fatalf("round trip of %q: %v, %v", h, again, err)
		}
	})
}

// FuzzDecodeFrame: a client reads frames from the hub (or from whatever
// answers at the hub's address). A frame it accepts is a ready frame or
// a message with a UUID it could publish again, and encodes back to the
// same frame.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`{"ready":true,"sub":"S"}`,
		`{"n":1,"uuid":"u","metadata":{"k":"v"},"payload":"cGF5bG9hZA=="}`,
		`{"n":0}`, `{"ready":true}`, `{"ready":true,"sub":"s","n":3}`, `{"n":1,"uuid":""}`,
		`{"n":1,"uuid":"u","payload":"!!"}`, `{"n":-1,"uuid":"u"}`, `{"n":1,"uuid":"u","metadata":{"":"x"}}`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		fr, err := decodeFrame(line)
		if err != nil {
			return
		}
		switch {
		case fr.Ready && (fr.Sub == "" || fr.N != 0):
			t.Fatalf("accepted a bad ready frame %q", line)
		case !fr.Ready && (fr.N == 0 || !validUUID(fr.UUID)):
			t.Fatalf("accepted a bad message frame %q", line)
		case len(fr.Metadata) > maxMetadataKeys:
			t.Fatalf("accepted %d metadata keys", len(fr.Metadata))
		}
		if !fr.Ready {
			m := fr.toMessage()
			if m.UUID != fr.UUID || string(m.Payload) != string(fr.Payload) || !maps.Equal(m.Metadata, message.Metadata(fr.Metadata)) {
				t.Fatalf("message of %q: %+v", line, m)
			}
		}
		b, err := json.Marshal(fr)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeFrame(b)
		if err != nil || again.Ready != fr.Ready || again.N != fr.N || again.UUID != fr.UUID || string(again.Payload) != string(fr.Payload) {
			t.Fatalf("round trip of %q: %+v, %v", line, again, err)
		}
	})
}

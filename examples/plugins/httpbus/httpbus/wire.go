package httpbus

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
)

// The wire format shared by hub and client.
const (
	headerUUID     = "X-Iotod-Uuid"
	headerMetadata = "X-Iotod-Metadata"

	// maxMetadata bounds the X-Iotod-Metadata header (and a frame's
	// metadata): its bytes and its keys.
	maxMetadata     = 16 << 10
	maxMetadataKeys = 64
	maxUUID         = 128
)

// frame is one line of a subscription stream: the first says the
// subscription is live (Ready, Sub), each next one carries message N.
type frame struct {
	Ready    bool              `json:"ready,omitempty"`
	Sub      string            `json:"sub,omitempty"`
	N        uint64            `json:"n,omitempty"`
	UUID     string            `json:"uuid,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Payload  []byte            `json:"payload,omitempty"` // base64 in JSON
}

// ackBody is the body of POST /v1/ack.
type ackBody struct {
	N   uint64 `json:"n"`
	Ack bool   `json:"ack"`
}

// maxFrame is the longest stream line a client reads for payloads of up
// to maxPayload bytes: the payload in base64, the metadata, the rest.
func maxFrame(maxPayload int) int { return (maxPayload+2)/3*4 + 2*maxMetadata + 1024 }

// encodeMetadata is the X-Iotod-Metadata header of md.
func encodeMetadata(md message.Metadata) (string, error) {
	if len(md) == 0 {
		return "", nil
	}
	b, err := json.Marshal(md)
	if err != nil {
		return "", err
	}
	if len(b) > maxMetadata || len(md) > maxMetadataKeys {
		return "", fmt.Errorf("metadata: %d bytes, %d keys: over %d bytes or %d keys", len(b), len(md), maxMetadata, maxMetadataKeys)
	}
	return string(b), nil
}

// decodeMetadata reads an X-Iotod-Metadata header: empty, or a JSON
// object of strings within the bounds.
func decodeMetadata(h string) (message.Metadata, error) {
	md := message.Metadata{}
	if h == "" {
		return md, nil
	}
	if len(h) > maxMetadata {
		return nil, fmt.Errorf("%s: %d bytes, over %d", headerMetadata, len(h), maxMetadata)
	}
	if err := json.Unmarshal([]byte(h), &md); err != nil {
		return nil, fmt.Errorf("%s: want a JSON object of strings: %w", headerMetadata, err)
	}
	if md == nil { // the header was "null"
		return nil, fmt.Errorf("%s: want a JSON object of strings, got null", headerMetadata)
	}
	return md, checkMetadata(md, maxMetadataKeys)
}

func checkMetadata(md map[string]string, maxKeys int) error {
	if len(md) > maxKeys {
		return fmt.Errorf("metadata: %d keys, over %d", len(md), maxKeys)
	}
	for k := range md {
		if k == "" {
			return errors.New("metadata: empty key")
		}
	}
	return nil
}

// decodeFrame reads one stream line. A frame is either ready (with a
// subscription id) or message N >= 1, never both.
func decodeFrame(line []byte) (frame, error) {
	var f frame
	if err := json.Unmarshal(line, &f); err != nil {
		return frame{}, fmt.Errorf("stream frame: %w", err)
	}
	switch {
	case f.Ready && (f.Sub == "" || f.N != 0):
		return frame{}, errors.New("stream frame: a ready frame needs a sub and no n")
	case !f.Ready && f.N == 0:
		return frame{}, errors.New("stream frame: neither ready nor a message (n >= 1)")
	case !f.Ready && !validUUID(f.UUID):
		return frame{}, fmt.Errorf("stream frame: uuid %q: want 1 to %d printable ASCII characters", f.UUID, maxUUID)
	}
	// The bus adds pipeline.MetaSite to what was published.
	if err := checkMetadata(f.Metadata, maxMetadataKeys+1); err != nil {
		return frame{}, fmt.Errorf("stream frame: %w", err)
	}
	return f, nil
}

// validUUID reports whether id can be a message's UUID on the wire (an
// HTTP header value): 1 to maxUUID printable ASCII characters, no space.
func validUUID(id string) bool {
	if id == "" || len(id) > maxUUID {
		return false
	}
	for i := range len(id) {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// toMessage is the watermill message of frame f.
func (f frame) toMessage() *message.Message {
	m := message.NewMessage(f.UUID, f.Payload)
	for k, v := range f.Metadata {
		m.Metadata.Set(k, v)
	}
	return m
}

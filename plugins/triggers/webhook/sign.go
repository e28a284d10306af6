package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// The headers of a signed request.
const (
	// headerTimestamp is the Unix time in seconds at which the request was
	// signed (each attempt is signed anew).
	headerTimestamp = "X-Iotod-Timestamp"
	// headerSignature is "sha256=" and the lower-case hex HMAC-SHA256,
	// keyed with the secret, of the timestamp, a dot, and the body bytes.
	headerSignature = "X-Iotod-Signature"
)

// sign sets the timestamp and signature headers of a request with body,
// signed at now.
func sign(h http.Header, secret, body []byte, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	h.Set(headerTimestamp, ts)
	h.Set(headerSignature, "sha256="+hex.EncodeToString(mac.Sum(nil)))
}

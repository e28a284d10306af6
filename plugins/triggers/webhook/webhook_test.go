package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

func TestPostsTheBatch(t *testing.T) {
	srv, rec := serve(t, status(http.StatusNoContent, ""))
	tr := newTrigger(t, pipeline.Settings{}, `
url: `+srv.URL+`/hooks/iotod?token=abc
headers: {Authorization: Bearer xyz, X-Extra: "1"}
models: [Reading]`)
	require.NoError(t, tr.Fire(t.Context(), "ingest", changes()))

	got := rec.requests()
	require.Len(t, got, 1)
	require.Equal(t, http.MethodPost, got[0].Method)
	require.JSONEq(t, `{"pipeline":"ingest","changes":[
		{"model":"Reading","op":"create","key":{"pk":"r#1","sk":"t#1"},"item":{"value":1},
		 "version":{"wall":100,"counter":1,"origin":"pump-7"},"origin":"pump-7","time":100},
		{"model":"Reading","op":"update","key":{"pk":"r#1","sk":"t#1"},"item":{"value":2},
		 "version":{"wall":102,"counter":0,"origin":"cloud"},"origin":"cloud","time":102}]}`, string(got[0].Body))
	h := got[0].Header
	require.Equal(t, "application/json", h.Get("Content-Type"))
	require.Equal(t, "Bearer xyz", h.Get("Authorization"))
	require.Equal(t, "1", h.Get("X-Extra"))
	require.Equal(t, "iotod-webhook", h.Get("User-Agent"))
	require.Empty(t, h.Get("X-Iotod-Signature"), "no secret, no signature")
}

func TestPerChange(t *testing.T) {
	srv, rec := serve(t, status(http.StatusOK, "ok"))
	tr := newTrigger(t, pipeline.Settings{}, "{url: "+srv.URL+", per_change: true, origin: remote}")
	require.NoError(t, tr.Fire(t.Context(), "ingest", changes()))
	got := rec.requests()
	require.Len(t, got, 2, "one request per remote change")
	require.JSONEq(t, `{"pipeline":"ingest","change":{"model":"User","op":"remove","key":{"pk":"u#1","sk":"u#1"},
		"version":{"wall":101,"counter":0,"origin":"cloud"},"origin":"cloud","time":101}}`, string(got[0].Body))
	require.Contains(t, string(got[1].Body), `"op":"update"`)
}

func TestNothingSelectedSendsNothing(t *testing.T) {
	srv, rec := serve(t, status(http.StatusOK, ""))
	tr := newTrigger(t, pipeline.Settings{}, "{url: "+srv.URL+", ops: [upsert]}")
	require.NoError(t, tr.Fire(t.Context(), "ingest", changes()))
	require.Empty(t, rec.requests())
}

// verify checks a signature the way a receiver would, with its own code.
func verify(t *testing.T, secret string, r request) {
	t.Helper()
	ts := r.Header.Get("X-Iotod-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	require.NoError(t, err, "timestamp %q", ts)
	require.InDelta(t, time.Now().Unix(), sec, 5, "a current timestamp")
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(r.Body)))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	require.True(t, hmac.Equal([]byte(want), []byte(r.Header.Get("X-Iotod-Signature"))),
		"signature %s, want %s", r.Header.Get("X-Iotod-Signature"), want)
}

func TestSignature(t *testing.T) {
	srv, rec := serve(t, status(http.StatusOK, ""))
	tr := newTrigger(t, pipeline.Settings{}, "{url: "+srv.URL+", secret: s3cret}")
	require.NoError(t, tr.Fire(t.Context(), "ingest", changes()))
	got := rec.requests()
	require.Len(t, got, 1)
	verify(t, "s3cret", got[0])

	// A signature over other bytes, or with another key, does not verify.
	tampered := got[0]
	tampered.Body = []byte(strings.Replace(string(tampered.Body), `"value":1`, `"value":9`, 1))
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write([]byte(tampered.Header.Get("X-Iotod-Timestamp") + "." + string(tampered.Body)))
	require.NotEqual(t, "sha256="+hex.EncodeToString(mac.Sum(nil)), tampered.Header.Get("X-Iotod-Signature"))
}

func TestSecretFromEnv(t *testing.T) {
	srv, rec := serve(t, status(http.StatusOK, ""))
	t.Setenv("IOTOD_TEST_HOOK_SECRET", "from-env")
	tr := newTrigger(t, pipeline.Settings{}, "{url: "+srv.URL+", secret_env: IOTOD_TEST_HOOK_SECRET}")
	require.NoError(t, tr.Fire(t.Context(), "ingest", changes()))
	verify(t, "from-env", rec.requests()[0])

	_, err := createFrom(t, pipeline.Settings{}, "{url: "+srv.URL+", secret_env: IOTOD_TEST_UNSET_SECRET}")
	require.ErrorIs(t, err, pipeline.ErrInvalid)
	require.ErrorContains(t, err, "secret_env: the environment variable IOTOD_TEST_UNSET_SECRET is not set")
}

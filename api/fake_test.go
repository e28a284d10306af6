package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/pipeline"
)

// failingDB fails every call with err; it checks the handlers' error
// mapping for faults the real db cannot be made to produce on demand.
type failingDB struct{ err error }

func (f failingDB) Create(context.Context, string, db.Item, *db.Params) (db.Item, error) {
	return nil, f.err
}
func (f failingDB) Get(context.Context, string, db.Item, *db.Params) (db.Item, error) {
	return nil, f.err
}
func (f failingDB) Find(context.Context, string, db.Item, *db.Params) (*db.Result, error) {
	return nil, f.err
}
func (f failingDB) Update(context.Context, string, db.Item, *db.Params) (db.Item, error) {
	return nil, f.err
}
func (f failingDB) Upsert(context.Context, string, db.Item, *db.Params) (db.Item, error) {
	return nil, f.err
}
func (f failingDB) Remove(context.Context, string, db.Item, *db.Params) (int, error) {
	return 0, f.err
}
func (f failingDB) Batch(context.Context, []db.WriteOp) ([]db.BatchResult, error) { return nil, f.err }
func (f failingDB) Transact(context.Context, []db.WriteOp) ([]db.Item, error)     { return nil, f.err }

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
		logged bool
	}{
		{err: fmt.Errorf("x: %w", pipeline.ErrInvalid), status: 400, code: CodeInvalid},
		{err: fmt.Errorf("x: %w", pipeline.ErrNotFound), status: 404, code: CodeNotFound},
		{err: fmt.Errorf("x: %w", pipeline.ErrExists), status: 409, code: CodeExists},
		{err: fmt.Errorf("x: %w", pipeline.ErrConditionFailed), status: 409, code: CodeConditionFailed},
		{err: fmt.Errorf("x: %w", pipeline.ErrTooLarge), status: 413, code: CodeTooLarge},
		{err: fmt.Errorf("db: %w", pipeline.ErrClosed), status: 503, code: CodeUnavailable},
		{err: errors.New("disk on fire"), status: 500, code: CodeInternal, logged: true},
	}
	for _, tt := range tests {
		var logs bytes.Buffer
		srv, err := NewServer(Options{DB: failingDB{tt.err}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		require.NoError(t, err)
		for _, path := range []string{"/v1/models/M/get", "/v1/models/M/remove", "/v1/transact"} {
			req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1"+path, strings.NewReader(`{"ops":[{"op":"create","model":"M"}]}`))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, req)
			assert.Equal(t, tt.status, rec.Code, "%v %s", tt.err, path)
			var eb errorBody
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &eb))
			assert.Equal(t, errorBody{Error: tt.err.Error(), Code: tt.code}, eb)
		}
		assert.Equal(t, tt.logged, strings.Contains(logs.String(), "disk on fire"), "only server faults are logged")

		ce := &Error{Status: tt.status, Code: tt.code}
		if tt.code != CodeInternal {
			assert.ErrorIs(t, ce, errors.Unwrap(tt.err), "the client maps the code back to the sentinel")
		}
	}
}

func TestNewServerNeedsDB(t *testing.T) {
	_, err := NewServer(Options{})
	require.Error(t, err)
}

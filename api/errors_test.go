package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
)

func TestErrorResponses(t *testing.T) {
	url, c := startHTTP(t)
	_, err := c.Create(context.Background(), "Status", db.Item{"id": "01J00000000000000000000001"}, nil)
	require.NoError(t, err)

	big := `{"id":"01J00000000000000000000002","state":"on","x":"` + strings.Repeat("a", 1<<20) + `"}`
	large := `{"message":"` + strings.Repeat("a", 500<<10) + `"}`
	tests := []struct {
		name, method, path, ctype, host, body string
		status                                int
		code, msg                             string
	}{
		{name: "malformed JSON", path: "/v1/models/Status/create", body: `{bad`,
			status: 400, code: "invalid", msg: "invalid: the item is not valid JSON: unexpected 'b' at line 1, column 2"},
		{name: "malformed JSON, line 3", path: "/v1/models/Status/create", body: "{\n  \"temp\": 1,\n  \"é\": x}",
			status: 400, code: "invalid", msg: "the item is not valid JSON: unexpected 'x' at line 3, column 8"},
		{name: "cut short", path: "/v1/models/Status/create", body: `{"temp":`,
			status: 400, code: "invalid", msg: "the item is not valid JSON: it ends at line 1, column 9 before the value is complete"},
		{name: "trailing data", path: "/v1/models/Status/create", body: `{"temp":1} {}`,
			status: 400, code: "invalid", msg: "the item is not valid JSON: data after the JSON value at line 1, column 12"},
		{name: "not an object", path: "/v1/models/Status/create", body: `[1,2]`,
			status: 400, code: "invalid", msg: "the item must be a JSON object, not a list"},
		{name: "null body", path: "/v1/models/Status/find", body: `null`,
			status: 200},
		{name: "unknown query parameter", path: "/v1/models/Status/find?limt=1&foo", body: `{}`,
			status: 400, code: "invalid", msg: `unknown query parameter "foo"`},
		{name: "bad limit", path: "/v1/models/Status/find?limit=ten", body: `{}`,
			status: 400, code: "invalid", msg: `limit: want a non-negative integer, got "ten"`},
		{name: "repeated parameter", path: "/v1/models/Status/find?limit=1&limit=2", body: `{}`,
			status: 400, code: "invalid", msg: "limit is given 2 times"},
		{name: "bad boolean", path: "/v1/models/Status/find?reverse=yes", body: `{}`,
			status: 400, code: "invalid", msg: "reverse: want true or false"},
		{name: "malformed query", path: "/v1/models/Status/find?where=%zz", body: `{}`,
			status: 400, code: "invalid", msg: "malformed query string"},
		{name: "validation", path: "/v1/models/Status/create", body: `{"state":"boiling"}`,
			status: 400, code: "invalid", msg: "state"},
		{name: "wrong type", path: "/v1/models/Status/create", body: `{"temp":"hot"}`,
			status: 400, code: "invalid", msg: "temp"},
		{name: "unknown model", path: "/v1/models/Nope/get", body: `{"id":"x"}`,
			status: 404, code: "not_found", msg: `unknown model "Nope"`},
		{name: "missing item", path: "/v1/models/Status/get", body: `{"id":"01J0000000000000000000000Z"}`,
			status: 404, code: "not_found"},
		{name: "exists", path: "/v1/models/Status/create", body: `{"id":"01J00000000000000000000001"}`,
			status: 409, code: "exists"},
		{name: "condition failed", path: "/v1/models/Status/update", body: `{"id":"01J0000000000000000000000Z","temp":1}`,
			status: 409, code: "condition_failed"},
		{name: "body over 1 MiB", path: "/v1/models/Status/create", body: big,
			status: 413, code: "too_large", msg: "over 1048576 bytes"},
		{name: "item over 400 KB", path: "/v1/models/Log/create", body: large,
			status: 413, code: "too_large", msg: "item limit"},
		{name: "no content type", path: "/v1/models/Status/find", ctype: "-", body: `{}`,
			status: 415, code: "unsupported_media_type"},
		{name: "form content type", path: "/v1/models/Status/find", ctype: "application/x-www-form-urlencoded", body: `{}`,
			status: 415, code: "unsupported_media_type"},
		{name: "wrong method", method: "GET", path: "/v1/batch",
			status: 405, code: "method_not_allowed", msg: "use POST"},
		{name: "wrong method on health", method: "DELETE", path: "/v1/health",
			status: 405, code: "method_not_allowed", msg: "use GET"},
		{name: "unknown endpoint", path: "/v1/models/Status/scan", body: `{}`,
			status: 404, code: "not_found", msg: "no endpoint POST /v1/models/Status/scan"},
		{name: "foreign host", method: "GET", path: "/v1/health", host: "evil.example:7400",
			status: 403, code: "forbidden", msg: "not a loopback name"},
		{name: "batch without ops", path: "/v1/batch", body: `{"ops":[]}`,
			status: 400, code: "invalid", msg: "want at least one write"},
		{name: "batch bad op", path: "/v1/batch", body: `{"ops":[{"op":"delete","model":"Log","item":{}}]}`,
			status: 400, code: "invalid", msg: `ops[0].op: "delete" is not one of`},
		{name: "batch unknown field", path: "/v1/transact", body: `{"ops":[{"op":"create","model":"Log","item":{},"params":{"limt":1}}]}`,
			status: 400, code: "invalid", msg: `unknown field "limt"`},
		{name: "batch wrong type", path: "/v1/batch", body: `{"ops":[{"op":"create","model":"Log","item":{},"params":{"limit":"1"}}]}`,
			status: 400, code: "invalid", msg: "ops.params.limit in the request body must be a whole number, not a string"},
		{name: "batch malformed", path: "/v1/batch", body: `{"ops":[}`,
			status: 400, code: "invalid", msg: "the request body is not valid JSON: unexpected '}' at line 1, column 9"},
		{name: "batch empty body", path: "/v1/transact",
			status: 400, code: "invalid", msg: "the request body is empty"},
		{name: "batch query", path: "/v1/batch?limit=1", body: `{"ops":[]}`,
			status: 400, code: "invalid", msg: "no query parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req, err := http.NewRequest(method, url+tt.path, strings.NewReader(tt.body))
			require.NoError(t, err)
			switch tt.ctype {
			case "":
				req.Header.Set("Content-Type", "application/json; charset=utf-8")
			case "-":
			default:
				req.Header.Set("Content-Type", tt.ctype)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			status, body := do(t, req)
			require.Equal(t, tt.status, status, body)
			if tt.status < 300 {
				return
			}
			var eb struct{ Error, Code string }
			require.NoError(t, json.Unmarshal([]byte(body), &eb), body)
			assert.Equal(t, tt.code, eb.Code)
			assert.Contains(t, eb.Error, tt.msg)
			assert.NotContains(t, eb.Error, "\n")
		})
	}
}

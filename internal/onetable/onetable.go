// Package onetable runs OneTable (the dynamodb-onetable 2.7.7 JS library), an
// independent DynamoDB client, from Go tests: each Run is one request to
// scripts/onetable/onetable.mjs under node, against DynamoDB (Local). Tests use it
// to check that iotod stores items exactly as OneTable does, and that each reads
// what the other wrote. See docs/testing.md.
//
//	out, err := onetable.Run(ctx, onetable.Request{
//		Endpoint: dynamotest.URL(t), Table: table, Schema: doc,
//		Op: "create", Model: "Account", Properties: map[string]any{"name": "Acme"},
//	})
//
// The first Run installs the harness's npm packages (npm ci in scripts/onetable)
// when node_modules is missing or was installed from another package-lock.json.
package onetable

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/titanous/json5"
)

// Request is one OneTable operation (the JSON that onetable.mjs reads).
type Request struct {
	// Endpoint is DynamoDB's address, for example dynamotest.URL(t).
	Endpoint string `json:"endpoint"`
	// Region defaults to us-east-1.
	Region string `json:"region,omitempty"`
	// Table is the table's name.
	Table string `json:"table"`
	// Schema is a OneTable schema object (see LoadSchema).
	Schema any `json:"schema"`
	// Partial is the Table's `partial` parameter; nil means the schema's
	// params.partial, else false (iotod's default).
	Partial *bool `json:"partial,omitempty"`
	// Op is createTable, deleteTable, describeTable, create, update, upsert,
	// get, find, remove or scan.
	Op string `json:"op"`
	// Model names the model, for item operations.
	Model string `json:"model,omitempty"`
	// Properties and Params are the operation's OneTable arguments. A value
	// {"$date": "ISO"} is passed to OneTable as a JS Date.
	Properties map[string]any `json:"properties,omitempty"`
	Params     map[string]any `json:"params,omitempty"`
}

// Error is a request that OneTable, DynamoDB or the harness refused.
type Error struct {
	Op      string
	Message string `json:"error"`
	// Code is OneTable's error code (e.g. "ConditionalCheckFailedException",
	// "MissingError", "ValidationError"), when it gives one.
	Code string `json:"code"`
	// Name is the JS error's name (e.g. "OneTableError", "ValidationException").
	Name string `json:"name"`
	// Stderr is what node wrote to stderr.
	Stderr string `json:"-"`
}

func (e *Error) Error() string {
	s := "onetable " + e.Op + ": " + e.Message
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	return s
}

// Dir is the harness's folder, scripts/onetable in this repository.
func Dir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("scripts", "onetable")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "scripts", "onetable")
}

// Run runs req through OneTable and returns its result as JSON (see
// scripts/onetable/onetable.mjs for each op's result). A refused request is an
// *Error.
func Run(ctx context.Context, req Request) (json.RawMessage, error) {
	if err := Install(ctx); err != nil {
		return nil, err
	}
	in, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("onetable %s: encode request: %w", req.Op, err)
	}
	cmd := exec.CommandContext(ctx, "node", filepath.Join(Dir(), "onetable.mjs"))
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	out := bytes.TrimSpace(stdout.Bytes())
	if runErr != nil {
		oe := &Error{Op: req.Op, Stderr: stderr.String()}
		if json.Unmarshal(out, oe) == nil && oe.Message != "" {
			return nil, oe
		}
		return nil, fmt.Errorf("onetable %s: node: %w; stdout: %s; stderr: %s", req.Op, runErr, out, strings.TrimSpace(stderr.String()))
	}
	if !json.Valid(out) {
		return nil, fmt.Errorf("onetable %s: not JSON on stdout: %q; stderr: %s", req.Op, out, strings.TrimSpace(stderr.String()))
	}
	return json.RawMessage(out), nil
}

var installMu sync.Mutex

// Install runs npm ci in Dir when node_modules is missing or stale (a stamp in
// node_modules records the package-lock.json it was installed from). Processes
// side by side (go test runs packages in parallel) take turns through a lock file.
func Install(ctx context.Context) error {
	installMu.Lock()
	defer installMu.Unlock()
	dir := Dir()
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return fmt.Errorf("onetable: %w", err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", ".iotod-lock")
	fresh := func() bool {
		have, err := os.ReadFile(stamp)
		return err == nil && strings.TrimSpace(string(have)) == want
	}
	if fresh() {
		return nil
	}
	unlock, err := lockFile(filepath.Join(dir, ".install.lock"))
	if err != nil {
		return fmt.Errorf("onetable: lock %s: %w", dir, err)
	}
	defer unlock()
	if fresh() { // another process installed it while we waited
		return nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return fmt.Errorf("onetable: npm not found (install Node 20 and npm): %w", err)
	}
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	var outb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &outb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("onetable: npm ci in %s: %w\n%s", dir, err, outb.String())
	}
	return os.WriteFile(stamp, []byte(want+"\n"), 0o644)
}

// LoadSchema reads a schema file (JSON or JSON5) as a plain object for OneTable:
// the files its `blend` list names are merged in as iotod's schema loader does
// (relative to the including file, in order, then the including file on top;
// objects merge deeply, other values replace), and `blend` is dropped. Other
// keys pass unchanged: OneTable keeps the top-level `process` (iotod's
// replication rules) and reads only what it knows of each field.
func LoadSchema(path string) (map[string]any, error) {
	return loadSchema(path, nil)
}

func loadSchema(path string, stack []string) (map[string]any, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	for _, s := range stack {
		if s == abs {
			return nil, fmt.Errorf("schema %s: blend cycle", path)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json5.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("schema %s: %w", path, err)
	}
	list, ok := doc["blend"]
	if !ok {
		return doc, nil
	}
	delete(doc, "blend")
	names, ok := list.([]any)
	if !ok {
		return nil, fmt.Errorf("schema %s: blend must be a list of paths", path)
	}
	base := map[string]any{}
	for _, n := range names {
		name, ok := n.(string)
		if !ok {
			return nil, fmt.Errorf("schema %s: blend must be a list of paths", path)
		}
		if !filepath.IsAbs(name) {
			name = filepath.Join(filepath.Dir(path), name)
		}
		child, err := loadSchema(name, append(stack[:len(stack):len(stack)], abs))
		if err != nil {
			return nil, err
		}
		base = merge(base, child)
	}
	return merge(base, doc), nil
}

// merge returns base with over merged in: objects merge deeply, other values
// from over replace.
func merge(base, over map[string]any) map[string]any {
	out := maps.Clone(base)
	for k, v := range over {
		bo, ok1 := out[k].(map[string]any)
		vo, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			out[k] = merge(bo, vo)
		} else {
			out[k] = v
		}
	}
	return out
}

package onetable

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/internal/dynamotest"
	"github.com/iotod/iotod/schema"
)

var update = flag.Bool("update", false, "rewrite testdata/items/*.json from what OneTable stores")

const (
	schemaFile = "testdata/schema.json5"
	itemsDir   = "testdata/items"
)

// variant is one set of schema params over testdata/schema.json5's own
// (isoDates: true, timestamps: true).
type variant struct {
	name   string
	params map[string]any
}

var variants = []variant{
	{"iso", nil},
	{"epoch", map[string]any{"isoDates": false}},
	{"nulls", map[string]any{"nulls": true}},
}

// step is one OneTable write; its golden file is testdata/items/<variant>-<name>.json.
type step struct {
	name, model, op string
	props, params   map[string]any
}

type obj = map[string]any

// The fixed TTL: 2030-01-01T00:00:00Z, 1893456000 in epoch seconds.
const expires = "2030-01-01T00:00:00.000Z"

var steps = []step{
	{name: "account-create", model: "Account", op: "create", props: obj{
		"name": "Acme", "email": "ops@acme.example",
		"address": obj{"street": "1 Main St", "city": "Springfield", "zip": "12345"},
	}},
	{name: "account-empty", model: "Account", op: "create", props: obj{
		"name": "Empty", "status": "inactive", "address": obj{"street": "", "city": nil},
	}},
	{name: "user-create", model: "User", op: "create", props: obj{
		"accountId": "acct-1", "email": "ann@acme.example", "name": "Ann", "role": "admin", "age": 42,
		"prefs": obj{"theme": "dark", "lang": "en"},
	}},
	{name: "user-bob", model: "User", op: "create", props: obj{
		"accountId": "acct-1", "email": "bob@acme.example", "name": "Bob", "age": 30,
		"prefs": obj{"theme": "dark", "lang": "en"},
	}},
	// prefs is partial: theme changes, lang stays; the GSI key follows the new name.
	{name: "user-update", model: "User", op: "update", props: obj{
		"accountId": "acct-1", "email": "bob@acme.example", "name": "Robert", "age": 31,
		"prefs": obj{"theme": "light"},
	}},
	{name: "reading-create", model: "Reading", op: "create", props: obj{
		"deviceId": "d1", "seq": 42, "temp": 21.5, "on": true, "tags": []any{"a", "b"}, "expires": expires,
	}},
	{name: "reading-zero", model: "Reading", op: "create", props: obj{
		"deviceId": "d1", "seq": 7, "temp": 0, "on": false, "tags": []any{},
	}},
	{name: "reading-upsert-new", model: "Reading", op: "upsert", props: obj{
		"deviceId": "d1", "seq": 44, "temp": -1.25, "expires": obj{"$date": expires},
	}},
	{name: "reading-upsert-existing", model: "Reading", op: "upsert", props: obj{
		"deviceId": "d1", "seq": 42, "temp": 22,
	}},
	{name: "command-create", model: "Command", op: "create", props: obj{
		"deviceId": "d1", "command": "reboot",
	}},
	{name: "secret-create", model: "Secret", op: "create", props: obj{"value": "s3cret"}},
	{name: "extra-create", model: "Extra", op: "create", props: obj{
		"id": "extra-1", "at": "2024-02-03T04:05:06.789Z", "day": "2024-02-03T00:00:00Z", "ms": "2024-02-03T04:05:06Z",
		"count": int64(12345678901234), "ratio": 0.1, "flag": true, "note": "", "secret": "hush",
		"meta":   obj{"x": 1, "y": "two", "z": []any{1, "a", true}, "empty": obj{}, "nil": nil, "blank": ""},
		"list":   []any{1, "two", false, nil, obj{"k": "v"}, []any{}},
		"points": []any{obj{"name": "p1", "n": 1}, obj{"name": "p2"}},
		"nested": obj{"a": "A", "b": 2, "deep": obj{"c": true, "d": ""}},
	}},
	// Extra's nested is not partial (the table's partial is false): it is replaced.
	{name: "extra-update", model: "Extra", op: "update", props: obj{
		"id": "extra-1", "note": nil, "count": 0, "flag": false, "meta": obj{}, "list": []any{},
		"nested": obj{"b": 3},
	}},
}

// golden is the content of one testdata/items file.
type golden struct {
	Variant      string         `json:"variant"`
	SchemaParams map[string]any `json:"schemaParams"`
	Model        string         `json:"model"`
	Op           string         `json:"op"`
	Properties   map[string]any `json:"properties"`
	// Returned is what OneTable's call returned (hidden fields left out,
	// dates as ISO strings); Stored is the item as DynamoDB holds it, each
	// attribute with its DynamoDB type.
	Returned any            `json:"returned"`
	Stored   map[string]any `json:"stored"`
}

// TestSchemaLoads: iotod's own loader accepts the golden schema, blend and all.
func TestSchemaLoads(t *testing.T) {
	s, err := schema.Load(schemaFile)
	require.NoError(t, err)
	assert.Contains(t, s.ModelNames, "Extra")
	assert.Contains(t, s.ModelNames, "Reading")
	assert.True(t, s.Params.IsoDates)

	doc, err := LoadSchema(schemaFile)
	require.NoError(t, err)
	assert.NotContains(t, doc, "blend")
	models := doc["models"].(map[string]any)
	assert.Len(t, models, len(s.ModelNames))
	assert.Contains(t, doc, "process", "OneTable is given iotod's process rules, which it keeps")
}

// TestGoldenItems creates items of every model with OneTable on DynamoDB Local,
// for each schema variant, reads each back raw with the Go SDK, and compares
// what OneTable stored with testdata/items (go test -update rewrites them).
// Generated ids become <ulid>, <uuid>, <uid(8)>; times of the run <now:iso> or
// <now:ms>.
func TestGoldenItems(t *testing.T) {
	if testing.Short() {
		t.Skip("about 40 OneTable runs (15 s): not under -short; make test runs it in its full pass")
	}
	url := dynamotest.URL(t)
	c := dynamotest.Client(t)
	base, err := LoadSchema(schemaFile)
	require.NoError(t, err)

	seen := map[string]bool{}
	ran := map[string]bool{}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			ran[v.name] = true
			runVariant(t, url, c, base, v, seen)
		})
	}
	if t.Failed() || *update {
		return
	}
	// Every golden file of a variant that ran must have been compared.
	files, err := filepath.Glob(filepath.Join(itemsDir, "*.json"))
	require.NoError(t, err)
	for _, f := range files {
		name := filepath.Base(f)
		v, _, _ := strings.Cut(name, "-")
		if (ran[v] || name == "table.json") && !seen[name] {
			t.Errorf("%s: no step writes it any more (delete it, or go test -update)", f)
		}
	}
}

func runVariant(t *testing.T, url string, c *dynamodb.Client, base map[string]any, v variant, seen map[string]bool) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	doc := withParams(base, v.params)
	params := doc["params"].(map[string]any)
	table := dynamotest.UniqueName("onetable-" + v.name)
	req := func(op, model string, props, params map[string]any) Request {
		return Request{Endpoint: url, Table: table, Schema: doc, Op: op, Model: model, Properties: props, Params: params}
	}

	_, err := Run(ctx, req("createTable", "", nil, nil))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
		assert.NoError(t, err, "delete table %s", table)
	})
	desc, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	require.NoError(t, err)
	assert.Equal(t, types.TableStatusActive, desc.Table.TableStatus, "createTable returns once the table is active")
	compare(t, "table.json", tableShape(desc.Table), seen)

	start := time.Now()
	stored := map[string]map[string]types.AttributeValue{} // by step name
	for _, s := range steps {
		before := scan(t, ctx, c, table)
		out, err := Run(ctx, req(s.op, s.model, s.props, s.params))
		require.NoError(t, err, "step %s", s.name)
		after := scan(t, ctx, c, table)
		changed := changedItems(before, after)
		require.Len(t, changed, 1, "step %s: items changed in the table", s.name)
		item := changed[0]
		stored[s.name] = item

		var returned any
		require.NoError(t, json.Unmarshal(out, &returned))
		n := newNormaliser(start, time.Now())
		n.generated(t, doc, s, item)
		g := golden{
			Variant: v.name, SchemaParams: params, Model: s.model, Op: s.op, Properties: s.props,
			Returned: n.value(returned),
			Stored:   n.value(attrsJSON(item)).(map[string]any),
		}
		compare(t, v.name+"-"+s.name+".json", g, seen)
		checkItem(t, v, s, item, returned)
	}
	checkSteps(t, ctx, v, stored)
	checkGSI(t, ctx, c, table, req)
}

// withParams returns doc with its params overridden by over (doc is not changed).
func withParams(doc, over map[string]any) map[string]any {
	out := maps.Clone(doc)
	p := maps.Clone(doc["params"].(map[string]any))
	maps.Copy(p, over)
	out["params"] = p
	return out
}

// checkItem asserts, whatever the golden files say, the facts the DynamoDB store
// relies on.
func checkItem(t *testing.T, v variant, s step, item map[string]types.AttributeValue, returned any) {
	t.Helper()
	iso := v.params["isoDates"] != false
	assert.Equal(t, &types.AttributeValueMemberS{Value: s.model}, item["_type"], "%s: _type", s.name)
	for _, k := range []string{"pk", "sk"} {
		assert.IsType(t, &types.AttributeValueMemberS{}, item[k], "%s: %s stored", s.name, k)
	}
	ret, _ := returned.(map[string]any)
	require.NotNil(t, ret, "%s: OneTable returned %v", s.name, returned)
	assert.NotContains(t, ret, "pk", "%s: pk is hidden", s.name)
	assert.NotContains(t, ret, "_type", "%s: _type is hidden", s.name)
	for _, k := range []string{"created", "updated"} {
		if iso {
			require.IsType(t, &types.AttributeValueMemberS{}, item[k], "%s: %s", s.name, k)
			_, err := time.Parse(time.RFC3339Nano, item[k].(*types.AttributeValueMemberS).Value)
			assert.NoError(t, err, "%s: %s", s.name, k)
		} else {
			require.IsType(t, &types.AttributeValueMemberN{}, item[k], "%s: %s", s.name, k)
		}
	}
	if s.op == "create" {
		assert.Equal(t, item["created"], item["updated"], "%s: created == updated on create", s.name)
	}
	if _, ok := s.props["expires"]; ok {
		assert.Equal(t, &types.AttributeValueMemberN{Value: "1893456000"}, item["expires"], "%s: TTL in epoch seconds", s.name)
	}
}

// checkSteps asserts what updates and upserts did to the items.
func checkSteps(t *testing.T, ctx context.Context, v variant, stored map[string]map[string]types.AttributeValue) {
	bob, robert := stored["user-bob"], stored["user-update"]
	assert.Equal(t, bob["created"], robert["created"], "update keeps created")
	assert.Equal(t, bob["pk"], robert["pk"])
	assert.Equal(t, &types.AttributeValueMemberS{Value: "user#Robert"}, robert["gs1pk"], "update recomputes the GSI key")
	assert.Equal(t, &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
		"theme": &types.AttributeValueMemberS{Value: "light"},
		"lang":  &types.AttributeValueMemberS{Value: "en"},
	}}, robert["prefs"], "prefs is partial: merged")
	assert.True(t, later(robert["updated"], bob["updated"]), "update moves updated on: %v then %v", bob["updated"], robert["updated"])

	r42, up := stored["reading-create"], stored["reading-upsert-existing"]
	assert.Equal(t, r42["created"], up["created"], "upsert of an existing item keeps created")
	assert.True(t, later(up["updated"], r42["updated"]), "upsert moves updated on: %v then %v", r42["updated"], up["updated"])
	assert.Equal(t, r42["tags"], up["tags"], "upsert of an existing item keeps the attributes it does not name")
	assert.Equal(t, &types.AttributeValueMemberN{Value: "22"}, up["temp"])

	ex := stored["extra-update"]
	assert.Equal(t, &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
		"b": &types.AttributeValueMemberN{Value: "3"},
	}}, ex["nested"], "nested without partial is replaced")
	if v.params["nulls"] == true {
		assert.Equal(t, &types.AttributeValueMemberNULL{Value: true}, ex["note"], "nulls: a null is stored as NULL")
	} else {
		assert.NotContains(t, ex, "note", "a null removes the attribute")
	}
}

// checkGSI: OneTable finds through gs1, and the Go SDK queries the index that
// OneTable's createTable made.
func checkGSI(t *testing.T, ctx context.Context, c *dynamodb.Client, table string, req func(op, model string, props, params map[string]any) Request) {
	out, err := Run(ctx, req("find", "User", obj{"name": "Ann"}, obj{"index": "gs1", "follow": false}))
	require.NoError(t, err)
	var found struct {
		Items []map[string]any `json:"items"`
	}
	require.NoError(t, json.Unmarshal(out, &found))
	require.Len(t, found.Items, 1, "OneTable find on gs1: %s", out)
	assert.Equal(t, "ann@acme.example", found.Items[0]["email"])

	q, err := c.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		IndexName:                 aws.String("gs1"),
		KeyConditionExpression:    aws.String("gs1pk = :h AND gs1sk = :s"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":h": &types.AttributeValueMemberS{Value: "user#Robert"}, ":s": &types.AttributeValueMemberS{Value: "user#"}},
	})
	require.NoError(t, err)
	require.Len(t, q.Items, 1)
	assert.Equal(t, &types.AttributeValueMemberS{Value: "bob@acme.example"}, q.Items[0]["email"])

	_, err = Run(ctx, req("create", "Account", obj{"email": "no-name@acme.example"}, nil))
	var oe *Error
	require.ErrorAs(t, err, &oe, "a required field missing")
	assert.Contains(t, oe.Message, "name")
}

// later reports whether a is a later date than b (both S ISO or both N).
func later(a, b types.AttributeValue) bool {
	switch a := a.(type) {
	case *types.AttributeValueMemberS:
		b, ok := b.(*types.AttributeValueMemberS)
		return ok && a.Value > b.Value
	case *types.AttributeValueMemberN:
		b, ok := b.(*types.AttributeValueMemberN)
		x, _ := strconv.ParseInt(a.Value, 10, 64)
		y, _ := strconv.ParseInt(b.Value, 10, 64)
		return ok && x > y
	}
	return false
}

// scan reads the whole table raw, by "pk\x00sk".
func scan(t *testing.T, ctx context.Context, c *dynamodb.Client, table string) map[string]map[string]types.AttributeValue {
	t.Helper()
	items := map[string]map[string]types.AttributeValue{}
	p := dynamodb.NewScanPaginator(c, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		require.NoError(t, err)
		for _, it := range page.Items {
			pk, _ := it["pk"].(*types.AttributeValueMemberS)
			sk, _ := it["sk"].(*types.AttributeValueMemberS)
			require.NotNil(t, pk)
			require.NotNil(t, sk)
			items[pk.Value+"\x00"+sk.Value] = it
		}
	}
	return items
}

// changedItems lists the items of after that are new or differ from before.
func changedItems(before, after map[string]map[string]types.AttributeValue) []map[string]types.AttributeValue {
	var out []map[string]types.AttributeValue
	for _, k := range slices.Sorted(maps.Keys(after)) {
		a, _ := json.Marshal(attrsJSON(after[k]))
		b, _ := json.Marshal(attrsJSON(before[k]))
		if before[k] == nil || string(a) != string(b) {
			out = append(out, after[k])
		}
	}
	return out
}

// attrsJSON writes an item in DynamoDB's JSON form: each attribute as
// {"S": "..."}, {"N": "..."}, {"BOOL": true}, {"NULL": true}, {"M": {...}},
// {"L": [...]}, {"B": "base64"}, {"SS"|"NS"|"BS": [...]}.
func attrsJSON(item map[string]types.AttributeValue) map[string]any {
	out := make(map[string]any, len(item))
	for k, v := range item {
		out[k] = attrJSON(v)
	}
	return out
}

func attrJSON(v types.AttributeValue) any {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return obj{"S": v.Value}
	case *types.AttributeValueMemberN:
		return obj{"N": v.Value}
	case *types.AttributeValueMemberBOOL:
		return obj{"BOOL": v.Value}
	case *types.AttributeValueMemberNULL:
		return obj{"NULL": v.Value}
	case *types.AttributeValueMemberM:
		return obj{"M": attrsJSON(v.Value)}
	case *types.AttributeValueMemberL:
		l := make([]any, len(v.Value))
		for i, e := range v.Value {
			l[i] = attrJSON(e)
		}
		return obj{"L": l}
	case *types.AttributeValueMemberB:
		return obj{"B": base64.StdEncoding.EncodeToString(v.Value)}
	case *types.AttributeValueMemberSS:
		return obj{"SS": v.Value}
	case *types.AttributeValueMemberNS:
		return obj{"NS": v.Value}
	case *types.AttributeValueMemberBS:
		l := make([]string, len(v.Value))
		for i, b := range v.Value {
			l[i] = base64.StdEncoding.EncodeToString(b)
		}
		return obj{"BS": l}
	}
	return fmt.Sprintf("unknown attribute type %T", v)
}

// tableShape is what of the table's description OneTable's createTable decides.
func tableShape(d *types.TableDescription) map[string]any {
	var attrs, keys, gsis []any
	for _, a := range d.AttributeDefinitions {
		attrs = append(attrs, obj{"name": aws.ToString(a.AttributeName), "type": string(a.AttributeType)})
	}
	slices.SortFunc(attrs, func(a, b any) int {
		return strings.Compare(a.(obj)["name"].(string), b.(obj)["name"].(string))
	})
	keySchema := func(ks []types.KeySchemaElement) []any {
		var l []any
		for _, k := range ks {
			l = append(l, obj{"name": aws.ToString(k.AttributeName), "type": string(k.KeyType)})
		}
		return l
	}
	keys = keySchema(d.KeySchema)
	for _, g := range d.GlobalSecondaryIndexes {
		p := obj{"type": string(g.Projection.ProjectionType)}
		if len(g.Projection.NonKeyAttributes) > 0 {
			p["attributes"] = g.Projection.NonKeyAttributes
		}
		gsis = append(gsis, obj{"name": aws.ToString(g.IndexName), "keys": keySchema(g.KeySchema), "projection": p})
	}
	billing := ""
	if d.BillingModeSummary != nil {
		billing = string(d.BillingModeSummary.BillingMode)
	}
	return obj{
		"attributeDefinitions":   attrs,
		"keySchema":              keys,
		"globalSecondaryIndexes": gsis,
		"localSecondaryIndexes":  len(d.LocalSecondaryIndexes),
		"billingMode":            billing,
		"stream":                 d.StreamSpecification != nil && aws.ToBool(d.StreamSpecification.StreamEnabled),
	}
}

// normaliser replaces the values that change from run to run: generated ids
// (checked against their expected shape first) and the run's own times.
type normaliser struct {
	from, to time.Time
	ids      map[string]string // generated value -> placeholder
}

func newNormaliser(from, to time.Time) *normaliser {
	return &normaliser{from: from.Add(-time.Minute), to: to.Add(time.Minute), ids: map[string]string{}}
}

var idShapes = map[string]*regexp.Regexp{
	"ulid": regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{26}$`),
	"uuid": regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`),
	"uid":  regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]+$`),
}

// generated finds the step's generated fields (a generate rule, no value given)
// in the stored item, checks each value's shape and registers its placeholder.
func (n *normaliser) generated(t *testing.T, doc map[string]any, s step, item map[string]types.AttributeValue) {
	t.Helper()
	fields := doc["models"].(map[string]any)[s.model].(map[string]any)
	for name, f := range fields {
		gen, _ := f.(map[string]any)["generate"].(string)
		if gen == "" || s.props[name] != nil {
			continue
		}
		sv, ok := item[name].(*types.AttributeValueMemberS)
		require.True(t, ok, "%s: generated %s.%s stored as %T", s.name, s.model, name, item[name])
		kind, size := gen, 0
		if strings.HasPrefix(gen, "uid(") {
			kind = "uid"
			size, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(gen, "uid("), ")"))
		}
		re := idShapes[kind]
		require.NotNil(t, re, "%s: unknown generate %q", s.name, gen)
		assert.Regexp(t, re, sv.Value, "%s: %s.%s generated by %s", s.name, s.model, name, gen)
		if size > 0 {
			assert.Len(t, sv.Value, size, "%s: %s.%s generated by %s", s.name, s.model, name, gen)
		}
		n.ids[sv.Value] = "<" + gen + ">"
	}
}

var isoRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$`)

func (n *normaliser) now(t time.Time) bool { return !t.Before(n.from) && !t.After(n.to) }

// value normalises a decoded JSON value (an attrsJSON tree or OneTable's result).
func (n *normaliser) value(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 1 {
			if s, ok := v["N"].(string); ok {
				if ms, err := strconv.ParseInt(s, 10, 64); err == nil && n.now(time.UnixMilli(ms)) {
					return obj{"N": "<now:ms>"}
				}
			}
		}
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = n.value(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = n.value(x)
		}
		return out
	case string:
		if isoRe.MatchString(v) {
			if ts, err := time.Parse(time.RFC3339Nano, v); err == nil && n.now(ts) {
				return "<now:iso>"
			}
		}
		for id, ph := range n.ids {
			v = strings.ReplaceAll(v, id, ph)
		}
		return v
	case float64:
		if v == math.Trunc(v) && n.now(time.UnixMilli(int64(v))) {
			return "<now:ms>"
		}
		return v
	}
	return v
}

// compare checks got against testdata/items/name, or writes it with -update.
func compare(t *testing.T, name string, got any, seen map[string]bool) {
	t.Helper()
	seen[name] = true
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep <ulid> readable
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(got))
	data := buf.Bytes()
	path := filepath.Join(itemsDir, name)
	if *update {
		require.NoError(t, os.MkdirAll(itemsDir, 0o755))
		require.NoError(t, os.WriteFile(path, data, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		t.Errorf("%s: missing; run go test ./internal/onetable -update to write it", path)
		return
	}
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(data), "%s differs from what OneTable stored (go test -update rewrites it)", path)
}

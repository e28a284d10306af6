package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestItemsJSONView reads items through the items_json view as a person
// with psql would: keys as text, the item as jsonb.
func TestItemsJSONView(t *testing.T) {
	cfg := testConfig(t)
	s := openStore(t, cfg)
	r := rec("status#1", "status#")
	r.Model, r.Item = "Status", []byte(`{"id":"1","temp":21.5,"state":"on"}`)
	odd := rec("other", "x\x00y")
	odd.Item = []byte(`{"s":"a\u0000b"}`) // valid JSON that jsonb refuses
	putAll(t, s, r, odd)
	var model, pk, state string
	var temp float64
	err := rawConn(t).QueryRow(t.Context(), "SELECT model, pk, item->>'state', (item->>'temp')::float FROM "+
		pgx.Identifier{cfg.Schema}.Sanitize()+".items_json WHERE item->>'id' = '1'").Scan(&model, &pk, &state, &temp)
	if err != nil {
		t.Fatal(err)
	}
	if model != "Status" || pk != "status#1" || state != "on" || temp != 21.5 {
		t.Fatalf("items_json: %s %s %s %v", model, pk, state, temp)
	}
	var sk string
	var item *string
	err = rawConn(t).QueryRow(t.Context(), "SELECT sk, item::text FROM "+pgx.Identifier{cfg.Schema}.Sanitize()+".items_json WHERE pk = 'other'").Scan(&sk, &item)
	if err != nil || sk != `x\000y` || item != nil {
		t.Fatalf("a key with a NUL byte and an item jsonb refuses: %q %v, %v (want the key escaped, the item NULL)", sk, item, err)
	}
}

//go:build !(386 || arm || mips || mipsle)

// The example opens a badger store, which refuses 32-bit builds.

package db_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/plugins/storage/badger"
	"github.com/iotod/iotod/schema"
)

// The Go API from docs/database.md; TestDocsDatabaseExamples checks the doc
// shows this code verbatim.
func Example() {
	dir, _ := os.MkdirTemp("", "iotod-example")
	defer os.RemoveAll(dir)
	// docs:begin
	ctx := context.Background()
	sch, err := schema.Load("testdata/schema.json5")
	if err != nil {
		log.Fatal(err)
	}
	cfg := badger.NewDefaultConfig()
	cfg.Path = dir // durability: sync by default
	store, err := badger.Open(ctx, cfg, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close(ctx)
	d, err := db.Open(ctx, db.Options{Schema: sch, Store: store, Site: "dev1"})
	if err != nil {
		log.Fatal(err)
	}
	d.SetContext(db.Item{"deviceId": "dev1"}) // blended into every write

	for seq := 1; seq <= 3; seq++ {
		if _, err := d.Create(ctx, "Reading", db.Item{"seq": seq, "temp": 20 + seq}, nil); err != nil {
			log.Fatal(err)
		}
	}
	_, err = d.Update(ctx, "Reading", db.Item{"seq": 2, "temp": 30}, nil)
	if err != nil {
		log.Fatal(err)
	}
	res, err := d.Find(ctx, "Reading", db.Item{}, &db.Params{Where: "${temp} >= {23}", Limit: 10})
	if err != nil {
		log.Fatal(err)
	}
	for _, it := range res.Items {
		fmt.Println(it["seq"], it["temp"])
	}
	// docs:end

	// Output:
	// 2 30
	// 3 23
}

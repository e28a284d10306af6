package db

import (
	"context"
	"errors"
	"fmt"

	"github.com/iotod/iotod/pipeline"
)

// metaModel marks records that hold iotod's own state (replication
// cursors) beside the items. Reads and finds never show them.
const metaModel = "~meta"

func metaKey(name string) pipeline.Key { return pipeline.Key{PK: "~meta", SK: name} }

// GetMeta reads a value iotod keeps in the store ("" when unset).
func (d *DB) GetMeta(ctx context.Context, name string) (string, error) {
	var out string
	err := d.store.View(ctx, func(tx pipeline.ReadTx) error {
		rec, err := tx.Get(ctx, metaKey(name))
		if errors.Is(err, pipeline.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if rec.Model == metaModel {
			out = string(rec.Item)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("db: meta %s: %w", name, err)
	}
	return out, nil
}

// SetMeta stores a value durably.
func (d *DB) SetMeta(ctx context.Context, name, value string) error {
	err := d.store.Update(ctx, func(tx pipeline.Tx) error {
		return tx.Put(ctx, &pipeline.Record{Key: metaKey(name), Model: metaModel, Item: []byte(value)})
	})
	if err != nil {
		return fmt.Errorf("db: meta %s: %w", name, err)
	}
	return nil
}

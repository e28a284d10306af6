package api

import (
	"context"

	"github.com/iotod/iotod/db"
)

// Database is what the server needs of the device database; *db.DB is one.
type Database interface {
	Create(ctx context.Context, model string, props db.Item, p *db.Params) (db.Item, error)
	Get(ctx context.Context, model string, props db.Item, p *db.Params) (db.Item, error)
	Find(ctx context.Context, model string, props db.Item, p *db.Params) (*db.Result, error)
	Update(ctx context.Context, model string, props db.Item, p *db.Params) (db.Item, error)
	Upsert(ctx context.Context, model string, props db.Item, p *db.Params) (db.Item, error)
	Remove(ctx context.Context, model string, props db.Item, p *db.Params) (int, error)
	Batch(ctx context.Context, ops []db.WriteOp) ([]db.BatchResult, error)
	Transact(ctx context.Context, ops []db.WriteOp) ([]db.Item, error)
}

var _ Database = (*db.DB)(nil)

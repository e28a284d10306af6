package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/iotod/iotod/pipeline"
	"github.com/iotod/iotod/schema"
)

// activeTimeout bounds the wait for a table to become active.
const activeTimeout = 5 * time.Minute

// ensureTable checks the table against the layout, creating it first when
// it is missing and create_table is set, and waits until it is active. The
// actual key types and index projections of the table are taken into the
// layout.
func (s *Store) ensureTable(ctx context.Context, sch *schema.Schema) error {
	desc, err := s.describe(ctx)
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) && s.cfg.CreateTable {
		if err := s.createTable(ctx); err != nil {
			return err
		}
		desc, err = s.waitActive(ctx)
		if err != nil {
			return err
		}
		if err := s.enableTTL(ctx); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if desc.TableStatus != types.TableStatusActive || !indexesActive(desc) {
		if desc, err = s.waitActive(ctx); err != nil {
			return err
		}
	}
	return s.checkTable(desc)
}

func (s *Store) describe(ctx context.Context) (*types.TableDescription, error) {
	var out *dynamodb.DescribeTableOutput
	err := s.call(ctx, "describe", "table", func(ctx context.Context) (err error) {
		out, err = s.api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.cfg.Table)})
		return err
	})
	if err != nil {
		return nil, err
	}
	if out.Table == nil {
		return nil, fmt.Errorf("dynamodb table %q: describe table: no description returned", s.cfg.Table)
	}
	return out.Table, nil
}

// tableDefinition is the CreateTable input for the layout: string primary
// keys, one global (or local) index per schema index with its key types
// and projection, on-demand billing and a NEW_AND_OLD_IMAGES stream.
func (l *layout) tableDefinition() *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName: aws.String(l.table),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(l.hash), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(l.sort), KeyType: types.KeyTypeRange},
		},
		BillingMode: types.BillingModePayPerRequest,
		StreamSpecification: &types.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: types.StreamViewTypeNewAndOldImages,
		},
	}
	defined := map[string]bool{}
	define := func(name string, t types.ScalarAttributeType) {
		if !defined[name] {
			defined[name] = true
			in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: t})
		}
	}
	define(l.hash, types.ScalarAttributeTypeS)
	define(l.sort, types.ScalarAttributeTypeS)
	for _, x := range l.indexes {
		keys := []types.KeySchemaElement{{AttributeName: aws.String(x.hash), KeyType: types.KeyTypeHash}}
		define(x.hash, x.hashType)
		if x.sort != "" {
			keys = append(keys, types.KeySchemaElement{AttributeName: aws.String(x.sort), KeyType: types.KeyTypeRange})
			define(x.sort, x.sortType)
		}
		proj := &types.Projection{ProjectionType: x.projection}
		if x.projection == types.ProjectionTypeInclude {
			proj.NonKeyAttributes = x.nonKey
		}
		if x.local {
			in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, types.LocalSecondaryIndex{
				IndexName: aws.String(x.name), KeySchema: keys, Projection: proj})
		} else {
			in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
				IndexName: aws.String(x.name), KeySchema: keys, Projection: proj})
		}
	}
	if l.sync != nil {
		define(l.sync.owner, types.ScalarAttributeTypeS)
		define(l.typeField, types.ScalarAttributeTypeS)
		define(l.sync.updated, l.sync.updatedType)
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, l.sync.definitions(l.typeField)...)
	}
	return in
}

func (s *Store) createTable(ctx context.Context) error {
	s.log.Info("creating dynamodb table", "table", s.cfg.Table, "indexes", len(s.l.indexes))
	err := s.call(ctx, "create", "table", func(ctx context.Context) error {
		_, err := s.api.CreateTable(ctx, s.l.tableDefinition())
		return err
	})
	var inUse *types.ResourceInUseException
	if errors.As(err, &inUse) {
		return nil // created meanwhile by another worker
	}
	return err
}

// enableTTL turns DynamoDB's TTL on for the layout's TTL attribute.
func (s *Store) enableTTL(ctx context.Context) error {
	err := s.call(ctx, "enable TTL on", s.l.ttlAttr, func(ctx context.Context) error {
		_, err := s.api.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName: aws.String(s.cfg.Table),
			TimeToLiveSpecification: &types.TimeToLiveSpecification{
				AttributeName: aws.String(s.l.ttlAttr), Enabled: aws.Bool(true)},
		})
		return err
	})
	var ae smithy.APIError
	if errors.As(err, &ae) && strings.Contains(ae.ErrorMessage(), "already enabled") {
		return nil
	}
	return err
}

// waitActive polls until the table and its indexes are active.
func (s *Store) waitActive(ctx context.Context) (*types.TableDescription, error) {
	ctx, cancel := context.WithTimeout(ctx, activeTimeout)
	defer cancel()
	delay := 20 * time.Millisecond
	for {
		desc, err := s.describe(ctx)
		if err != nil {
			return nil, err
		}
		if desc.TableStatus == types.TableStatusActive && indexesActive(desc) {
			return desc, nil
		}
		if desc.TableStatus != types.TableStatusCreating && desc.TableStatus != types.TableStatusUpdating &&
			desc.TableStatus != types.TableStatusActive {
			return nil, pipeline.Permanent(fmt.Errorf("dynamodb table %q is %s, not active", s.cfg.Table, desc.TableStatus))
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("dynamodb table %q: waiting until it is active (now %s): %w", s.cfg.Table, desc.TableStatus, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, time.Second)
	}
}

func indexesActive(desc *types.TableDescription) bool {
	for _, g := range desc.GlobalSecondaryIndexes {
		if g.IndexStatus != "" && g.IndexStatus != types.IndexStatusActive {
			return false
		}
	}
	return true
}

// checkTable compares the table with the layout: the primary keys, and an
// index of the same keys for every schema index. It takes each index's
// key types and projection from the table.
func (s *Store) checkTable(desc *types.TableDescription) error {
	attrTypes := map[string]types.ScalarAttributeType{}
	for _, d := range desc.AttributeDefinitions {
		attrTypes[aws.ToString(d.AttributeName)] = d.AttributeType
	}
	hash, sort := keyNames(desc.KeySchema)
	if hash != s.l.hash || sort != s.l.sort {
		return pipeline.Permanent(fmt.Errorf("%w: dynamodb table %q has the primary key (%s, %s); the schema's primary index is (%s, %s)",
			pipeline.ErrInvalid, s.cfg.Table, show(hash), show(sort), s.l.hash, s.l.sort))
	}
	if attrTypes[hash] != types.ScalarAttributeTypeS || attrTypes[sort] != types.ScalarAttributeTypeS {
		return pipeline.Permanent(fmt.Errorf("%w: dynamodb table %q: the primary key attributes must be strings (S), they are %s and %s",
			pipeline.ErrInvalid, s.cfg.Table, attrTypes[hash], attrTypes[sort]))
	}
	type found struct {
		hash, sort string
		proj       *types.Projection
		local      bool
	}
	have := map[string]found{}
	for _, g := range desc.GlobalSecondaryIndexes {
		h, r := keyNames(g.KeySchema)
		have[aws.ToString(g.IndexName)] = found{h, r, g.Projection, false}
	}
	for _, g := range desc.LocalSecondaryIndexes {
		h, r := keyNames(g.KeySchema)
		have[aws.ToString(g.IndexName)] = found{h, r, g.Projection, true}
	}
	var faults []string
	for _, x := range s.l.indexes {
		f, ok := have[x.name]
		switch {
		case !ok:
			faults = append(faults, fmt.Sprintf("index %q (hash %s, sort %s) is missing", x.name, x.hash, show(x.sort)))
			continue
		case f.hash != x.hash || f.sort != x.sort || f.local != x.local:
			faults = append(faults, fmt.Sprintf("index %q has keys (%s, %s), the schema's are (%s, %s)", x.name, f.hash, show(f.sort), x.hash, show(x.sort)))
			continue
		}
		x.hashType = attrTypes[x.hash]
		if x.sort != "" {
			x.sortType = attrTypes[x.sort]
		}
		if f.proj != nil {
			x.projection, x.nonKey = f.proj.ProjectionType, f.proj.NonKeyAttributes
		}
	}
	if len(faults) > 0 {
		return pipeline.Permanent(fmt.Errorf("%w: dynamodb table %q does not fit the schema: %s (docs/dynamodb.md shows the table to create)",
			pipeline.ErrInvalid, s.cfg.Table, strings.Join(faults, "; ")))
	}
	if s.l.sync != nil {
		return s.l.sync.check(s.cfg.Table, s.l.typeField, desc, attrTypes)
	}
	return nil
}

func keyNames(ks []types.KeySchemaElement) (hash, sort string) {
	for _, k := range ks {
		if k.KeyType == types.KeyTypeHash {
			hash = aws.ToString(k.AttributeName)
		} else {
			sort = aws.ToString(k.AttributeName)
		}
	}
	return hash, sort
}

func show(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

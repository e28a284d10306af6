package pipeline_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

// A type a build leaves out is reported with its reason, not as unknown;
// it cannot also be built in, omitted twice or omitted without a reason.
func TestRegistryOmitted(t *testing.T) {
	reg, err := pipeline.NewRegistry(pipeline.MakeFactory(pipeline.KindStorage, "badger", "a test store",
		func() knobs { return knobs{} },
		func(context.Context, pipeline.Settings, knobs) (any, error) { return nil, nil }))
	require.NoError(t, err)
	why := "not in this device build (64-bit device builds include badger; the full build has both)"
	require.NoError(t, reg.Omit(
		pipeline.Omitted{Kind: pipeline.KindStorage, Type: "sqlite", Why: why},
		pipeline.Omitted{Kind: pipeline.KindStorage, Type: "dynamodb", Why: "not in this device build"},
	))

	_, err = reg.Lookup(pipeline.KindStorage, "sqlite")
	require.ErrorIs(t, err, pipeline.ErrNotFound)
	assert.EqualError(t, err, `not found: storage type "sqlite" is `+why)
	_, err = reg.Lookup(pipeline.KindStorage, "rocks")
	assert.EqualError(t, err, `not found: unknown storage type "rocks" (known: badger)`)
	_, err = reg.Lookup(pipeline.KindTransport, "sqlite")
	assert.EqualError(t, err, `not found: unknown transport type "sqlite" (known: )`, "omitted per kind")

	assert.Equal(t, []string{"badger"}, reg.Types(pipeline.KindStorage), "an omitted type is not listed as one the build has")
	got := reg.OmittedTypes()
	require.Len(t, got, 2)
	assert.Equal(t, "dynamodb", got[0].Type, "sorted")
	assert.Equal(t, `storage type "sqlite" is `+why, got[1].String())

	assert.ErrorContains(t, reg.Omit(pipeline.Omitted{Kind: pipeline.KindStorage, Type: "badger", Why: "x"}), "is built in")
	assert.ErrorContains(t, reg.Omit(pipeline.Omitted{Kind: pipeline.KindStorage, Type: "sqlite", Why: "x"}), "omitted twice")
	assert.ErrorContains(t, reg.Omit(pipeline.Omitted{Kind: pipeline.KindStorage, Type: "rocks"}), "without a reason")
}

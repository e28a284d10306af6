package pipeline_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/pipeline"
)

type knobs struct{ N int }

func (k *knobs) Validate() error {
	if k.N < 0 {
		return errors.New("n: must not be negative")
	}
	return nil
}

type other struct{}

func (*other) Validate() error { return nil }

func TestMakeFactory(t *testing.T) {
	f := pipeline.MakeFactory(pipeline.KindStage, "knob", "a test stage",
		func() knobs { return knobs{N: 3} },
		func(_ context.Context, _ pipeline.Settings, c knobs) (any, error) { return c.N * 2, nil })
	require.Equal(t, pipeline.KindStage, f.Kind())
	require.Equal(t, "knob", f.Type())
	require.Equal(t, "a test stage", f.Description())
	a, b := f.NewDefaultConfig().(*knobs), f.NewDefaultConfig().(*knobs)
	require.Equal(t, 3, a.N)
	a.N = 5
	require.Equal(t, 3, b.N, "each default config is fresh")

	got, err := f.Create(context.Background(), pipeline.Settings{}, a)
	require.NoError(t, err)
	require.Equal(t, 10, got)
	_, err = f.Create(context.Background(), pipeline.Settings{}, &knobs{N: -1})
	require.ErrorContains(t, err, "n: must not be negative", "the config is validated first")
	_, err = f.Create(context.Background(), pipeline.Settings{}, &other{})
	require.ErrorIs(t, err, pipeline.ErrInvalid)
	require.ErrorContains(t, err, "config is *pipeline_test.other, want *pipeline_test.knobs")
}

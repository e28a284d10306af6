package broker

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/iotod/iotod/pipeline"
)

// TestConfigValidate decodes each testdata/config/*.yaml over the defaults
// (unknown keys rejected) and validates it. Each file lists the error
// substrings it expects in "# want:" lines, or "# want: ok".
func TestConfigValidate(t *testing.T) {
	files, err := filepath.Glob("testdata/config/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			var wants []string
			for line := range strings.Lines(string(data)) {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					wants = append(wants, strings.TrimSpace(w))
				}
			}
			require.NotEmpty(t, wants, `no "# want:" line`)
			cfg := NewDefaultConfig()
			dec := yaml.NewDecoder(bytes.NewReader(data))
			dec.KnownFields(true)
			err = dec.Decode(&cfg)
			if err == nil && cfg.Persistence != "" && strconv.IntSize == 32 {
				t.Skip("badger persistence on a 32-bit build: TestPersistenceFollowsBadgersPlatformRule")
			}
			if err == nil {
				err = cfg.Validate()
				if err != nil {
					assert.ErrorIs(t, err, pipeline.ErrInvalid)
				}
			}
			if wants[0] == "ok" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range wants {
				assert.Contains(t, err.Error(), w)
			}
			if err != nil && len(wants) > 1 {
				assert.Len(t, strings.Split(err.Error(), "\n"), len(wants), "one fault a want")
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	c := NewDefaultConfig()
	assert.Equal(t, DefaultListen, c.Listen)
	assert.True(t, c.Anonymous)
	assert.Equal(t, DefaultTopic, c.Topic)
	assert.Empty(t, c.Persistence)
	assert.Nil(t, c.TLS)
	assert.Equal(t, 128*pipeline.Kilobyte+PacketAllowance, c.MaxPacket)
	assert.NoError(t, c.Validate())
}

// TestPersistenceFollowsBadgersPlatformRule checks the broker refuses its
// badger persistence where the badger storage refuses to open (a 32-bit
// build), before it opens anything, and accepts it elsewhere. Both
// branches run: `make test` runs this package with GOARCH=386 too.
func TestPersistenceFollowsBadgersPlatformRule(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Persistence = filepath.Join(t.TempDir(), "sessions")
	err := cfg.Validate()
	if strconv.IntSize == 64 {
		require.NoError(t, err)
		return
	}
	require.Error(t, err)
	for _, want := range []string{"persistence", "64-bit", "leave persistence empty"} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = Start(t.Context(), cfg, nil, nil)
	require.Error(t, err, "Start opened a broker with badger persistence on a 32-bit build")
	_, statErr := os.Stat(cfg.Persistence)
	assert.True(t, os.IsNotExist(statErr), "the refused persistence folder was created")
	cfg.Persistence = ""
	require.NoError(t, cfg.Validate(), "memory-only sessions are refused too")
}

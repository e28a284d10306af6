package broker

import (
	"bytes"
	"os"
	"path/filepath"
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

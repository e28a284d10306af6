package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/internal/testenv"
)

// TestLogSection: the log key's level and format, their defaults, a later
// file overriding one of them, a variable.
func TestLogSection(t *testing.T) {
	testenv.NeedBadger(t) // the configs name badger storages, which 32-bit builds refuse
	head := "site: dev-1\nschema: " + abs(t, "testdata/good/schema.json5") + "\nstorage:\n  local: {type: badger, path: ./data}\n"
	tests := []struct {
		name  string
		files []string // merged in order, the first after head
		env   map[string]string
		want  LogConfig
	}{
		{"defaults", []string{""}, nil, LogConfig{Level: "info", Format: "text"}},
		{"both", []string{"log: {level: debug, format: json}"}, nil, LogConfig{Level: "debug", Format: "json"}},
		{"one", []string{"log: {format: json}"}, nil, LogConfig{Level: "info", Format: "json"}},
		{"a later file", []string{"log: {level: debug, format: json}", "log: {level: warn}"}, nil, LogConfig{Level: "warn", Format: "json"}},
		{"a variable", []string{"log: {level: \"${LOG_LEVEL:-info}\"}"}, map[string]string{"LOG_LEVEL": "error"}, LogConfig{Level: "error", Format: "text"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var files []string
			for i, body := range tc.files {
				path := filepath.Join(dir, "f"+string(rune('0'+i))+".yaml")
				if i == 0 {
					body = head + body
				}
				require.NoError(t, os.WriteFile(path, []byte(body+"\n"), 0o600))
				files = append(files, path)
			}
			c, err := LoadWith(testRegistry(t), envOf(tc.env), files...)
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.Log)
		})
	}
}

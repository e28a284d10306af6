package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/internal/dynamotest"
)

// A cloud worker whose table does not exist (and may not create it)
// stops at start with a clear message naming the table, and its exit
// code says so; it does not serve or retry forever.
func TestDynamoDBMissingTableAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped under -short")
	}
	url := dynamotest.URL(t)
	table := dynamotest.UniqueName("iotod-missing")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cloud.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`site: cloud
schema: %s
storage:
  cloud:
    type: dynamodb
    table: %s
    region: %s
    endpoint: %s
    create_table: false
    access_key_id: iotod
    secret_access_key: iotod
    side: cloud
api:
  listen: 127.0.0.1:0
`, schemaPath(t), table, dynamotest.Region, url)), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, iotodBin(t), "run", "-c", cfg).CombinedOutput()
	require.Error(t, err, "iotod run must fail:\n%s", out)
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "it exits by itself, not by the test's timeout:\n%s", out)
	assert.NotZero(t, exit.ExitCode())
	assert.Contains(t, string(out), table, "the message names the table")
	assert.Contains(t, strings.ToLower(string(out)), "not", "the message says the table is not there:\n%s", out)
	assert.NotContains(t, string(out), "iotod serving", "nothing is served")
}

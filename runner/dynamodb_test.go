package runner

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/db"
	"github.com/iotod/iotod/internal/dynamotest"
	"github.com/iotod/iotod/pipeline"
	ddbstore "github.com/iotod/iotod/plugins/storage/dynamodb"
	"github.com/iotod/iotod/schema"
)

// cloudOnDynamoDB is the all-in-one plan with the cloud store on a fresh
// DynamoDB Local table, its stream feeding the down pipeline.
func cloudOnDynamoDB(t *testing.T) (Plan, string) {
	plan := allInOne(t)
	cfg := ddbstore.NewDefaultConfig()
	cfg.Table = dynamotest.UniqueName("iotod-runner")
	cfg.Endpoint, cfg.Region = dynamotest.URL(t), dynamotest.Region
	cfg.AccessKeyID, cfg.SecretAccessKey = "iotod", "iotod"
	cfg.CreateTable = true
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = dynamotest.Client(t).DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(cfg.Table)})
	})
	plan.Storage["cloud"] = StoragePlan{ComponentPlan: ComponentPlan{Factory: ddbstore.NewFactory(), Config: &cfg},
		Side: schema.SideCloud, Site: "cloud"}
	return plan, cfg.Table
}

// A device replicates with a cloud on DynamoDB both ways: its changes are
// applied to the table; the cloud's own writes and a write made outside
// iotod (as OneTable or the console would: no version attribute) come
// down through the table's stream; the device's own changes are not sent
// back to it.
func TestReplicatesWithACloudOnDynamoDB(t *testing.T) {
	ctx := context.Background()
	plan, table := cloudOnDynamoDB(t)
	r := start(t, plan)
	dev, cloud := r.DB("local"), r.DB("cloud")

	_, err := dev.Create(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 1, "temp": 21}, nil)
	require.NoError(t, err)
	user, err := dev.Create(ctx, "User", db.Item{"accountId": "a1", "email": "dev@x.io", "name": "from device"}, nil)
	require.NoError(t, err)
	require.NoError(t, r.Sync(syncCtx(t)))
	got, err := cloud.Get(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 1}, nil)
	require.NoError(t, err, "the device's reading is in the table")
	assert.Equal(t, "21", toString(got["temp"]))

	acct, err := cloud.Create(ctx, "Account", db.Item{"name": "from the cloud"}, nil)
	require.NoError(t, err)
	// A reading written on the cloud: Reading replicates up only, so the
	// stream's record of it is not for the devices.
	_, err = cloud.Create(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 2, "temp": 5}, nil)
	require.NoError(t, err)
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	_, err = dynamotest.Client(t).PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "account#a1"}, "sk": &types.AttributeValueMemberS{Value: "user#ext@x.io"},
		"_type": &types.AttributeValueMemberS{Value: "User"}, "accountId": &types.AttributeValueMemberS{Value: "a1"},
		"email": &types.AttributeValueMemberS{Value: "ext@x.io"}, "name": &types.AttributeValueMemberS{Value: "written outside iotod"},
		"created": &types.AttributeValueMemberS{Value: now}, "updated": &types.AttributeValueMemberS{Value: now},
	}})
	require.NoError(t, err)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		a, err := dev.Get(ctx, "Account", db.Item{"id": acct["id"]}, nil)
		if assert.NoError(c, err, "the cloud's account reached the device") {
			assert.Equal(c, "from the cloud", a["name"])
		}
		u, err := dev.Get(ctx, "User", db.Item{"accountId": "a1", "email": "ext@x.io"}, nil)
		if assert.NoError(c, err, "the item written outside iotod reached the device") {
			assert.Equal(c, "written outside iotod", u["name"])
		}
	}, 20*time.Second, 100*time.Millisecond)

	// The readings (a model that replicates up only) are in the table's
	// stream too: the down pipeline settles them without sending them and
	// without a dead letter.
	require.NoError(t, r.Sync(syncCtx(t)))
	letters, _ := r.DeadLetters().Recent()
	assert.Empty(t, letters, "no dead letters")
	_, err = dev.Get(ctx, "Reading", db.Item{"deviceId": "dev1", "seq": 2}, nil)
	assert.ErrorIs(t, err, pipeline.ErrNotFound, "the cloud's reading did not come down")

	// The device's own user went up and was not applied back as new.
	u, err := dev.Get(ctx, "User", db.Item{"accountId": "a1", "email": "dev@x.io"}, &db.Params{Hidden: true})
	require.NoError(t, err)
	assert.Equal(t, user["name"], u["name"])
	v, err := pipeline.ParseVersion(u[db.VersionAttr].(string))
	require.NoError(t, err)
	assert.Equal(t, "dev1", v.Origin, "the device's own item keeps its own version")
}

func toString(v any) string { return fmt.Sprint(v) }

// The stream's metrics are on the runner's /metrics.
func TestDynamoDBStreamMetricsAreServed(t *testing.T) {
	plan, _ := cloudOnDynamoDB(t)
	r := start(t, plan)
	mfs, err := r.reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "iotod_dynamodb_stream_") {
			names = append(names, mf.GetName())
		}
	}
	assert.NotEmpty(t, names, "iotod_dynamodb_stream_* series")
}

package api

import (
	"bytes"
	"html/template"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/iotod/iotod/runner"
)

// uiFleetRowsTemplate is the fleet table's rows as index.html wrote them
// with html/template before uiFleetRows: the reference it must match.
const uiFleetRowsTemplate = `
    {{- $now := .Now}}
    {{- range .Devices}}
    <tr data-key="{{.Site}}">
      <td data-col="site"><span class="name">{{.Site}}</span></td>
      <td data-col="conn"><span class="badge" data-v="{{conn .Connected}}">{{conn .Connected}}</span></td>
      <td data-col="seen">{{ago $now .LastSeen}}</td>
      <td data-col="up">{{ago $now .LastUp}}</td>
      <td data-col="ack">{{ago $now .LastAck}}</td>
      <td data-col="cursor" title="{{.Cursor}}">{{cursor $now .}}</td>
      <td data-col="changes" class="n">{{num .Changes}}</td>
      <td data-col="pending" class="n">{{num (int64 .Pending)}}</td>
      <td data-col="refused" class="n">{{num .Refused}}</td>
      <td data-col="refusal" class="reason">{{refusal $now .}}</td>
    </tr>
    {{- end}}`

// TestUIFleetRowsAsTemplate: uiFleetRows writes, byte for byte, what
// html/template wrote for the same rows, hostile text included.
func TestUIFleetRowsAsTemplate(t *testing.T) {
	ref := template.Must(template.New("rows").Funcs(template.FuncMap{
		"ago": uiAgo, "num": uiNum, "conn": uiConn, "cursor": uiCursor, "refusal": uiRefusal,
		"int64": func(n int) int64 { return int64(n) },
	}).Parse(uiFleetRowsTemplate))
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	yes, no := true, false
	hostile := "<script>alert('x')</script> & \"quoted\" a+b \x00 \xff é →"
	devs := []runner.DeviceSummary{
		{DeviceRecord: runner.DeviceRecord{Site: "dev-1"}},
		{DeviceRecord: runner.DeviceRecord{Site: "dev.2_x", LastSeen: now.Add(-3 * time.Second), LastUp: now.Add(-time.Hour), LastAck: now.Add(-50 * time.Hour),
			Cursor: "0000018f3a2b1c00-0001-dev", Changes: 1234567, Refused: -3, LastRefusedAt: now.Add(-time.Minute), LastRefusal: hostile},
			CursorTime: now.Add(-10 * time.Minute), Pending: 42, Connected: &yes},
		{DeviceRecord: runner.DeviceRecord{Site: hostile, Cursor: hostile, FullSync: true, LastRefusal: "r"}, Connected: &no},
		{DeviceRecord: runner.DeviceRecord{Site: "d", Cursor: `a"b'c<d>&e+f`}},
	}
	for n := range len(devs) + 1 {
		var want bytes.Buffer
		require.NoError(t, ref.Execute(&want, struct {
			Now     time.Time
			Devices []runner.DeviceSummary
		}{now, devs[:n]}))
		require.Equal(t, want.String(), string(uiFleetRows(now, devs[:n])), "%d rows", n)
	}
}

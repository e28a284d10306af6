package api

import (
	"html/template"
	"strings"
	"time"

	"github.com/iotod/iotod/runner"
)

// uiFleetRows writes the fleet table's rows: the markup a range over the
// devices in index.html wrote (TestUIFleetRowsAsTemplate holds that
// template and checks every byte), without html/template's reflection
// per cell, which made a page of 1000 devices take 40 to 80 ms (P11,
// iotod bench api). Every value is escaped as html/template escapes text
// and quoted attributes (uiEscape).
func uiFleetRows(now time.Time, devs []runner.DeviceSummary) template.HTML {
	var b strings.Builder
	b.Grow(len(devs) * 700)
	for i := range devs {
		d := &devs[i]
		conn := uiEscape(uiConn(d.Connected))
		b.WriteString("\n    <tr data-key=\"")
		b.WriteString(uiEscape(d.Site))
		b.WriteString("\">\n      <td data-col=\"site\"><span class=\"name\">")
		b.WriteString(uiEscape(d.Site))
		b.WriteString("</span></td>\n      <td data-col=\"conn\"><span class=\"badge\" data-v=\"")
		b.WriteString(conn)
		b.WriteString("\">")
		b.WriteString(conn)
		b.WriteString("</span></td>\n      <td data-col=\"seen\">")
		b.WriteString(uiEscape(uiAgo(now, d.LastSeen)))
		b.WriteString("</td>\n      <td data-col=\"up\">")
		b.WriteString(uiEscape(uiAgo(now, d.LastUp)))
		b.WriteString("</td>\n      <td data-col=\"ack\">")
		b.WriteString(uiEscape(uiAgo(now, d.LastAck)))
		b.WriteString("</td>\n      <td data-col=\"cursor\" title=\"")
		b.WriteString(uiEscape(d.Cursor))
		b.WriteString("\">")
		b.WriteString(uiEscape(uiCursor(now, *d)))
		b.WriteString("</td>\n      <td data-col=\"changes\" class=\"n\">")
		b.WriteString(uiNum(d.Changes))
		b.WriteString("</td>\n      <td data-col=\"pending\" class=\"n\">")
		b.WriteString(uiNum(int64(d.Pending)))
		b.WriteString("</td>\n      <td data-col=\"refused\" class=\"n\">")
		b.WriteString(uiNum(d.Refused))
		b.WriteString("</td>\n      <td data-col=\"refusal\" class=\"reason\">")
		b.WriteString(uiEscape(uiRefusal(now, *d)))
		b.WriteString("</td>\n    </tr>")
	}
	return template.HTML(b.String()) //nolint:gosec // every value above is escaped
}

// uiEscaper replaces what html/template replaces in text and in quoted
// attribute values (its htmlReplacementTable).
var uiEscaper = strings.NewReplacer("\x00", "\uFFFD", `"`, "&#34;", "&", "&amp;", "'", "&#39;", "+", "&#43;", "<", "&lt;", ">", "&gt;")

func uiEscape(s string) string { return uiEscaper.Replace(s) }

package runner

import (
	"fmt"

	json "github.com/goccy/go-json"

	"github.com/iotod/iotod/pipeline"
)

// fitAck encodes ack within max bytes (0: no limit). An ack rejecting
// many changes can outgrow the transport's maximum, and an ack that is
// never sent makes its sender resend forever: reasons are cut shorter,
// then the rejections that still do not fit are summed up in a last one.
// The sender settles the whole batch on any ack; the rejections are for
// its dead letters.
func fitAck(ack *pipeline.Ack, max int) ([]byte, error) {
	payload, err := json.Marshal(ack)
	if err != nil || max <= 0 || len(payload) <= max {
		return payload, err
	}
	fitted := *ack
	fitted.Rejected = make([]pipeline.Reject, len(ack.Rejected))
	for i, rj := range ack.Rejected {
		rj.Reason = pipeline.Truncate(rj.Reason, 48)
		rj.Key = pipeline.Key{PK: pipeline.Truncate(rj.Key.PK, 48), SK: pipeline.Truncate(rj.Key.SK, 48)}
		rj.Model = pipeline.Truncate(rj.Model, 48)
		fitted.Rejected[i] = rj
	}
	for keep := len(fitted.Rejected); ; keep /= 2 {
		try := fitted
		try.Rejected = fitted.Rejected[:keep]
		if left := len(fitted.Rejected) - keep; left > 0 {
			try.Rejected = append(try.Rejected[:keep:keep], pipeline.Reject{Reason: fmt.Sprintf("and %d more rejected changes (left out to fit the ack)", left)})
		}
		if payload, err = json.Marshal(&try); err != nil || len(payload) <= max || keep == 0 {
			return payload, err
		}
	}
}

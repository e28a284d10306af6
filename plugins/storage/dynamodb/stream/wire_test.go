package stream

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// The JSON of DynamoDB Streams' GetRecords answer, as the service sends it
// (testdata/*.json hold answers captured from DynamoDB Local).
type wireAnswer struct {
	Records           []wireRecord `json:"Records"`
	NextShardIterator *string      `json:"NextShardIterator"`
}

type wireRecord struct {
	EventID      string `json:"eventID"`
	EventName    string `json:"eventName"`
	EventVersion string `json:"eventVersion"`
	EventSource  string `json:"eventSource"`
	AwsRegion    string `json:"awsRegion"`
	Dynamodb     struct {
		ApproximateCreationDateTime *float64                   `json:"ApproximateCreationDateTime"`
		Keys                        map[string]json.RawMessage `json:"Keys"`
		NewImage                    map[string]json.RawMessage `json:"NewImage"`
		OldImage                    map[string]json.RawMessage `json:"OldImage"`
		SequenceNumber              string                     `json:"SequenceNumber"`
		SizeBytes                   int64                      `json:"SizeBytes"`
		StreamViewType              string                     `json:"StreamViewType"`
	} `json:"dynamodb"`
	UserIdentity *struct {
		PrincipalID string `json:"PrincipalId"`
		Type        string `json:"Type"`
	} `json:"userIdentity"`
}

// decodeAnswers reads a list of GetRecords answers into SDK records.
func decodeAnswers(data []byte) ([]types.Record, error) {
	var answers []wireAnswer
	if err := json.Unmarshal(data, &answers); err != nil {
		return nil, err
	}
	var out []types.Record
	for _, a := range answers {
		for i, w := range a.Records {
			r, err := w.record()
			if err != nil {
				return nil, fmt.Errorf("record %d: %w", i, err)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func (w wireRecord) record() (types.Record, error) {
	sr := &types.StreamRecord{SequenceNumber: &w.Dynamodb.SequenceNumber, SizeBytes: &w.Dynamodb.SizeBytes,
		StreamViewType: types.StreamViewType(w.Dynamodb.StreamViewType)}
	if t := w.Dynamodb.ApproximateCreationDateTime; t != nil {
		at := time.UnixMilli(int64(*t * 1000))
		sr.ApproximateCreationDateTime = &at
	}
	var err error
	if sr.Keys, err = wireMap(w.Dynamodb.Keys); err != nil {
		return types.Record{}, err
	}
	if sr.NewImage, err = wireMap(w.Dynamodb.NewImage); err != nil {
		return types.Record{}, err
	}
	if sr.OldImage, err = wireMap(w.Dynamodb.OldImage); err != nil {
		return types.Record{}, err
	}
	r := types.Record{EventID: &w.EventID, EventName: types.OperationType(w.EventName), EventVersion: &w.EventVersion,
		EventSource: &w.EventSource, AwsRegion: &w.AwsRegion, Dynamodb: sr}
	if u := w.UserIdentity; u != nil {
		r.UserIdentity = &types.Identity{PrincipalId: &u.PrincipalID, Type: &u.Type}
	}
	return r, nil
}

func wireMap(m map[string]json.RawMessage) (map[string]types.AttributeValue, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]types.AttributeValue, len(m))
	for k, raw := range m {
		v, err := wireValue(raw)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

func wireValue(raw json.RawMessage) (types.AttributeValue, error) {
	var v map[string]json.RawMessage
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	if len(v) != 1 {
		return nil, fmt.Errorf("attribute value with %d members", len(v))
	}
	for tag, body := range v {
		dec := json.NewDecoder(bytes.NewReader(body))
		switch tag {
		case "S", "N":
			var s string
			if err := dec.Decode(&s); err != nil {
				return nil, err
			}
			if tag == "S" {
				return &types.AttributeValueMemberS{Value: s}, nil
			}
			return &types.AttributeValueMemberN{Value: s}, nil
		case "B":
			var s string
			if err := dec.Decode(&s); err != nil {
				return nil, err
			}
			b, err := base64.StdEncoding.DecodeString(s)
			return &types.AttributeValueMemberB{Value: b}, err
		case "BOOL", "NULL":
			var b bool
			if err := dec.Decode(&b); err != nil {
				return nil, err
			}
			if tag == "BOOL" {
				return &types.AttributeValueMemberBOOL{Value: b}, nil
			}
			return &types.AttributeValueMemberNULL{Value: b}, nil
		case "SS", "NS", "BS":
			var l []string
			if err := dec.Decode(&l); err != nil {
				return nil, err
			}
			switch tag {
			case "SS":
				return &types.AttributeValueMemberSS{Value: l}, nil
			case "NS":
				return &types.AttributeValueMemberNS{Value: l}, nil
			}
			bs := make([][]byte, len(l))
			for i, s := range l {
				b, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					return nil, err
				}
				bs[i] = b
			}
			return &types.AttributeValueMemberBS{Value: bs}, nil
		case "M":
			var m map[string]json.RawMessage
			if err := dec.Decode(&m); err != nil {
				return nil, err
			}
			mm, err := wireMap(m)
			if mm == nil {
				mm = map[string]types.AttributeValue{}
			}
			return &types.AttributeValueMemberM{Value: mm}, err
		case "L":
			var l []json.RawMessage
			if err := dec.Decode(&l); err != nil {
				return nil, err
			}
			out := make([]types.AttributeValue, len(l))
			for i, e := range l {
				v, err := wireValue(e)
				if err != nil {
					return nil, fmt.Errorf("[%d]: %w", i, err)
				}
				out[i] = v
			}
			return &types.AttributeValueMemberL{Value: out}, nil
		default:
			return nil, fmt.Errorf("unknown attribute type %q", tag)
		}
	}
	panic("unreachable")
}

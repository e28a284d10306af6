package handler

import (
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// StreamRecord converts a record of a Lambda DynamoDB event into the
// DynamoDB Streams record that stream.Converter reads: the same fields,
// the attribute values in the SDK's types.
func StreamRecord(r events.DynamoDBEventRecord) (*types.Record, error) {
	sr := &types.StreamRecord{
		SequenceNumber: aws.String(r.Change.SequenceNumber),
		SizeBytes:      aws.Int64(r.Change.SizeBytes),
		StreamViewType: types.StreamViewType(r.Change.StreamViewType),
	}
	if t := r.Change.ApproximateCreationDateTime.Time; !t.IsZero() {
		sr.ApproximateCreationDateTime = aws.Time(t)
	}
	var err error
	if sr.Keys, err = attrMap(r.Change.Keys); err != nil {
		return nil, fmt.Errorf("record %s: keys: %w", r.EventID, err)
	}
	if sr.NewImage, err = attrMap(r.Change.NewImage); err != nil {
		return nil, fmt.Errorf("record %s: new image: %w", r.EventID, err)
	}
	if sr.OldImage, err = attrMap(r.Change.OldImage); err != nil {
		return nil, fmt.Errorf("record %s: old image: %w", r.EventID, err)
	}
	out := &types.Record{
		AwsRegion:    aws.String(r.AWSRegion),
		Dynamodb:     sr,
		EventID:      aws.String(r.EventID),
		EventName:    types.OperationType(r.EventName),
		EventSource:  aws.String(r.EventSource),
		EventVersion: aws.String(r.EventVersion),
	}
	if id := r.UserIdentity; id != nil {
		out.UserIdentity = &types.Identity{Type: aws.String(id.Type), PrincipalId: aws.String(id.PrincipalID)}
	}
	return out, nil
}

func attrMap(m map[string]events.DynamoDBAttributeValue) (map[string]types.AttributeValue, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]types.AttributeValue, len(m))
	for k, v := range m {
		av, err := attr(v, 0)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", k, err)
		}
		out[k] = av
	}
	return out, nil
}

// maxDepth bounds nesting (DynamoDB allows 32 levels).
const maxDepth = 64

func attr(v events.DynamoDBAttributeValue, depth int) (av types.AttributeValue, err error) {
	defer func() {
		// The events package panics on a value that does not hold its
		// type (a zero value reads as binary without bytes).
		if p := recover(); p != nil {
			av, err = nil, fmt.Errorf("malformed attribute value: %v", p)
		}
	}()
	if depth > maxDepth {
		return nil, fmt.Errorf("nested too deep")
	}
	switch v.DataType() {
	case events.DataTypeString:
		return &types.AttributeValueMemberS{Value: v.String()}, nil
	case events.DataTypeNumber:
		return &types.AttributeValueMemberN{Value: v.Number()}, nil
	case events.DataTypeBoolean:
		return &types.AttributeValueMemberBOOL{Value: v.Boolean()}, nil
	case events.DataTypeNull:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case events.DataTypeBinary:
		return &types.AttributeValueMemberB{Value: v.Binary()}, nil
	case events.DataTypeStringSet:
		return &types.AttributeValueMemberSS{Value: v.StringSet()}, nil
	case events.DataTypeNumberSet:
		return &types.AttributeValueMemberNS{Value: v.NumberSet()}, nil
	case events.DataTypeBinarySet:
		return &types.AttributeValueMemberBS{Value: v.BinarySet()}, nil
	case events.DataTypeList:
		l := v.List()
		out := make([]types.AttributeValue, len(l))
		for i, e := range l {
			av, err := attr(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = av
		}
		return &types.AttributeValueMemberL{Value: out}, nil
	case events.DataTypeMap:
		m := v.Map()
		out := make(map[string]types.AttributeValue, len(m))
		for k, e := range m {
			av, err := attr(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", k, err)
			}
			out[k] = av
		}
		return &types.AttributeValueMemberM{Value: out}, nil
	}
	return nil, fmt.Errorf("unknown attribute type %d", v.DataType())
}

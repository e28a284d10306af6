package sdk

import (
	"context"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/iotod/iotod/pipeline"
)

// The plugin side of an external transport: Publish and Connected are
// calls; a subscription is a stream on which the plugin sends each
// message and iotod sends back its ack or nack.

func (s *server) transportOf() (pipeline.Transport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.transport == nil {
		return nil, status.Error(codes.FailedPrecondition, "no transport configured")
	}
	return s.transport, nil
}

func (s *server) Publish(ctx context.Context, req *PublishRequest) (*PublishReply, error) {
	tr, err := s.transportOf()
	if err != nil {
		return nil, err
	}
	msg := message.NewMessage(req.UUID, req.Payload)
	for k, v := range req.Metadata {
		msg.Metadata.Set(k, v)
	}
	if err := tr.Publish(ctx, req.Channel, req.Site, msg); err != nil {
		return nil, errorStatus(err)
	}
	return &PublishReply{}, nil
}

func (s *server) Connected(context.Context, *ConnectedRequest) (*ConnectedReply, error) {
	tr, err := s.transportOf()
	if err != nil {
		return nil, err
	}
	if c, ok := tr.(interface{ Connected() bool }); ok {
		return &ConnectedReply{Known: true, Connected: c.Connected()}, nil
	}
	return &ConnectedReply{}, nil
}

// Subscribe serves one subscription: it subscribes with the first frame's
// channel and site, says Ready, then sends each message and settles it
// with what iotod answers. Messages not settled when the stream ends are
// nacked, so the transport delivers them again.
func (s *server) Subscribe(stream grpc.ServerStream) error {
	tr, err := s.transportOf()
	if err != nil {
		return err
	}
	var first SubscribeFrame
	if err := stream.RecvMsg(&first); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	msgs, err := tr.Subscribe(ctx, first.Channel, first.Site)
	if err != nil {
		return errorStatus(err)
	}
	if err := stream.SendMsg(&Delivery{Ready: true}); err != nil {
		return err
	}
	var mu sync.Mutex
	pending := map[uint64]*message.Message{}
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range pending {
			m.Nack()
		}
	}()
	go func() {
		defer cancel()
		for {
			var f SubscribeFrame
			if err := stream.RecvMsg(&f); err != nil {
				return
			}
			mu.Lock()
			m := pending[f.N]
			delete(pending, f.N)
			mu.Unlock()
			switch {
			case m == nil: // settled already, or never sent
			case f.Ack:
				m.Ack()
			default:
				m.Nack()
			}
		}
	}()
	var n uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			n++
			mu.Lock()
			pending[n] = m
			mu.Unlock()
			if err := stream.SendMsg(&Delivery{N: n, UUID: m.UUID, Metadata: m.Metadata, Payload: m.Payload}); err != nil {
				return err
			}
		}
	}
}

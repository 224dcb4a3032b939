package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/client"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

const headerStreamID = "Mesos-Stream-Id"

// mesosCaller sends scheduler calls to the master: protobuf, answers read
// by internal/mesoscodec (any event size, enum values newer than
// mesos-go's protos), with the Mesos-Stream-Id of the live subscription.
// It takes the place of mesos-go's httpsched, which reads records of at
// most 4 MiB and drops the live subscription when any call fails
// (mesos-api.md 8.3, pitfall 5): a refused ACKNOWLEDGE must not cost the
// event stream.
type mesosCaller struct {
	cli *httpcli.Client

	mu       sync.Mutex
	streamID string
}

var errNoStreamID = errors.New("the master answered SUBSCRIBE without a Mesos-Stream-Id header")

// Call sends one call. A SUBSCRIBE returns the event stream and makes its
// stream ID the one every later call carries; any other call returns a nil
// response once the master accepted it (202).
func (c *mesosCaller) Call(ctx context.Context, call *scheduler.Call) (mesos.Response, error) {
	opts := []httpcli.RequestOpt{httpcli.Context(ctx)}
	if call.GetType() != scheduler.Call_SUBSCRIBE {
		c.mu.Lock()
		id := c.streamID
		c.mu.Unlock()
		if id != "" {
			opts = append(opts, httpcli.Header(headerStreamID, id))
		}
		return c.cli.Send(client.RequestSingleton(call), client.ResponseClassAuto, opts...)
	}
	resp, err := c.cli.Send(client.RequestSingleton(call), client.ResponseClassAuto, append(opts, httpcli.Close(true))...)
	if err != nil {
		if resp != nil {
			resp.Close()
		}
		return nil, err
	}
	hr, ok := resp.(*httpcli.Response)
	if !ok || hr.Decoder == nil {
		if resp != nil {
			resp.Close()
		}
		return nil, fmt.Errorf("SUBSCRIBE: the master answered without an event stream")
	}
	id := hr.Header.Get(headerStreamID)
	if id == "" {
		resp.Close()
		return nil, errNoStreamID
	}
	c.mu.Lock()
	c.streamID = id
	c.mu.Unlock()
	return resp, nil
}

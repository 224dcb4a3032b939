package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/mesoscodec"
	"github.com/dcos-consul/dcos-consul/scheduler/offers"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// caller talks to the leading master.
type caller struct {
	*mesosCaller
	transport *leaderTransport
	endpoint  *url.URL
}

func (s *Scheduler) newCaller() (*caller, error) {
	endpoint := s.cfg.MesosMaster
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("master %q: %w", endpoint, err)
	}
	if u.Scheme == "zk" {
		// The real endpoint is found in ZooKeeper before each SUBSCRIBE;
		// the transport rewrites the host.
		u = &url.URL{Scheme: "http", Host: "leader.mesos:5050"}
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/api/v1/scheduler"
	lt := &leaderTransport{log: s.log, auth: s.opts.mesosAuth}
	if !strings.HasPrefix(s.cfg.MesosMaster, "zk://") {
		lt.leader = u.Host
	}
	cli := httpcli.New(
		httpcli.Endpoint(u.String()),
		httpcli.Do(httpcli.With(
			httpcli.Timeout(10*time.Second),
			httpcli.Transport(func(t *http.Transport) { t.MaxIdleConnsPerHost = 16 }),
			httpcli.WrapRoundTripper(func(rt http.RoundTripper) http.RoundTripper { lt.base = rt; return lt }),
		)),
	)
	cli.With(mesoscodec.Options(cli)...)
	return &caller{mesosCaller: &mesosCaller{cli: cli}, transport: lt, endpoint: u}, nil
}

func (s *Scheduler) frameworkInfo() *mesos.FrameworkInfo {
	failover := s.cfg.FailoverTimeout.Seconds()
	checkpoint := true
	principal := s.target.Principal
	hostname, _ := os.Hostname()
	fi := &mesos.FrameworkInfo{
		User:            s.target.User,
		Name:            s.target.ServiceName,
		Roles:           s.roles(),
		Principal:       &principal,
		FailoverTimeout: &failover,
		Checkpoint:      &checkpoint,
		Hostname:        &hostname,
		Capabilities: []mesos.FrameworkInfo_Capability{
			{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE},
			{Type: mesos.FrameworkInfo_Capability_RESERVATION_REFINEMENT},
			{Type: mesos.FrameworkInfo_Capability_PARTITION_AWARE},
			{Type: mesos.FrameworkInfo_Capability_TASK_KILLING_STATE},
		},
		Labels: &mesos.Labels{Labels: []mesos.Label{{Key: "dcos_consul_config_id", Value: &s.target.ConfigID}}},
	}
	if s.cfg.APIPort > 0 && hostname != "" {
		webui := fmt.Sprintf("http://%s:%d", hostname, s.cfg.APIPort)
		fi.WebUiURL = &webui
	}
	if s.frameworkID != "" {
		fi.ID = &mesos.FrameworkID{Value: s.frameworkID}
	}
	return fi
}

// roles: the service role, and DC/OS public agents' role when clients run
// there too.
func (s *Scheduler) roles() []string {
	if s.target.ClientsEnabled && s.target.ClientsOnPublic && !s.target.Uninstall && s.target.Role != offers.PublicRole {
		return []string{s.target.Role, offers.PublicRole}
	}
	return []string{s.target.Role}
}

// resubscribeBackoff is the wait before the next SUBSCRIBE after failures
// failed ones in a row (0 after a subscription that lasted a minute):
// 250 ms, doubling, at most max. During a master failover the old master
// refuses or redirects until the new one is elected (about 10 s, its
// ZooKeeper session timeout): with 1, 2, 4, 8 s the scheduler subscribed up
// to 8 s after the election; now at most max (2 s by default) after it. A
// SUBSCRIBE every 2 s from one framework costs a master nothing.
func resubscribeBackoff(failures int, max time.Duration) time.Duration {
	d := 250 * time.Millisecond
	for i := 0; i < failures && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

// loop keeps a subscription alive until ctx is done.
func (s *Scheduler) loop(ctx context.Context) error {
	c, err := s.newCaller()
	if err != nil {
		return err
	}
	s.caller = c
	failures := 0
	for ctx.Err() == nil {
		if s.deregistered {
			s.publish()
			s.wait(ctx, 24*time.Hour) // uninstalled: serve the API until stopped
			continue
		}
		if strings.HasPrefix(s.cfg.MesosMaster, "zk://") {
			leader, err := detectLeader(ctx, s.cfg.MesosMaster, s.log)
			if err != nil {
				s.log.Warn("cannot find the leading master in ZooKeeper", zap.Error(err))
			} else {
				c.transport.setLeader(leader)
			}
		}
		started := time.Now()
		err := s.subscription(ctx)
		s.subscribed = false
		s.metrics.subscribed.Set(0)
		s.publish()
		if ctx.Err() != nil {
			return nil
		}
		var fatal *fatalError
		if errors.As(err, &fatal) {
			return fatal.err
		}
		if s.deregistered {
			continue
		}
		if time.Since(started) > time.Minute {
			failures = 0
		}
		backoff := resubscribeBackoff(failures, s.opts.ResubscribeMax)
		failures++
		if why := authFailure(err, s.cfg.Principal, s.opts.mesosAuth != nil); why != "" {
			if s.opts.mesosAuth != nil {
				s.opts.mesosAuth.Refused()
			}
			s.setErr(errors.New(why)) // /v1/health: 500 with the reason, until a SUBSCRIBE succeeds
			s.log.Error("framework authentication failed", zap.String("reason", why), zap.Duration("backoff", backoff))
		}
		s.log.Warn("subscription ended; subscribing again", zap.Error(err), zap.Duration("backoff", backoff))
		if !s.wait(ctx, backoff) {
			return nil
		}
	}
	return nil
}

// wait sleeps d while still serving operator commands; false if ctx ended.
func (s *Scheduler) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case f := <-s.cmds:
			f()
			s.publish()
		case <-ctx.Done():
			return false
		}
	}
}

var errDeregistered = errors.New("uninstall finished: framework torn down")

type fatalError struct{ err error }

func (f *fatalError) Error() string { return f.err.Error() }

// subscription runs one SUBSCRIBE and its event stream.
func (s *Scheduler) subscription(ctx context.Context) error {
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	call := calls.Subscribe(s.frameworkInfo())
	if s.frameworkID != "" {
		call = call.With(calls.SubscribeTo(s.frameworkID))
	}
	s.log.Info("subscribing", zap.String("master", s.caller.transport.current()), zap.String("framework_id", s.frameworkID))
	resp, err := s.caller.Call(subCtx, call)
	if err != nil {
		return fmt.Errorf("SUBSCRIBE: %w", err)
	}
	defer resp.Close()

	s.sender = newSender(s.callMaster, s.opts.CallTimeout, s.log)
	go s.sender.run(subCtx)
	events := make(chan *scheduler.Event, 1024)
	errc := make(chan error, 1)
	go readEvents(subCtx, resp, events, errc)

	interval := 15 * time.Second
	if s.opts.HeartbeatInterval > 0 {
		interval = s.opts.HeartbeatInterval
	}
	silence := time.Duration(s.opts.HeartbeatMisses) * interval
	watchdog := time.NewTimer(silence)
	defer watchdog.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()

	for {
		select {
		case e := <-events:
			batch := s.checked(drainEvents(e, events))
			for _, e := range batch {
				if e.GetType() == scheduler.Event_SUBSCRIBED && s.opts.HeartbeatInterval == 0 {
					var why string
					interval, why = heartbeatInterval(e.Subscribed, 15*time.Second)
					if why != "" {
						s.log.Warn("heartbeat interval: using the default", zap.String("reason", why), zap.Duration("interval", interval))
					}
					silence = time.Duration(s.opts.HeartbeatMisses) * interval
				}
			}
			if !watchdog.Stop() {
				select {
				case <-watchdog.C:
				default:
				}
			}
			watchdog.Reset(silence)
			if err := s.handle(subCtx, batch); err != nil {
				return err
			}
		case err := <-errc:
			return s.streamEnded(subCtx, err)
		case <-watchdog.C:
			return fmt.Errorf("no event (not even a heartbeat) for %s: dropping the subscription", silence)
		case <-tick.C:
			if stall := s.sender.stalledFor(time.Now()); stall > s.stallAfter() {
				return fmt.Errorf("the master has not answered calls for %s: dropping the subscription", stall.Round(time.Second))
			}
			if s.subscribed {
				if err := s.tick(subCtx); err != nil {
					return err
				}
			}
		case f := <-s.cmds:
			f()
			if s.subscribed {
				if err := s.tick(subCtx); err != nil {
					return err
				}
			}
			s.publish()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stallAfter is how long one batch of calls may take before the master
// is taken for stalled.
func (s *Scheduler) stallAfter() time.Duration { return 2 * s.opts.CallTimeout }

// readEvents decodes the stream until it ends or ctx does.
func readEvents(ctx context.Context, resp mesos.Response, events chan<- *scheduler.Event, errc chan<- error) {
	for {
		e := new(scheduler.Event)
		if err := resp.Decode(e); err != nil {
			errc <- err
			return
		}
		select {
		case events <- e:
		case <-ctx.Done():
			errc <- ctx.Err()
			return
		}
	}
}

// drainEvents takes what else is already waiting, up to a batch's size.
func drainEvents(first *scheduler.Event, events <-chan *scheduler.Event) []*scheduler.Event {
	batch := []*scheduler.Event{first}
	for len(batch) < 2048 {
		select {
		case e := <-events:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

// checked drops the events that cannot be handled, saying why.
func (s *Scheduler) checked(batch []*scheduler.Event) []*scheduler.Event {
	kept := batch[:0]
	for _, e := range batch {
		if err := checkEvent(e); err != nil {
			s.log.Error("Mesos event skipped", zap.Error(err))
			continue
		}
		kept = append(kept, e)
	}
	return kept
}

// streamEnded explains the end of the event stream. When the SUBSCRIBED
// event itself could not be decoded, the framework ID the master gave is
// kept (read from the bytes that name it), so that the next SUBSCRIBE is
// the same framework's, never a new one.
func (s *Scheduler) streamEnded(ctx context.Context, err error) error {
	var de *mesoscodec.DecodeError
	if errors.As(err, &de) && de.FrameworkID != "" && s.frameworkID == "" {
		if perr := s.store.Put(ctx, keyFrameworkID, []byte(de.FrameworkID)); perr != nil {
			return fmt.Errorf("event stream: %w (and the framework ID %s it named could not be stored: %v)", err, de.FrameworkID, perr)
		}
		s.frameworkID = de.FrameworkID
		s.log.Error("the master's SUBSCRIBED event could not be decoded; its framework ID is kept for the next SUBSCRIBE",
			zap.String("framework_id", de.FrameworkID), zap.Error(err))
	}
	return fmt.Errorf("event stream: %w", err)
}

// callMaster sends one call; the sender runs it off the event loop.
func (s *Scheduler) callMaster(ctx context.Context, c *scheduler.Call) error {
	resp, err := s.caller.Call(ctx, c)
	if resp != nil {
		resp.Close()
	}
	return err
}

// outbox collects the calls of one batch; they are sent after the state
// is written.
type outbox struct {
	calls []*scheduler.Call
	acks  []*scheduler.Call
}

func (o *outbox) add(c *scheduler.Call) { o.calls = append(o.calls, c) }

// handle applies a batch of events, writes the state, then acts.
func (s *Scheduler) handle(ctx context.Context, batch []*scheduler.Event) error {
	now := s.now()
	var out outbox
	var offerList []mesos.Offer
	for _, e := range batch {
		switch e.GetType() {
		case scheduler.Event_SUBSCRIBED:
			if err := s.onSubscribed(ctx, e.Subscribed, now, &out); err != nil {
				return err
			}
		case scheduler.Event_OFFERS:
			offerList = append(offerList, e.Offers.Offers...)
		case scheduler.Event_UPDATE:
			s.onUpdate(e.Update.Status, now, &out)
		case scheduler.Event_RESCIND:
			s.log.Debug("offer rescinded", zap.String("offer", e.Rescind.OfferID.Value))
		case scheduler.Event_FAILURE:
			f := e.Failure
			if f.ExecutorID != nil {
				s.log.Warn("executor terminated", zap.String("executor", f.ExecutorID.Value), zap.String("agent", f.GetAgentID().GetValue()),
					zap.Int32("wait_status", f.GetStatus()))
			} else if f.AgentID != nil {
				s.onAgentLost(f.AgentID.Value, &out)
			}
		case scheduler.Event_MESSAGE:
			s.onExecutorMessage(e.Message.ExecutorID.Value, e.Message.Data, now, &out)
		case scheduler.Event_ERROR:
			msg := e.GetError().GetMessage()
			s.log.Error("Mesos master sent ERROR", zap.String("message", msg))
			if strings.Contains(msg, "Framework has been removed") && s.target.Uninstall {
				s.log.Info("uninstall: the framework is already removed")
				if err := s.forgetState(ctx); err != nil {
					return err
				}
				return errDeregistered
			}
			if strings.Contains(msg, "Framework has been removed") {
				// The framework was torn down (or its failover timeout
				// passed). Its ID cannot be used again: register anew and
				// keep the task records, whose reservations survive.
				s.log.Error("framework removed by Mesos: registering a new framework; tasks will be relaunched on their reservations",
					zap.String("old_framework_id", s.frameworkID))
				s.frameworkID = ""
				if err := s.store.Delete(ctx, keyFrameworkID); err != nil {
					return &fatalError{fmt.Errorf("forget the removed framework ID: %w", err)}
				}
			}
			return fmt.Errorf("master error: %s", msg)
		case scheduler.Event_HEARTBEAT:
		default:
			s.log.Debug("event ignored", zap.Stringer("type", e.GetType()))
		}
	}
	if len(offerList) > 0 {
		s.onOffers(offerList, now, &out)
	}
	return s.act(ctx, now, &out)
}

// act reconciles, writes the state and sends the batch's calls.
func (s *Scheduler) act(ctx context.Context, now time.Time, out *outbox) error {
	s.advanceTLSRollout(ctx)
	s.afterChange(now, out)
	if err := s.flush(ctx); err != nil {
		s.setErr(err)
		s.log.Error("cannot write the state: nothing is sent to Mesos until it works again", zap.Error(err))
		return err // drop the subscription: unacknowledged updates come back
	}
	s.setErr(nil)
	if !s.enqueue(out) {
		return fmt.Errorf("the master has not taken the calls of the last %d batches: dropping the subscription", senderQueue)
	}
	if s.target.Uninstall && s.subscribed && len(s.tasks) == 0 && !s.deregistered {
		if err := s.deregister(ctx); err != nil {
			return err
		}
		s.publish()
		return errDeregistered
	}
	s.maybePublish()
	return nil
}

// tick handles time: reconciliation retries, backoffs, replacements.
func (s *Scheduler) tick(ctx context.Context) error {
	var out outbox
	now := s.now()
	s.reconcileCalls(now, &out)
	s.joinMessages(now, &out)
	s.pollRaft()
	s.handOver(now, &out)
	s.pollQuorum()
	if err := s.act(ctx, now, &out); err != nil {
		return err
	}
	// act published unless it did less than 200 ms ago: a second full
	// snapshot here cost 10,000-agent deploys a publish per second.
	s.maybePublish()
	return nil
}

// enqueue hands the batch's calls to the sender, each carrying the
// framework ID: operations and acknowledgements in their own lanes.
func (s *Scheduler) enqueue(out *outbox) bool {
	for _, group := range [][]*scheduler.Call{out.calls, out.acks} {
		for _, c := range group {
			if c.FrameworkID == nil && s.frameworkID != "" {
				c.FrameworkID = &mesos.FrameworkID{Value: s.frameworkID}
			}
		}
	}
	return s.sender.enqueue(out.calls, out.acks)
}

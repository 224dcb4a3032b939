package mesossim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/mesossim/stoutjson"
)

// Tests use 127.1.x.y only. Each cluster takes its own /24 so that agent
// addresses never collide between tests.
var subnet atomic.Int32

const waitLong = 20 * time.Second

var testExecutorBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mesossim-testexec-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testExecutorBin = filepath.Join(dir, "testexecutor")
	out, err := exec.Command("go", "build", "-o", testExecutorBin, "./agent/testdata/testexecutor").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the test executor: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func testOptions(t testing.TB, agents int, inProcess bool) Options {
	n := subnet.Add(1)
	o := Options{
		MasterIP:           "127.1.0.1",
		FirstAgentIP:       fmt.Sprintf("127.1.%d.2", n),
		Agents:             agents,
		InProcess:          inProcess,
		AllocationInterval: 200 * time.Millisecond,
		HeartbeatInterval:  15 * time.Second,
		Logger:             zap.NewNop(),
	}
	if !inProcess {
		o.WorkDir = t.TempDir()
	}
	if os.Getenv("MESOSSIM_TEST_LOG") != "" {
		l, _ := zap.NewDevelopment()
		o.Logger = l
	}
	return o
}

func startCluster(t testing.TB, o Options) *Cluster {
	t.Helper()
	c, err := Start(context.Background(), o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ------------------------------------------------------------ scheduler

// sched is a minimal raw-HTTP scheduler: it posts JSON calls and decodes
// the RecordIO stream with mesos-go's types.
type sched struct {
	t        testing.TB
	url      string
	fwID     string
	streamID string
	resp     *http.Response
	events   chan *scheduler.Event
	done     chan error // stream end
	stash    []*scheduler.Event
	pool     []mesos.Offer // offers seen but not used by offerFrom
	rescinds sync.Map      // offer ID -> true
}

func frameworkInfo(name string, roles ...string) mesos.FrameworkInfo {
	ft := 3600.0
	cp := true
	info := mesos.FrameworkInfo{User: "root", Name: name, FailoverTimeout: &ft, Checkpoint: &cp}
	if len(roles) > 0 {
		info.Roles = roles
		info.Capabilities = append(info.Capabilities, mesos.FrameworkInfo_Capability{Type: mesos.FrameworkInfo_Capability_MULTI_ROLE})
	}
	return info
}

func withCaps(info mesos.FrameworkInfo, caps ...mesos.FrameworkInfo_Capability_Type) mesos.FrameworkInfo {
	for _, c := range caps {
		info.Capabilities = append(info.Capabilities, mesos.FrameworkInfo_Capability{Type: c})
	}
	return info
}

func postJSON(url string, body []byte, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url+"/api/v1/scheduler", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return http.DefaultClient.Do(req)
}

func subscribeRaw(t testing.TB, url string, info mesos.FrameworkInfo) *sched {
	t.Helper()
	call := &scheduler.Call{Type: scheduler.Call_SUBSCRIBE, Subscribe: &scheduler.Call_Subscribe{FrameworkInfo: &info}}
	if info.ID != nil {
		call.FrameworkID = info.ID
	}
	body, _ := json.Marshal(call) // as mesos-go encodes it
	var resp *http.Response
	var err error
	for i := 0; i < 5; i++ { // a kept-alive connection may be to a dead master
		if resp, err = postJSON(url, body, nil); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("subscribe: %d %s", resp.StatusCode, b)
	}
	s := &sched{t: t, url: url, resp: resp, streamID: resp.Header.Get("Mesos-Stream-Id"),
		events: make(chan *scheduler.Event, 10000), done: make(chan error, 1)}
	go s.read()
	t.Cleanup(func() { resp.Body.Close() })
	return s
}

// subscribe subscribes and waits for SUBSCRIBED.
func subscribe(t testing.TB, url string, info mesos.FrameworkInfo) *sched {
	t.Helper()
	s := subscribeRaw(t, url, info)
	ev := s.next(scheduler.Event_SUBSCRIBED, waitLong)
	s.fwID = ev.Subscribed.FrameworkID.Value
	return s
}

func readRecord(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return nil, fmt.Errorf("bad record length %q", line)
	}
	rec := make([]byte, n)
	_, err = io.ReadFull(r, rec)
	return rec, err
}

func (s *sched) read() {
	r := bufio.NewReader(s.resp.Body)
	for {
		rec, err := readRecord(r)
		if err != nil {
			s.done <- err
			close(s.events)
			return
		}
		// stout's rules, as a client that tolerates a real 1.12 master must
		// (mesos-go's own decoder refuses QUOTA_V2).
		var ev scheduler.Event
		v, err := stoutjson.Parse(rec)
		if err == nil {
			err = stoutjson.Decode(v, &ev)
		}
		if err != nil {
			s.done <- fmt.Errorf("decode %s: %w", rec, err)
			close(s.events)
			return
		}
		if ev.Type == scheduler.Event_RESCIND {
			s.rescinds.Store(ev.Rescind.OfferID.Value, true)
		}
		s.events <- &ev
	}
}

// next returns the next event of type typ, skipping others (heartbeats,
// offers, ...). It fails the test on timeout or stream end.
func (s *sched) next(typ scheduler.Event_Type, d time.Duration) *scheduler.Event {
	s.t.Helper()
	ev := s.nextOr(typ, d)
	if ev == nil {
		s.t.Fatalf("no %s event within %v", typ, d)
	}
	return ev
}

// Skipped events (other than heartbeats) are kept and returned first by a
// later call for their type.
func (s *sched) nextOr(typ scheduler.Event_Type, d time.Duration) *scheduler.Event {
	s.t.Helper()
	for i, ev := range s.stash {
		if ev.Type == typ {
			s.stash = append(s.stash[:i:i], s.stash[i+1:]...)
			return ev
		}
	}
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return nil
			}
			if ev.Type == typ {
				return ev
			}
			if ev.Type != scheduler.Event_HEARTBEAT {
				s.stash = append(s.stash, ev)
			}
		case <-deadline:
			return nil
		}
	}
}

// drop forgets stashed events of a type.
func (s *sched) drop(typ scheduler.Event_Type) {
	var keep []*scheduler.Event
	for _, ev := range s.stash {
		if ev.Type != typ {
			keep = append(keep, ev)
		}
	}
	s.stash = keep
}

// update waits for the next UPDATE of task id.
func (s *sched) update(id string, d time.Duration) mesos.TaskStatus {
	s.t.Helper()
	deadline := time.Now().Add(d)
	var other []*scheduler.Event
	defer func() { s.stash = append(other, s.stash...) }()
	for {
		ev := s.next(scheduler.Event_UPDATE, time.Until(deadline))
		if ev.Update.Status.TaskID.Value == id {
			return ev.Update.Status
		}
		other = append(other, ev)
	}
}

func (s *sched) offers(d time.Duration) []mesos.Offer {
	s.t.Helper()
	return s.next(scheduler.Event_OFFERS, d).Offers.Offers
}

func (s *sched) call(c *scheduler.Call) (int, string) {
	s.t.Helper()
	if c.FrameworkID == nil && c.Type != scheduler.Call_SUBSCRIBE {
		c.FrameworkID = &mesos.FrameworkID{Value: s.fwID}
	}
	body, _ := json.Marshal(c) // as mesos-go encodes it
	resp, err := postJSON(s.url, body, map[string]string{"Mesos-Stream-Id": s.streamID})
	if err != nil {
		s.t.Fatalf("call %s: %v", c.Type, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *sched) mustCall(c *scheduler.Call) {
	s.t.Helper()
	if code, body := s.call(c); code != http.StatusAccepted && code != http.StatusOK {
		s.t.Fatalf("call %s: %d %s", c.Type, code, body)
	}
}

func (s *sched) ack(st mesos.TaskStatus) {
	s.t.Helper()
	if len(st.UUID) == 0 {
		s.t.Fatalf("ack of an update without uuid: %+v", st)
	}
	s.mustCall(&scheduler.Call{Type: scheduler.Call_ACKNOWLEDGE, Acknowledge: &scheduler.Call_Acknowledge{
		AgentID: *st.AgentID, TaskID: st.TaskID, UUID: st.UUID}})
}

func (s *sched) decline(offers []mesos.Offer, refuse float64) {
	s.t.Helper()
	var ids []mesos.OfferID
	for _, o := range offers {
		ids = append(ids, o.ID)
	}
	s.mustCall(&scheduler.Call{Type: scheduler.Call_DECLINE, Decline: &scheduler.Call_Decline{OfferIDs: ids, Filters: &mesos.Filters{RefuseSeconds: &refuse}}})
}

func (s *sched) accept(offers []mesos.Offer, refuse float64, ops ...mesos.Offer_Operation) {
	s.t.Helper()
	var ids []mesos.OfferID
	for _, o := range offers {
		ids = append(ids, o.ID)
	}
	s.mustCall(&scheduler.Call{Type: scheduler.Call_ACCEPT, Accept: &scheduler.Call_Accept{OfferIDs: ids, Operations: ops, Filters: &mesos.Filters{RefuseSeconds: &refuse}}})
}

// ------------------------------------------------------------ builders

func res(name string, v float64, role string) mesos.Resource {
	r := scalarRes(name, v)
	if role != "" {
		r.AllocationInfo = &mesos.Resource_AllocationInfo{Role: proto.String(role)}
	}
	return r
}

func portsRes(b, e uint64, role string) mesos.Resource {
	r := rangesRes("ports", []mesos.Value_Range{{Begin: b, End: e}})
	if role != "" {
		r.AllocationInfo = &mesos.Resource_AllocationInfo{Role: proto.String(role)}
	}
	return r
}

func customExecutor(id string, role string) *mesos.ExecutorInfo {
	return &mesos.ExecutorInfo{
		Type:       mesos.ExecutorInfo_CUSTOM,
		ExecutorID: mesos.ExecutorID{Value: id},
		Name:       proto.String("test executor " + id),
		Command:    &mesos.CommandInfo{Value: proto.String(testExecutorBin), Shell: proto.Bool(false)},
		Resources:  []mesos.Resource{res("cpus", 0.1, role), res("mem", 32, role)},
	}
}

func taskInfo(id, agentID string, ex *mesos.ExecutorInfo, rs ...mesos.Resource) mesos.TaskInfo {
	return mesos.TaskInfo{Name: id, TaskID: mesos.TaskID{Value: id}, AgentID: mesos.AgentID{Value: agentID}, Executor: ex, Resources: rs}
}

func launch(tasks ...mesos.TaskInfo) mesos.Offer_Operation {
	return mesos.Offer_Operation{Type: mesos.Offer_Operation_LAUNCH, Launch: &mesos.Offer_Operation_Launch{TaskInfos: tasks}}
}

func getState(t testing.TB, url string) map[string]interface{} {
	t.Helper()
	resp, err := http.Get(url + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]interface{}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// eventually polls f until it returns true.
func eventually(t testing.TB, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func itoa(n int) string { return strconv.Itoa(n) }

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// jsonUnmarshal decodes a Mesos JSON record with stout's rules.
func jsonUnmarshal(b []byte, v interface{}) error {
	g, err := stoutjson.Parse(b)
	if err != nil {
		return err
	}
	return stoutjson.Decode(g, v)
}

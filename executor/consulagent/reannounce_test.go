package consulagent

import (
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

func TestReannounceWait(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		joinedAt time.Time
		now      time.Time
		done     bool
		due      bool
		left     time.Duration
	}{
		{"not joined yet", time.Time{}, t0, false, false, 0},
		{"just joined", t0, t0, false, false, reannounceAfter},
		{"half way", t0, t0.Add(reannounceAfter / 2), false, false, reannounceAfter / 2},
		{"due", t0, t0.Add(reannounceAfter), false, true, 0},
		{"overdue (an earlier try failed)", t0, t0.Add(time.Hour), false, true, 0},
		{"done", t0, t0.Add(time.Hour), true, false, 0},
	}
	for _, c := range cases {
		due, left := reannounceWait(c.joinedAt, c.now, c.done)
		if due != c.due || left != c.left {
			t.Errorf("%s: got due %v, left %v; want %v, %v", c.name, due, left, c.due, c.left)
		}
	}
}

func TestReannounceTarget(t *testing.T) {
	self := "127.0.0.5:8301"
	alive := map[string]bool{self: true, "127.0.0.3:8301": true, "127.0.0.9:8301": true, "127.0.0.2:8301": false}
	cases := []struct {
		name    string
		targets []string
		alive   map[string]bool
		want    string
	}{
		{"first alive target", []string{"127.0.0.2:8301", "127.0.0.9:8301", "127.0.0.3:8301"}, alive, "127.0.0.9:8301"},
		{"never itself", []string{self, "127.0.0.3:8301"}, alive, "127.0.0.3:8301"},
		{"no alive target: lowest alive member", []string{"127.0.0.2:8301"}, alive, "127.0.0.3:8301"},
		{"alone", []string{self}, map[string]bool{self: true}, ""},
	}
	for _, c := range cases {
		if got := reannounceTarget(c.targets, self, c.alive); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// serfNode starts a serf member on 127.0.0.1:port (0: any free port) with
// push-pulls every 0.5 s.
func serfNode(t *testing.T, name string, port int) *serf.Serf {
	t.Helper()
	c := serf.DefaultConfig()
	c.NodeName = name
	c.Logger = log.New(io.Discard, "", 0)
	c.MemberlistConfig = memberlist.DefaultLocalConfig()
	c.MemberlistConfig.Name = name
	c.MemberlistConfig.BindAddr = "127.0.0.1"
	c.MemberlistConfig.BindPort = port
	c.MemberlistConfig.AdvertisePort = port
	c.MemberlistConfig.PushPullInterval = 500 * time.Millisecond
	c.MemberlistConfig.Logger = log.New(io.Discard, "", 0)
	s, err := serf.Create(c)
	if err != nil {
		t.Fatalf("serf %s: %v", name, err)
	}
	return s
}

func serfAddr(s *serf.Serf) string {
	m := s.LocalMember()
	return net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port)))
}

func memberStatus(s *serf.Serf, name string) serf.MemberStatus {
	for _, m := range s.Members() {
		if m.Name == name {
			return m.Status
		}
	}
	return serf.StatusNone
}

func waitStatus(s *serf.Serf, name string, want serf.MemberStatus, within time.Duration) error {
	deadline := time.Now().Add(within)
	for memberStatus(s, name) != want {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s sees %s %s after %s, want %s", s.LocalMember().Name, name, memberStatus(s, name), within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// TestRepeatedJoinLiftsAStaleLeave stages, with serf itself, what the
// repeated join works around (see reannounceAfter), deterministically:
// X, with a Lamport time well ahead, leaves P's pool; F joins through P
// and so holds a leave intent for X at P's status time + 1; P goes away;
// X comes back through Q (a pool whose clock is behind) and F joins Q.
// F then takes X as leaving and keeps it so: every later push-pull carries
// X's status time no newer than that intent. A second join of X (the call
// Agent.reannounce makes) has F see X alive.
func TestRepeatedJoinLiftsAStaleLeave(t *testing.T) {
	p := serfNode(t, "P", 0)
	x := serfNode(t, "X", 0)
	t.Cleanup(func() { _ = p.Shutdown(); _ = x.Shutdown() })
	for i := 0; i < 10; i++ { // each join is a join intent: X's time runs ahead
		if _, err := x.Join([]string{serfAddr(p)}, true); err != nil {
			t.Fatalf("join: %v", err)
		}
	}
	if err := waitStatus(p, "X", serf.StatusAlive, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := x.Leave(); err != nil {
		t.Fatalf("leave: %v", err)
	}
	_ = x.Shutdown()
	if err := waitStatus(p, "X", serf.StatusLeft, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // P's retransmissions of the leave are over

	f := serfNode(t, "F", 0)
	t.Cleanup(func() { _ = f.Shutdown() })
	if _, err := f.Join([]string{serfAddr(p)}, true); err != nil {
		t.Fatalf("F join: %v", err)
	}
	_ = p.Shutdown()

	q := serfNode(t, "Q", 0)
	x2 := serfNode(t, "X", 0)
	t.Cleanup(func() { _ = q.Shutdown(); _ = x2.Shutdown() })
	if _, err := x2.Join([]string{serfAddr(q)}, true); err != nil {
		t.Fatalf("X rejoin: %v", err)
	}
	if _, err := f.Join([]string{serfAddr(q)}, true); err != nil {
		t.Fatalf("F join Q: %v", err)
	}
	if err := waitStatus(f, "X", serf.StatusLeaving, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // many push-pulls
	if got := memberStatus(f, "X"); got != serf.StatusLeaving {
		t.Fatalf("without a repeated join F sees X %s; the test expects serf's stale leave (leaving)", got)
	}
	if got := memberStatus(q, "X"); got != serf.StatusAlive {
		t.Fatalf("Q sees X %s, want alive", got)
	}

	if _, err := x2.Join([]string{serfAddr(q)}, true); err != nil { // as Agent.reannounce
		t.Fatalf("repeated join: %v", err)
	}
	if err := waitStatus(f, "X", serf.StatusAlive, 10*time.Second); err != nil {
		t.Fatalf("after X's repeated join: %v", err)
	}
}

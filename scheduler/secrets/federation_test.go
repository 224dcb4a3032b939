package secrets

import (
	"crypto/rand"
	"testing"
	"time"
)

func TestUseGossipKey(t *testing.T) {
	s, _, _ := Fill(Secrets{}, nil2rand())
	generated := s.GossipKey()
	shared, _ := NewGossipKey(rand.Reader)

	// A new service takes the shared key as its only key.
	fresh, changed := UseGossipKey(s, shared, true)
	if !changed || fresh.GossipKey() != shared || len(fresh.GossipKeys) != 1 || fresh.RotatingTo != "" {
		t.Fatalf("fresh: changed %v, %d keys, rotating %v", changed, len(fresh.GossipKeys), fresh.RotatingTo != "")
	}
	if again, changed := UseGossipKey(fresh, shared, false); changed || again.GossipKey() != shared {
		t.Fatal("the key in use again: not a change")
	}

	// A running service rotates to it: the old key stays primary until
	// the rotation's steps promote the shared one.
	r, changed := UseGossipKey(s, shared, false)
	if !changed || r.GossipKey() != generated || r.RotatingTo != shared || len(r.GossipKeys) != 2 {
		t.Fatalf("running: changed %v, primary kept %v, %d keys", changed, r.GossipKey() == generated, len(r.GossipKeys))
	}
	if again, changed := UseGossipKey(r, shared, false); changed || again.RotatingTo != shared || len(again.GossipKeys) != 2 {
		t.Fatal("a rotation to the shared key under way is resumed, not restarted")
	}
	// BeginRotation resumes it (rotateGossipKey's first step).
	if b, changed, _ := BeginRotation(r, nil); changed || b.RotatingTo != shared {
		t.Fatal("BeginRotation does not resume the rotation to the shared key")
	}
	done := FinishRotation(PromoteRotation(r))
	if done.GossipKey() != shared || len(done.GossipKeys) != 1 {
		t.Fatalf("after the rotation: %d keys", len(done.GossipKeys))
	}

	// A rotation under way to another key is redirected to the shared
	// one; the other key goes with the old ones at the end.
	other, _, _ := BeginRotation(s, rand.Reader)
	red, changed := UseGossipKey(other, shared, false)
	if !changed || red.RotatingTo != shared || len(red.GossipKeys) != 3 || red.GossipKey() != generated {
		t.Fatalf("redirected: changed %v, %d keys", changed, len(red.GossipKeys))
	}
	if f := FinishRotation(PromoteRotation(red)); f.GossipKey() != shared || len(f.GossipKeys) != 1 {
		t.Fatal("a redirected rotation does not end with the shared key alone")
	}
}

func TestForTaskReplicationToken(t *testing.T) {
	s, _, _ := Fill(Secrets{}, nil2rand())
	if _, err := s.ForTask(Needs{ACL: true, Replication: true}, nil, time.Now()); err == nil {
		t.Fatal("a secondary's server was answered without a replication token")
	}
	s.ReplicationToken = "6a1e33a6-8d57-4b39-a5b3-0f7e3f1c2d11"
	out, err := s.ForTask(Needs{ACL: true, Replication: true}, nil, time.Now())
	if err != nil || out.ACLReplicationToken != s.ReplicationToken || out.ACLAgentToken != s.AgentToken {
		t.Fatalf("a secondary's server: %v", err)
	}
	if out, _ := s.ForTask(Needs{ACL: true}, nil, time.Now()); out.ACLReplicationToken != "" {
		t.Fatal("a client (or a primary's server) got the replication token")
	}
}

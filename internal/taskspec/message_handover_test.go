package taskspec

import (
	"strings"
	"testing"
	"time"
)

func TestHandOverMessageRoundTrip(t *testing.T) {
	data, err := EncodeHandOver(42, "consul-server-1", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := MessageKind(data); err != nil || k != KindHandOver {
		t.Fatalf("kind %q, %v", k, err)
	}
	m, err := DecodeHandOver(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Seq != 42 || m.To != "consul-server-1" || m.Hold() != 3*time.Second {
		t.Fatalf("got %+v", m)
	}
	leave, _ := EncodeLeave("x", time.Second)
	if _, err := DecodeHandOver(leave); err == nil {
		t.Fatal("a leave message decoded as a hand-over")
	}
	if _, err := EncodeHandOver(1, "x", 0); err == nil {
		t.Fatal("a hand-over without a bound was encoded")
	}
	if _, err := DecodeHandOver([]byte(`{"version":1,"kind":"hand_over","seq":1,"hold_ms":0}`)); err == nil || !strings.Contains(err.Error(), "positive") {
		t.Fatalf("want a refusal naming the hold, got %v", err)
	}
}

func TestHandOverReadyRoundTrip(t *testing.T) {
	data, err := EncodeHandOverReady(7, "consul-server-2__abc", true)
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeHandOverReady(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Seq != 7 || m.TaskID != "consul-server-2__abc" || !m.Leads {
		t.Fatalf("got %+v", m)
	}
	// A scheduler message is not an executor's answer.
	ho, _ := EncodeHandOver(7, "x", time.Second)
	if _, err := DecodeHandOverReady(ho); err == nil {
		t.Fatal("a hand-over request decoded as its answer")
	}
	if _, err := DecodeHandOverReady([]byte(`{"version":1,"kind":"hand_over_ready","seq":7}`)); err == nil {
		t.Fatal("an answer without a task ID was accepted")
	}
	if _, err := DecodeHandOverReady([]byte(`not json`)); err == nil {
		t.Fatal("garbage was accepted")
	}
}

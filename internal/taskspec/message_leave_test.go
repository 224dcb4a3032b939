package taskspec

import (
	"strings"
	"testing"
	"time"
)

func TestLeaveMessageRoundTrip(t *testing.T) {
	data, err := EncodeLeave("scale-down", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := MessageKind(data); err != nil || k != KindLeave {
		t.Fatalf("kind %q, %v", k, err)
	}
	m, err := DecodeLeave(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Why != "scale-down" || m.Within() != 30*time.Second {
		t.Fatalf("got %+v", m)
	}
	// A join message is not a leave, and a join decoder refuses a leave.
	join, _ := EncodeJoinUpdate([]string{"10.0.0.1:8301"})
	if _, err := DecodeLeave(join); err == nil {
		t.Fatal("a join message decoded as a leave")
	}
	if _, err := DecodeJoinUpdate(data); err == nil {
		t.Fatal("a leave message decoded as a join update")
	}
}

func TestLeaveMessageRefusesNoBound(t *testing.T) {
	if _, err := EncodeLeave("x", 0); err == nil {
		t.Fatal("a leave without a bound was encoded")
	}
	_, err := DecodeLeave([]byte(`{"version":1,"kind":"leave","why":"x","within_ms":0}`))
	if err == nil || !strings.Contains(err.Error(), "positive") {
		t.Fatalf("want a refusal naming the bound, got %v", err)
	}
	if _, err := DecodeLeave([]byte(`{"version":2,"kind":"leave","within_ms":5}`)); err == nil {
		t.Fatal("another version was accepted")
	}
}

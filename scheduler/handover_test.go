package scheduler

import (
	"testing"
	"time"
)

// TestNextHandOverStep: the hand-over asks the leader's executor first,
// transfers as soon as a fresh answer is in, repeats an unanswered
// request every handOverAskEvery, and after handOverAsks requests without
// an answer transfers without the hold; an answer too old (the hold may
// be over) is asked again; a request for another task counts for nothing.
func TestNextHandOverStep(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sent := func(asks int) handOverAsk {
		return handOverAsk{TaskID: "s0", Seq: 1, SentAt: t0, Asks: asks}
	}
	answered := sent(1)
	answered.ReadyAt = t0.Add(10 * time.Millisecond)
	for _, tc := range []struct {
		name string
		ask  handOverAsk
		now  time.Time
		want handOverStep
	}{
		{"nothing asked yet", handOverAsk{}, t0, handOverSend},
		{"asked for another task", sent(1), t0, handOverSend},
		{"answer pending", sent(1), t0.Add(500 * time.Millisecond), handOverWait},
		{"answered", answered, t0.Add(20 * time.Millisecond), handOverTransfer},
		{"answered too long ago", answered, t0.Add(handOverFresh), handOverSend},
		{"unanswered: ask again", sent(1), t0.Add(handOverAskEvery), handOverSend},
		{"unanswered after the last request", sent(handOverAsks), t0.Add(handOverAskEvery), handOverUnheld},
		{"last request still pending", sent(handOverAsks), t0.Add(handOverAskEvery / 2), handOverWait},
	} {
		task := "s0"
		if tc.name == "asked for another task" {
			task = "s1"
		}
		if got := nextHandOverStep(tc.ask, task, tc.now); got != tc.want {
			t.Errorf("%s: step %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestWaitsShape: a wait whose figures alone changed is the same wait
// (logged once); another reason is not.
func TestWaitsShape(t *testing.T) {
	a := "consul-server-4: leaving the Consul cluster gracefully (asked 1s ago; within 45s)"
	b := "consul-server-4: leaving the Consul cluster gracefully (asked 12s ago; within 45s)"
	if waitsShape(a) != waitsShape(b) {
		t.Errorf("%q and %q differ only in figures", a, b)
	}
	other := "consul-server-3: leaving the Consul cluster gracefully (asked 1s ago; within 45s)"
	if waitsShape(a) == waitsShape("gate: Consul has no raft leader") || waitsShape(a) == waitsShape("") || waitsShape(a) == waitsShape(other) {
		t.Error("different waits have one shape")
	}
}

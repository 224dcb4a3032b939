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

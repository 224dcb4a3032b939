package mesossim

import (
	"testing"
	"time"
)

// A quiet agent is skipped only while nothing that could change the
// allocator's conclusion has changed.
func TestQuietNoteHolds(t *testing.T) {
	now := time.Now()
	q := quietNote{valid: true, books: 3, gen: 7}
	if !q.holds(3, 7, now) {
		t.Fatal("nothing changed and no filter: the agent stays quiet")
	}
	if q.holds(4, 7, now) {
		t.Fatal("the agent's resources changed: it must be looked at again")
	}
	if q.holds(3, 8, now) {
		t.Fatal("a framework subscribed or revived: the agent must be looked at again")
	}
	q.until(now.Add(5 * time.Second))
	q.until(now.Add(time.Minute)) // a later filter does not extend the note
	if !q.holds(3, 7, now.Add(4*time.Second)) {
		t.Fatal("before the first filter expires the agent stays quiet")
	}
	if q.holds(3, 7, now.Add(5*time.Second)) {
		t.Fatal("when the first filter expires the agent must be looked at again")
	}
	if (quietNote{}).holds(0, 0, now) {
		t.Fatal("no note: never skipped")
	}
}

package scheduler

import (
	"context"
	"errors"
	"testing"
	"time"
)

// loopless is a Scheduler with only what inLoop uses; the test plays the
// loop by receiving from cmds.
func loopless() *Scheduler {
	return &Scheduler{cmds: make(chan func(), 1), done: make(chan struct{})}
}

func TestInLoopAbandonedCommandNeverRuns(t *testing.T) {
	s := loopless()
	ctx, cancel := context.WithCancel(context.Background())
	ran := false
	res := make(chan error, 1)
	go func() { res <- s.inLoop(ctx, func() error { ran = true; return nil }) }()
	cmd := <-s.cmds // queued, not yet run
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("inLoop = %v, want context.Canceled", err)
	}
	cmd() // the loop reaches it after the caller gave up
	if ran {
		t.Fatal("an abandoned command ran after its caller returned")
	}
}

func TestInLoopWaitsForACommandAlreadyRunning(t *testing.T) {
	s := loopless()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	var got []string
	res := make(chan error, 1)
	go func() {
		res <- s.inLoop(ctx, func() error {
			close(started)
			time.Sleep(100 * time.Millisecond) // the caller's ctx ends meanwhile
			got = append(got, "server-0")
			return nil
		})
	}()
	cmd := <-s.cmds
	go cmd()
	<-started
	cancel()
	if err := <-res; err != nil {
		t.Fatalf("inLoop = %v, want the command's own nil", err)
	}
	if len(got) != 1 { // read after inLoop returned: -race checks the ordering
		t.Fatalf("got %v", got)
	}
}

func TestInLoopStoppedLoop(t *testing.T) {
	s := loopless()
	ran := false
	res := make(chan error, 1)
	go func() { res <- s.inLoop(context.Background(), func() error { ran = true; return nil }) }()
	cmd := <-s.cmds
	close(s.done) // the loop stopped without taking it up
	if err := <-res; !errors.Is(err, errStopping) {
		t.Fatalf("inLoop = %v, want errStopping", err)
	}
	cmd()
	if ran {
		t.Fatal("a command ran after the loop stopped and its caller returned")
	}
}

func TestInLoopReturnsTheCommandsError(t *testing.T) {
	s := loopless()
	boom := errors.New("boom")
	res := make(chan error, 1)
	go func() { res <- s.inLoop(context.Background(), func() error { return boom }) }()
	(<-s.cmds)()
	if err := <-res; !errors.Is(err, boom) {
		t.Fatalf("inLoop = %v, want boom", err)
	}
}

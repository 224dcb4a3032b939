package executor

import (
	"testing"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/executor"
)

func upd(task string, state mesos.TaskState, id byte) executor.Call_Update {
	u := make([]byte, 16)
	u[0] = id
	return executor.Call_Update{Status: mesos.TaskStatus{TaskID: mesos.TaskID{Value: task}, State: state.Enum(), UUID: u}}
}

func TestLedger(t *testing.T) {
	t1 := mesos.TaskInfo{TaskID: mesos.TaskID{Value: "t1"}}
	l := newLedger()
	if l.finished() {
		t.Fatal("an executor with no task yet is not finished")
	}
	if !l.launched(t1) || l.launched(t1) {
		t.Fatal("launched: first true, redelivery false")
	}
	tasks, ups := l.subscription()
	if len(tasks) != 1 || len(ups) != 0 {
		t.Fatalf("fresh task: subscription lists %d tasks %d updates", len(tasks), len(ups))
	}

	starting, running, killed := upd("t1", mesos.TASK_STARTING, 1), upd("t1", mesos.TASK_RUNNING, 2), upd("t1", mesos.TASK_KILLED, 3)
	l.record(starting)
	l.record(running)
	if s, _ := l.state(mesos.TaskID{Value: "t1"}); s != mesos.TASK_RUNNING || l.live() != 1 {
		t.Fatalf("state %s live %d", s, l.live())
	}
	tasks, ups = l.subscription()
	if len(tasks) != 1 || len(ups) != 2 || ups[0].Status.UUID[0] != 1 || ups[1].Status.UUID[0] != 2 {
		t.Fatalf("unacked: %d tasks, updates %v (want STARTING then RUNNING)", len(tasks), ups)
	}

	// An ACK for another task's uuid, or an unknown uuid, changes nothing.
	if l.acknowledged(mesos.TaskID{Value: "t2"}, starting.Status.UUID) || l.acknowledged(mesos.TaskID{Value: "t1"}, make([]byte, 16)) {
		t.Fatal("acknowledged a wrong (task, uuid)")
	}
	if !l.acknowledged(mesos.TaskID{Value: "t1"}, running.Status.UUID) {
		t.Fatal("ack of RUNNING not applied")
	}
	tasks, ups = l.subscription()
	if len(tasks) != 0 || len(ups) != 1 || ups[0].Status.UUID[0] != 1 {
		t.Fatalf("after one ack: tasks %d (want 0: the agent has an update of it), updates %v", len(tasks), ups)
	}
	if l.acknowledged(mesos.TaskID{Value: "t1"}, running.Status.UUID) {
		t.Fatal("a duplicate ACK counted twice")
	}

	l.record(killed)
	if !l.terminal(mesos.TaskID{Value: "t1"}) || l.live() != 0 || l.finished() {
		t.Fatalf("terminal recorded: terminal=%v live=%d finished=%v (want finished only after the ACKs)",
			l.terminal(mesos.TaskID{Value: "t1"}), l.live(), l.finished())
	}
	l.acknowledged(mesos.TaskID{Value: "t1"}, killed.Status.UUID)
	if l.finished() || l.pending() != 1 {
		t.Fatal("STARTING is still unacknowledged")
	}
	l.acknowledged(mesos.TaskID{Value: "t1"}, starting.Status.UUID)
	if !l.finished() {
		t.Fatal("every update acknowledged and no live task: finished")
	}
}

func TestIsTerminal(t *testing.T) {
	for s, want := range map[mesos.TaskState]bool{
		mesos.TASK_STARTING: false, mesos.TASK_RUNNING: false, mesos.TASK_KILLING: false,
		mesos.TASK_KILLED: true, mesos.TASK_FAILED: true, mesos.TASK_FINISHED: true, mesos.TASK_ERROR: true,
		mesos.TASK_LOST: true, mesos.TASK_DROPPED: true, mesos.TASK_GONE: true,
	} {
		if isTerminal(s) != want {
			t.Errorf("isTerminal(%s) = %v", s, !want)
		}
	}
}

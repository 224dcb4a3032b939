package scheduler

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
	"github.com/dcos-consul/dcos-consul/scheduler/store"
)

// A 2 MB status message is stored truncated, and records whose sum is
// over one transaction's limit are flushed in several: the flush succeeds
// (it used to fail forever, the same updates coming back each time).
func TestSaveTasksLargeMessagesAndManyRecords(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenFile(ctx, store.Config{Dir: t.TempDir(), Service: "consul"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	tasks := state.Tasks{}
	var names []string
	huge := strings.Repeat("x", 2<<20)
	attrs := map[string]string{"rack": strings.Repeat("r", 1500)} // agents with long attributes
	for i := 0; i < 1500; i++ {                                   // 1500 records of ~3 KB: 400 of them are over one 1 MB transaction
		name := state.ClientName(fmt.Sprintf("S%d", i))
		task := state.Task{Name: name, Role: taskspec.RoleClient, TaskID: name + "__a", AgentID: fmt.Sprintf("S%d", i), State: "TASK_RUNNING", AgentValues: attrs}
		s := mesos.TaskStatus{TaskID: mesos.TaskID{Value: task.TaskID}, State: mesos.TASK_FAILED.Enum(), Message: &huge}
		task, _ = state.ApplyStatus(task, s, time.Now())
		tasks[name] = task
		names = append(names, name)
	}
	if err := saveTasks(ctx, st, tasks, names, nil); err != nil {
		t.Fatalf("flush: %v", err)
	}
	p, err := load(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Tasks) != len(names) {
		t.Fatalf("stored %d records, want %d", len(p.Tasks), len(names))
	}
	got := p.Tasks[names[0]].Message
	if len(got) > state.MaxMessage || !strings.Contains(got, "bytes truncated]") {
		t.Fatalf("stored message of %d bytes: %.80q", len(got), got)
	}
	if err := saveTasks(ctx, st, tasks, nil, names); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if keys, _ := st.List(ctx, prefixTasks); len(keys) != 0 {
		t.Fatalf("%d records left after delete", len(keys))
	}
}

func TestApplyChunksBoundsCountAndBytes(t *testing.T) {
	op := func(n int) store.Op { return store.PutOp("k", make([]byte, n)) }
	over := store.OpSize(op(0))
	for _, tc := range []struct {
		name    string
		ops     []store.Op
		maxOps  int
		maxB    int
		lengths []int
	}{
		{"none", nil, 10, 1000, nil},
		{"by count", []store.Op{op(1), op(1), op(1)}, 2, 1 << 20, []int{2, 1}},
		{"by bytes", []store.Op{op(500), op(500), op(500)}, 10, 2*(500+over) + 1, []int{2, 1}},
		{"one too large alone", []store.Op{op(10), op(5000), op(10)}, 10, 1000, []int{1, 1, 1}},
	} {
		var got []int
		total := 0
		for _, c := range applyChunks(tc.ops, tc.maxOps, tc.maxB) {
			got = append(got, len(c))
			total += len(c)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.lengths) || total != len(tc.ops) {
			t.Errorf("%s: chunks %v, want %v", tc.name, got, tc.lengths)
		}
	}
}

package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
	"github.com/dcos-consul/dcos-consul/scheduler/plan"
	"github.com/dcos-consul/dcos-consul/scheduler/state"
	"github.com/dcos-consul/dcos-consul/scheduler/store"
)

// Store is the part of the state store the scheduler uses (scheduler/store
// implements it with bbolt and ZooKeeper). Get wraps store.ErrNotFound for
// a missing key.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string) ([]string, error)
}

// batcher is implemented by stores that write several keys atomically.
type batcher interface {
	Apply(ctx context.Context, ops ...store.Op) error
}

// Keys of the scheduler's state.
const (
	keyFrameworkID = "framework-id"
	keyTarget      = "target"
	// keyConfig is the whole configuration the target was derived from,
	// compared at start with the new one (config.CheckUpdate).
	keyConfig   = "config"
	prefixTasks = "tasks/"
	// applyChunk bounds the records written by one Apply; the bytes are
	// bounded too (store.MaxApplySize: one ZooKeeper multi stays under
	// 1 MB, whatever the records' sizes).
	applyChunk = 400
)

// persisted is what the scheduler keeps across restarts.
type persisted struct {
	FrameworkID string
	Target      *state.Target
	Config      *config.Config
	Tasks       state.Tasks
	Control     plan.Control
}

func load(ctx context.Context, st Store) (persisted, error) {
	p := persisted{Tasks: state.Tasks{}}
	b, err := st.Get(ctx, keyFrameworkID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return p, fmt.Errorf("read the framework ID: %w", err)
	default:
		p.FrameworkID = strings.TrimSpace(string(b))
	}
	b, err = st.Get(ctx, keyTarget)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return p, fmt.Errorf("read the target configuration: %w", err)
	default:
		t, err := state.DecodeTarget(b)
		if err != nil {
			return p, fmt.Errorf("stored key %q: %v; fix or delete it", keyTarget, err)
		}
		p.Target = &t
	}
	b, err = st.Get(ctx, keyConfig)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return p, fmt.Errorf("read the stored configuration: %w", err)
	default:
		c, err := config.DecodeStored(b)
		if err != nil {
			return p, fmt.Errorf("stored key %q is %v; fix or delete it (the target is kept)", keyConfig, err)
		}
		p.Config = &c
	}
	b, err = st.Get(ctx, keyPlanControl)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return p, fmt.Errorf("read the plan control: %w", err)
	default:
		if err := json.Unmarshal(b, &p.Control); err != nil {
			return p, fmt.Errorf("stored key %q is not the plans' control (%v); fix or delete it (no plan is paused then)", keyPlanControl, err)
		}
	}
	keys, err := st.List(ctx, prefixTasks)
	if err != nil {
		return p, fmt.Errorf("list task records: %w", err)
	}
	for _, k := range keys {
		b, err := st.Get(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return p, fmt.Errorf("read task record %q: %w", k, err)
		}
		name := strings.TrimPrefix(k, prefixTasks)
		t, err := state.DecodeTask(name, b)
		if err != nil {
			return p, fmt.Errorf("stored task record %q is not valid: %v; fix or delete it", k, err)
		}
		p.Tasks[name] = t
	}
	return p, nil
}

func taskKey(name string) string { return prefixTasks + name }

// saveTasks writes changed records and deletes removed ones, atomically
// per chunk when the store can. Chunks are bounded by count and by bytes
// (store.MaxApplySize), so large records cannot make every flush fail.
func saveTasks(ctx context.Context, st Store, tasks state.Tasks, changed, deleted []string) error {
	sort.Strings(changed)
	sort.Strings(deleted)
	ops := make([]store.Op, 0, len(changed)+len(deleted))
	for _, n := range changed {
		v, err := json.Marshal(tasks[n])
		if err != nil {
			return fmt.Errorf("encode task record %s: %w", n, err)
		}
		ops = append(ops, store.PutOp(taskKey(n), v))
	}
	for _, n := range deleted {
		ops = append(ops, store.DeleteOp(taskKey(n)))
	}
	if b, ok := st.(batcher); ok {
		for _, chunk := range applyChunks(ops, applyChunk, store.MaxApplySize) {
			if err := b.Apply(ctx, chunk...); err != nil {
				return fmt.Errorf("write task records (%d ops from %s): %w", len(chunk), chunk[0].Key, err)
			}
		}
		return nil
	}
	for _, op := range ops {
		var err error
		if op.Delete {
			err = st.Delete(ctx, op.Key)
		} else {
			err = st.Put(ctx, op.Key, op.Value)
		}
		if err != nil {
			return fmt.Errorf("write task record %s: %w", op.Key, err)
		}
	}
	return nil
}

// applyChunks splits ops, in order, into chunks of at most maxOps ops and
// maxBytes bytes (store.OpSize); an op larger than maxBytes alone is a
// chunk of its own (the store refuses it with its own error).
func applyChunks(ops []store.Op, maxOps, maxBytes int) [][]store.Op {
	var out [][]store.Op
	start, size := 0, 0
	for i, op := range ops {
		n := store.OpSize(op)
		if i > start && (i-start >= maxOps || size+n > maxBytes) {
			out = append(out, ops[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(ops) {
		out = append(out, ops[start:])
	}
	return out
}

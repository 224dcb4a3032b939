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
	// applyChunk bounds the records written by one Apply (one ZooKeeper
	// multi must stay under 1 MB).
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
		var t state.Target
		if err := json.Unmarshal(b, &t); err != nil {
			return p, fmt.Errorf("stored key %q is not a target configuration (%v); fix or delete it", keyTarget, err)
		}
		p.Target = &t
	}
	b, err = st.Get(ctx, keyConfig)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return p, fmt.Errorf("read the stored configuration: %w", err)
	default:
		var c config.Config
		if err := json.Unmarshal(b, &c); err != nil {
			return p, fmt.Errorf("stored key %q is not a configuration (%v); fix or delete it (the target is kept)", keyConfig, err)
		}
		if err := c.Validate(); err != nil {
			return p, fmt.Errorf("stored key %q is not a valid configuration (%v); fix or delete it (the target is kept)", keyConfig, err)
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
		var t state.Task
		if err := json.Unmarshal(b, &t); err != nil {
			return p, fmt.Errorf("stored task record %q is not valid (%v); fix or delete it", k, err)
		}
		name := strings.TrimPrefix(k, prefixTasks)
		if t.Name != name {
			return p, fmt.Errorf("stored task record %q names task %q", k, t.Name)
		}
		p.Tasks[name] = t
	}
	return p, nil
}

func taskKey(name string) string { return prefixTasks + name }

// saveTasks writes changed records and deletes removed ones, atomically
// per chunk when the store can.
func saveTasks(ctx context.Context, st Store, tasks state.Tasks, changed, deleted []string) error {
	sort.Strings(changed)
	sort.Strings(deleted)
	if b, ok := st.(batcher); ok {
		var ops []store.Op
		flush := func() error {
			if len(ops) == 0 {
				return nil
			}
			err := b.Apply(ctx, ops...)
			ops = ops[:0]
			return err
		}
		for _, n := range changed {
			v, err := json.Marshal(tasks[n])
			if err != nil {
				return err
			}
			ops = append(ops, store.PutOp(taskKey(n), v))
			if len(ops) >= applyChunk {
				if err := flush(); err != nil {
					return fmt.Errorf("write task records: %w", err)
				}
			}
		}
		for _, n := range deleted {
			ops = append(ops, store.DeleteOp(taskKey(n)))
			if len(ops) >= applyChunk {
				if err := flush(); err != nil {
					return fmt.Errorf("delete task records: %w", err)
				}
			}
		}
		if err := flush(); err != nil {
			return fmt.Errorf("write task records: %w", err)
		}
		return nil
	}
	for _, n := range changed {
		v, err := json.Marshal(tasks[n])
		if err != nil {
			return err
		}
		if err := st.Put(ctx, taskKey(n), v); err != nil {
			return fmt.Errorf("write task record %s: %w", n, err)
		}
	}
	for _, n := range deleted {
		if err := st.Delete(ctx, taskKey(n)); err != nil {
			return fmt.Errorf("delete task record %s: %w", n, err)
		}
	}
	return nil
}

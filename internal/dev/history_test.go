package dev

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	consul "github.com/hashicorp/consul/api"
)

// history records operations on one Consul key as a register (Jepsen's
// method, checked with porcupine): each write's and ?consistent read's
// call and return time. A write whose outcome is unknown (timeout, error)
// stays open: its return is "never", so it may or may not have happened.
//
// The register is one Consul key at a time (a register per key): the
// availability test moves to a new key at each scenario, so porcupine
// checks each scenario's operations on their own (Model.Partition) and an
// open write stays within its scenario.
type history struct {
	mu    sync.Mutex
	ops   []porcupine.Operation
	key   string    // the key operations go to now ("" is rollingKey)
	since time.Time // when key was set: a new key every keyEpoch after
}

// keyEpoch: with a key set, operations move to a fresh key every 2 s
// (key/0, key/1, ...). Linearizability is local (a history is linearizable
// iff each object's is), so each key is checked on its own and an open
// write (unknown outcome) only widens the search of its 2 s; on one key
// per scenario porcupine ran out of its 3 minutes.
const keyEpoch = 2 * time.Second

// rollingKey is the key when the history has not moved to another.
const rollingKey = "rolling/last"

type regInput struct {
	key   string
	write bool
	value int
}

// setKey moves the writers and readers to another key.
func (h *history) setKey(k string) {
	h.mu.Lock()
	h.key, h.since = k, time.Now()
	h.mu.Unlock()
}

// currentKey is the key operations go to now.
func (h *history) currentKey() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.key == "" {
		return rollingKey
	}
	return fmt.Sprintf("%s/%d", h.key, int(time.Since(h.since)/keyEpoch))
}

func (h *history) add(client int, in regInput, out int, call, ret time.Time, known bool) {
	r := int64(math.MaxInt64)
	if known {
		r = ret.UnixNano()
	}
	h.mu.Lock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call.UnixNano(), Return: r})
	h.mu.Unlock()
}

// registerModel: reads return the last written value (0 before any).
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(regInput).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return 0 },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		in := input.(regInput)
		if in.write {
			return true, in.value
		}
		return output.(int) == state.(int), state
	},
	DescribeOperation: func(input, output interface{}) string {
		in := input.(regInput)
		if in.write {
			return fmt.Sprintf("write %d", in.value)
		}
		return fmt.Sprintf("read -> %d", output.(int))
	},
}

// check runs porcupine over the history.
func (h *history) check(timeout time.Duration) (porcupine.CheckResult, int) {
	h.mu.Lock()
	ops := append([]porcupine.Operation(nil), h.ops...)
	h.mu.Unlock()
	return porcupine.CheckOperationsTimeout(registerModel, ops, timeout), len(ops)
}

// startReaders reads the history's current key with ?consistent through every server
// (one client each) until ctx ends; failed reads are not recorded (they
// have no effect).
func startReaders(ctx context.Context, h *history, cfgs []*consul.Config) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		wg.Add(1)
		cfg = withTimeout(cfg, 2*time.Second)
		go func(client int, cfg *consul.Config) {
			defer wg.Done()
			cl, _ := consul.NewClient(cfg)
			for ctx.Err() == nil {
				key := h.currentKey()
				call := time.Now()
				p, _, err := cl.KV().Get(key, &consul.QueryOptions{RequireConsistent: true})
				ret := time.Now()
				if err == nil {
					v := 0
					if p != nil {
						v, _ = strconv.Atoi(string(p.Value))
					}
					h.add(client, regInput{key: key}, v, call, ret, true)
				}
				time.Sleep(25 * time.Millisecond)
			}
		}(i+1, cfg)
	}
	return &wg
}

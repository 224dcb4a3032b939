package dev

import (
	"context"
	"fmt"
	"math"
	"net/http"
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
type history struct {
	mu  sync.Mutex
	ops []porcupine.Operation
}

type regInput struct {
	write bool
	value int
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

// startReaders reads rolling/last with ?consistent through every server
// (one client each) until ctx ends; failed reads are not recorded (they
// have no effect).
func startReaders(ctx context.Context, h *history, cfgs []*consul.Config) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		wg.Add(1)
		cfg.HttpClient = &http.Client{Timeout: 2 * time.Second}
		go func(client int, cfg *consul.Config) {
			defer wg.Done()
			cl, _ := consul.NewClient(cfg)
			for ctx.Err() == nil {
				call := time.Now()
				p, _, err := cl.KV().Get("rolling/last", &consul.QueryOptions{RequireConsistent: true})
				ret := time.Now()
				if err == nil {
					v := 0
					if p != nil {
						v, _ = strconv.Atoi(string(p.Value))
					}
					h.add(client, regInput{}, v, call, ret, true)
				}
				time.Sleep(25 * time.Millisecond)
			}
		}(i+1, cfg)
	}
	return &wg
}

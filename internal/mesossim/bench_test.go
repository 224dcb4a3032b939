package mesossim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchAgents is the cluster size of the offer-cycle benchmark.
var benchAgents = 10000

// BenchmarkOfferCycle measures one full allocation cycle over 10,000
// in-process agents: every agent's resources offered to a subscribed JSON
// framework, the OFFERS events encoded and written to its stream (read
// and discarded by the client). Run:
//
//	go test ./internal/mesossim -run XXX -bench OfferCycle -benchtime 20x
func BenchmarkOfferCycle(b *testing.B) {
	o := testOptions(b, benchAgents, true)
	o.AllocationInterval = time.Hour // cycles driven by the benchmark only
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	c, err := Start(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	setup := time.Since(start)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	info := frameworkInfo("bench", "r")
	call := &scheduler.Call{Type: scheduler.Call_SUBSCRIBE, Subscribe: &scheduler.Call_Subscribe{FrameworkInfo: &info}}
	body, _ := json.Marshal(call)
	resp, err := http.Post(c.MasterURL()+"/api/v1/scheduler", "application/json", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	go io.Copy(io.Discard, resp.Body)

	m := c.m
	// Wait for the subscription-triggered cycle to offer everything.
	for deadline := time.Now().Add(time.Minute); ; {
		m.mu.Lock()
		n := len(m.offers)
		m.mu.Unlock()
		if n == benchAgents {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d offers", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	t0 := time.Now()
	offers := 0
	for i := 0; i < b.N; i++ {
		m.mu.Lock()
		for _, o := range m.offers {
			m.removeOffer(o, false) // as DECLINE with refuse_seconds 0
		}
		for _, fw := range m.frameworks {
			for k := range fw.filters {
				delete(fw.filters, k)
			}
		}
		m.allocate(time.Now())
		offers += len(m.offers)
		m.mu.Unlock()
	}
	elapsed := time.Since(t0)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	if offers != b.N*benchAgents {
		b.Fatalf("%d offers in %d cycles, want %d per cycle", offers, b.N, benchAgents)
	}
	b.ReportMetric(float64(offers)/elapsed.Seconds(), "offers/s")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(benchAgents), "heap-B/agent")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/cycle")
	b.Logf("%d agents: setup %v, %s heap/agent, %d cycles, %.3f s CPU per full cycle, %.0f offers/s",
		benchAgents, setup.Round(time.Millisecond), strconv.FormatUint((after.HeapAlloc-before.HeapAlloc)/uint64(benchAgents), 10),
		b.N, cpu.Seconds()/float64(b.N), float64(offers)/elapsed.Seconds())
}

// TestScaleTasksAndMasterRestart (opt-in: MESOSSIM_SCALE=1) launches one
// task on each of 10,000 in-process agents (one ACCEPT per offer),
// restarts the master and checks every task is recovered.
func TestScaleTasksAndMasterRestart(t *testing.T) {
	if os.Getenv("MESOSSIM_SCALE") == "" {
		t.Skip("set MESOSSIM_SCALE=1 to run")
	}
	o := testOptions(t, benchAgents, true)
	o.AgentReregisterDelay = 100 * time.Millisecond
	c := startCluster(t, o)
	s := subscribe(t, c.MasterURL(), paInfo("scale"))
	start := time.Now()
	launched := 0
	for launched < benchAgents {
		for _, of := range s.offers(waitLong) {
			id := "t" + strconv.Itoa(launched)
			s.accept([]mesos.Offer{of}, 3600, launch(taskInfo(id, of.AgentID.Value, customExecutor("e", role), res("cpus", 0.1, role), res("mem", 32, role))))
			launched++
		}
	}
	running := 0
	for running < benchAgents {
		ev := s.next(scheduler.Event_UPDATE, waitLong)
		if len(ev.Update.Status.UUID) == 0 {
			t.Fatalf("update %s %s", ev.Update.Status.GetState(), ev.Update.Status.GetMessage())
		}
		s.ack(ev.Update.Status)
		if ev.Update.Status.GetState() == mesos.TASK_RUNNING {
			running++
		}
	}
	t.Logf("%d tasks RUNNING in %v", running, time.Since(start))
	start = time.Now()
	if err := c.RestartMaster(); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "agents re-registered", func() bool {
		c.mu.Lock()
		m := c.m
		c.mu.Unlock()
		m.mu.Lock()
		defer m.mu.Unlock()
		n := 0
		for _, fw := range m.frameworks {
			n += len(fw.tasks)
		}
		return len(m.recovering) == 0 && n == benchAgents
	})
	t.Logf("master restart: %d tasks recovered in %v", benchAgents, time.Since(start))
}

// BenchmarkFilteredCycle is an allocation cycle in which every agent's
// offer was declined with a long filter, as after a deploy that put a task
// on every agent: the cycle offers nothing, and costs little (the
// allocator skips quiet agents) instead of a resource computation per
// agent under the master's lock.
//
//	go test ./internal/mesossim -run XXX -bench FilteredCycle -benchtime 20x
func BenchmarkFilteredCycle(b *testing.B) {
	o := testOptions(b, benchAgents, true)
	o.AllocationInterval = time.Hour // cycles driven by the benchmark only
	c, err := Start(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	info := frameworkInfo("bench", "r")
	call := &scheduler.Call{Type: scheduler.Call_SUBSCRIBE, Subscribe: &scheduler.Call_Subscribe{FrameworkInfo: &info}}
	body, _ := json.Marshal(call)
	resp, err := http.Post(c.MasterURL()+"/api/v1/scheduler", "application/json", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	go io.Copy(io.Discard, resp.Body)
	m := c.m
	for deadline := time.Now().Add(time.Minute); ; {
		m.mu.Lock()
		n := len(m.offers)
		m.mu.Unlock()
		if n == benchAgents {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d offers", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	refuse := 3600.0
	m.mu.Lock()
	for _, fw := range m.frameworks {
		var ids []mesos.OfferID
		for id := range fw.offers {
			ids = append(ids, mesos.OfferID{Value: id})
		}
		m.decline(fw, ids, &mesos.Filters{RefuseSeconds: &refuse})
	}
	m.mu.Unlock()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		m.mu.Lock()
		m.allocate(time.Now())
		n := len(m.offers)
		m.mu.Unlock()
		if n != 0 {
			b.Fatalf("%d offers of filtered agents", n)
		}
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/cycle")
}

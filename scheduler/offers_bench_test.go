package scheduler

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"go.uber.org/zap"

	"github.com/dcos-consul/dcos-consul/scheduler/config"
)

// BenchmarkFirstOffersEvent is the scheduler's whole handling of a first
// deploy's OFFERS event, one offer per agent as a real master sends an
// allocation cycle: every offer evaluated, every record written (in-memory
// store), every ACCEPT built and queued. Its cost per offer must not grow
// with the number of offers (issue 8); compare the cpu-ns/offer of the
// sizes (the process's CPU time, which the machine's load does not inflate
// as it does the wall time):
//
//	go test ./scheduler -run XXX -bench FirstOffersEvent -benchtime 3x
func BenchmarkFirstOffersEvent(b *testing.B) {
	for _, n := range []int{1000, 4000} {
		b.Run(fmt.Sprintf("offers=%d", n), func(b *testing.B) {
			ev := &scheduler.Event{Type: scheduler.Event_OFFERS, Offers: &scheduler.Event_Offers{Offers: benchOffers(n)}}
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				s, stop := benchScheduler(b)
				b.StartTimer()
				t0 := processCPU()
				if err := s.handle(context.Background(), []*scheduler.Event{ev}); err != nil {
					b.Fatal(err)
				}
				total += processCPU() - t0
				b.StopTimer()
				if got := len(s.tasks); got != n {
					b.Fatalf("%d records after %d offers", got, n)
				}
				stop()
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N*n), "cpu-ns/offer")
		})
	}
}

func benchScheduler(b *testing.B) (*Scheduler, func()) {
	cfg := config.Defaults()
	cfg.MesosMaster = "http://127.0.0.1:1"
	cfg.ExecutorURI = "http://127.0.0.1:1/dcos-consul"
	s, err := newScheduler(context.Background(), cfg, zap.NewNop(), newMemStore(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	s.frameworkID, s.subscribed = "bench-0000", true
	s.sender = newSender(func(context.Context, *scheduler.Call) error { return nil }, time.Minute, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	go s.sender.run(ctx)
	return s, cancel
}

func benchOffers(n int) []mesos.Offer {
	role := config.Defaults().Role
	al := func() *mesos.Resource_AllocationInfo { r := role; return &mesos.Resource_AllocationInfo{Role: &r} }
	out := make([]mesos.Offer, n)
	for i := range out {
		ip := fmt.Sprintf("127.%d.%d.%d", 8+i/65536, i/256%256, i%256)
		ports := mesos.Resource{Name: "ports", Type: mesos.RANGES.Enum(), AllocationInfo: al(),
			Ranges: &mesos.Value_Ranges{Range: mesos.Ranges{{Begin: 8000, End: 9000}, {Begin: 31000, End: 32000}}}}
		sc := func(name string, v float64) mesos.Resource {
			return mesos.Resource{Name: name, Type: mesos.SCALAR.Enum(), AllocationInfo: al(), Scalar: &mesos.Value_Scalar{Value: v}}
		}
		out[i] = mesos.Offer{
			ID:             mesos.OfferID{Value: fmt.Sprintf("bench-O%d", i)},
			FrameworkID:    mesos.FrameworkID{Value: "bench-0000"},
			AgentID:        mesos.AgentID{Value: fmt.Sprintf("bench-S%d", i)},
			Hostname:       ip,
			Resources:      []mesos.Resource{ports, sc("cpus", 4), sc("mem", 8192), sc("disk", 20000)},
			AllocationInfo: al(),
		}
	}
	return out
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package server

// Queries per second over UDP against the real master state, 16 concurrent
// clients:
//
//	go test -run '^$' -bench Query -benchtime 3s ./internal/mesosdns/server/

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func BenchmarkQueryUDP(b *testing.B) {
	s, err := New(Config{Addr: "127.1.100.9:0", Source: StaticSource(fixtureB(b))})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	<-s.Ready()
	names := []string{"consul-server-0.consul-fixture.mesos.", "consul-client-0.consul-fixture.mesos.", "leader.mesos.", "nope.consul-fixture.mesos."}
	var i atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
		for pb.Next() {
			q := new(dns.Msg)
			q.SetQuestion(names[i.Add(1)%int64(len(names))], dns.TypeA)
			if _, _, err := c.Exchange(q, s.Addr()); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "queries/s")
}

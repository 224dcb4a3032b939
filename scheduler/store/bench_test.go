package store

// Put/Get throughput of both stores, with a 1 KiB task-record-sized value:
//
//	go test -run '^$' -bench . -benchtime 2s ./scheduler/store/
//
// (the ZooKeeper benchmarks need ZooKeeper at 127.0.0.1:2181 or
// $ZK_TEST_ADDR). Results are in ops/s; "Parallel" runs 16×GOMAXPROCS goroutines on one
// store, as the scheduler's reconciliation of many tasks would.

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dcos-consul/dcos-consul/internal/zktest"
)

func benchStores(b *testing.B, fn func(b *testing.B, s Store)) {
	b.Run("file", func(b *testing.B) {
		s, err := OpenFile(context.Background(), Config{Dir: b.TempDir(), Service: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		fn(b, s)
	})
	b.Run("zookeeper", func(b *testing.B) {
		addr := zktest.Addr(b)
		svc := fmt.Sprintf("bench-%d", time.Now().UnixNano())
		s, err := OpenZK(context.Background(), Config{ZK: addr, Service: svc})
		if err != nil {
			b.Fatal(err)
		}
		defer func() {
			s.Close()
			c := rawZK(b, addr)
			_ = deleteTree(c, ServiceRootPath(svc))
		}()
		fn(b, s)
	})
}

var benchValue = bytes.Repeat([]byte("x"), 1024)

func reportOps(b *testing.B, start time.Time) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

func BenchmarkPut(b *testing.B) {
	benchStores(b, func(b *testing.B, s Store) {
		ctx := context.Background()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if err := s.Put(ctx, fmt.Sprintf("tasks/t%d", i%1000), benchValue); err != nil {
				b.Fatal(err)
			}
		}
		reportOps(b, start)
	})
}

func BenchmarkGet(b *testing.B) {
	benchStores(b, func(b *testing.B, s Store) {
		ctx := context.Background()
		for i := 0; i < 100; i++ {
			if err := s.Put(ctx, fmt.Sprintf("tasks/t%d", i), benchValue); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if _, err := s.Get(ctx, fmt.Sprintf("tasks/t%d", i%100)); err != nil {
				b.Fatal(err)
			}
		}
		reportOps(b, start)
	})
}

func BenchmarkPutParallel(b *testing.B) {
	benchStores(b, func(b *testing.B, s Store) {
		ctx := context.Background()
		var n atomic.Int64
		b.SetParallelism(16) // 16 × GOMAXPROCS goroutines
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				if err := s.Put(ctx, fmt.Sprintf("tasks/t%d", i%1000), benchValue); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportOps(b, start)
	})
}

func BenchmarkGetParallel(b *testing.B) {
	benchStores(b, func(b *testing.B, s Store) {
		ctx := context.Background()
		for i := 0; i < 100; i++ {
			if err := s.Put(ctx, fmt.Sprintf("tasks/t%d", i), benchValue); err != nil {
				b.Fatal(err)
			}
		}
		var n atomic.Int64
		b.SetParallelism(16)
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				if _, err := s.Get(ctx, fmt.Sprintf("tasks/t%d", i%100)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportOps(b, start)
	})
}

// BenchmarkList10k lists 10,000 task records (what a restarted scheduler
// does before reading them), and reads them back one by one:
//
//	go test -run '^$' -bench List10k -benchtime 1x ./scheduler/store/
func BenchmarkList10k(b *testing.B) {
	benchStores(b, func(b *testing.B, s Store) {
		ctx := context.Background()
		rec := bytes.Repeat([]byte("r"), 1024)
		for c := 0; c < 25; c++ {
			var ops []Op
			for i := 0; i < 400; i++ {
				ops = append(ops, PutOp(fmt.Sprintf("tasks/consul-client-%05d", c*400+i), rec))
			}
			if err := s.Apply(ctx, ops...); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			start := time.Now()
			keys, err := s.List(ctx, "tasks/")
			if err != nil || len(keys) != 10000 {
				b.Fatalf("List: %d keys, %v", len(keys), err)
			}
			listed := time.Since(start)
			for _, k := range keys {
				if _, err := s.Get(ctx, k); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(listed.Seconds(), "list-s")
			b.ReportMetric(time.Since(start).Seconds(), "list+get-s")
		}
	})
}

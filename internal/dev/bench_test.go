package dev

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// BenchmarkDevStartup measures what a new user waits for: from the start of
// `dcos-consul dev` (5 agents, 3 servers) to an elected Consul leader and to
// every task RUNNING, over several fresh clusters; it reports medians.
//
//	go test ./internal/dev -run '^$' -bench DevStartup -benchtime 1x
//
// DEV_BENCH_RUNS sets the number of clusters (default 5); DEV_BENCH_BINARY
// another dcos-consul binary (e.g. a stripped release build) and
// DEV_BENCH_EXECUTOR_URI what the agents fetch (e.g. file:///.../
// dcos-consul-linux-amd64.tar.gz, the published archive).
func BenchmarkDevStartup(b *testing.B) {
	runs := 5
	if v, err := strconv.Atoi(os.Getenv("DEV_BENCH_RUNS")); err == nil && v > 0 {
		runs = v
	}
	var toLeader, toRunning, offerToLeader []time.Duration
	for i := 0; i < runs; i++ {
		l, r, o := devStartupOnce(b, i)
		toLeader, toRunning, offerToLeader = append(toLeader, l), append(toRunning, r), append(offerToLeader, o)
		b.Logf("run %d: leader %s, all RUNNING %s, first offer to leader %s", i, l, r, o)
	}
	b.ReportMetric(median(toLeader).Seconds(), "s-to-leader")
	b.ReportMetric(median(toRunning).Seconds(), "s-to-all-running")
	b.ReportMetric(median(offerToLeader).Seconds(), "s-first-offer-to-leader")
}

func devStartupOnce(b *testing.B, i int) (toLeader, toRunning, offerToLeader time.Duration) {
	workDir := b.TempDir()
	bin := binary
	if v := os.Getenv("DEV_BENCH_BINARY"); v != "" {
		bin = v
	}
	var extra []string
	if v := os.Getenv("DEV_BENCH_EXECUTOR_URI"); v != "" {
		extra = append(extra, "EXECUTOR_URI="+v)
	}
	start := time.Now()
	c, err := Start(context.Background(), Options{
		Agents: 5, Servers: 3, WorkDir: workDir, Binary: bin, ExtraEnv: extra,
		MasterIP: "127.4.1.1", MasterPort: 5050, AgentPort: 5051, DNSPort: 61053,
		DNSRefresh: time.Second, Logger: zap.NewNop(),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, _, err := c.WaitForLeader(ctx); err != nil {
		b.Fatalf("run %d: %v", i, err)
	}
	leaderAt := time.Now()
	toLeader = leaderAt.Sub(start)
	for {
		if n := len(runningTasks(b, c)); n == 5 {
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("run %d: not all tasks RUNNING after 3 minutes", i)
		}
		time.Sleep(100 * time.Millisecond)
	}
	toRunning = time.Since(start)
	first, err := firstOfferAccepted(filepath.Join(workDir, "scheduler.log"))
	if err != nil {
		b.Fatalf("run %d: %v", i, err)
	}
	return toLeader, toRunning, leaderAt.Sub(first)
}

// firstOfferAccepted reads the scheduler's log for its first accepted offer.
func firstOfferAccepted(path string) (time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), `"offer accepted"`) {
			continue
		}
		var line struct {
			TS string `json:"ts"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return time.Time{}, fmt.Errorf("scheduler log line: %w", err)
		}
		return time.Parse(time.RFC3339Nano, line.TS)
	}
	return time.Time{}, fmt.Errorf("no accepted offer in %s", path)
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

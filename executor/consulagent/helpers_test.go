package consulagent

import (
	"fmt"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// Tests of this package use loopback addresses in 127.3.0.0/16 only.

// freePorts returns n ports that are free for TCP and UDP on every ip, so
// that agents on different addresses can share one port plan (a Mesos-DNS
// name is joined on the joiner's own serf LAN port).
func freePorts(t *testing.T, ips []string, n int) []int {
	t.Helper()
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	var ports []int
	used := map[int]bool{}
	for tries := 0; len(ports) < n && tries < 2000; tries++ {
		p := 20000 + rng.Intn(30000)
		if used[p] || !portFree(ips, p) {
			continue
		}
		used[p] = true
		ports = append(ports, p)
	}
	if len(ports) < n {
		t.Fatalf("found only %d free ports on %v", len(ports), ips)
	}
	return ports
}

func portFree(ips []string, p int) bool {
	for _, ip := range ips {
		addr := net.JoinHostPort(ip, strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		l.Close()
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		u.Close()
	}
	return true
}

// testPorts is a port plan: HTTP and the cluster ports; WAN, HTTPS, gRPC
// and DNS are disabled unless a test turns them on.
func testPorts(p []int) taskspec.Ports {
	return taskspec.Ports{Server: p[0], SerfLAN: p[1], SerfWAN: -1, HTTP: p[2], HTTPS: -1, GRPC: -1, DNS: -1}
}

// testLogger logs to a file (Consul's goroutines may still log after the
// test ended, which t.Log does not allow) and prints its tail on failure.
func testLogger(t *testing.T) *zap.Logger {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(f), zap.InfoLevel)
	t.Cleanup(func() {
		if !t.Failed() && os.Getenv("CONSULAGENT_TEST_LOG") == "" {
			return
		}
		data, _ := os.ReadFile(path)
		lines := strings.Split(string(data), "\n")
		if len(lines) > 300 {
			lines = lines[len(lines)-300:]
		}
		t.Logf("last log lines (%s):\n%s", path, strings.Join(lines, "\n"))
	})
	return zap.New(core)
}

func serverSpec(name string, expect int, ports taskspec.Ports) taskspec.Spec {
	return taskspec.Spec{
		Version:         taskspec.Version,
		Role:            taskspec.RoleServer,
		NodeName:        name,
		Datacenter:      "dc1",
		BootstrapExpect: expect,
		Ports:           ports,
		DataDir:         "consul-data",
		RaftMultiplier:  1,
		LogLevel:        "INFO",
	}
}

func addr(ip string, port int) string { return fmt.Sprintf("%s:%d", ip, port) }

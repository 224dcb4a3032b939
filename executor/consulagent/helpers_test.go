package consulagent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dcos-consul/dcos-consul/internal/freeport"
	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// Tests of this package use loopback addresses in 127.3.0.0/16 only.

// freePorts returns n ports that are free for TCP and UDP on every ip, so
// that agents on different addresses can share one port plan (a Mesos-DNS
// name is joined on the joiner's own serf LAN port).
func freePorts(t testing.TB, ips []string, n int) []int {
	t.Helper()
	ports, err := freeport.Take(ips, n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// testPorts is a port plan: HTTP and the cluster ports; WAN, HTTPS, gRPC
// and DNS are disabled unless a test turns them on.
func testPorts(p []int) taskspec.Ports {
	return taskspec.Ports{Server: p[0], SerfLAN: p[1], SerfWAN: -1, HTTP: p[2], HTTPS: -1, GRPC: -1, DNS: -1}
}

// testLogger logs to a file (Consul's goroutines may still log after the
// test ended, which t.Log does not allow) and prints its tail on failure.
func testLogger(t testing.TB) *zap.Logger {
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

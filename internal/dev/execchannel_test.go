package dev

import (
	"bufio"
	"bytes"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dcos-consul/dcos-consul/internal/taskspec"
)

// checkExecutorChannel: every executor of the cluster got its secrets
// over the scheduler's TLS executor channel (https, verified against the
// CA in its spec), and the plain API refuses a running task's executor
// routes, naming the channel (docs/security.md, "The path from scheduler
// to executor").
func checkExecutorChannel(t *testing.T, c *Cluster, workDir string, tasks []masterTask) {
	t.Helper()
	var fetched, plain []string
	err := filepath.WalkDir(filepath.Join(workDir, "mesos"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || (d.Name() != "stdout" && d.Name() != "stderr") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, "task secrets received from the scheduler") {
				continue
			}
			if strings.Contains(line, "https://") {
				fetched = append(fetched, path)
			} else {
				plain = append(plain, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) > 0 || len(fetched) < len(tasks) {
		t.Errorf("secrets fetched over the TLS channel %d times, otherwise %d times (%v), for %d tasks", len(fetched), len(plain), plain, len(tasks))
	}
	for _, task := range tasks[:1] {
		resp, err := http.Get(c.SchedulerURL + taskspec.SecretsPath + "?task_id=" + task.ID)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body.String(), "served over TLS at https://") {
			t.Errorf("the plain API on %s's secrets route: %d %s", task.ID, resp.StatusCode, body.String())
		}
	}
}

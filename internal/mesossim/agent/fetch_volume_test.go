package agent

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func tarGz(t *testing.T, files map[string]string, modes map[string]int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		mode := int64(0o644)
		if m, ok := modes[name]; ok {
			mode = m
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	zw.Close()
	return buf.Bytes()
}

// fileServer serves dir on a 127.1.200.x address and counts requests per path.
func fileServer(t *testing.T, dir string) (string, func(string) int64) {
	t.Helper()
	ln, err := net.Listen("tcp", nextIP()+":0")
	if err != nil {
		t.Fatal(err)
	}
	var counts = map[string]*atomic.Int64{}
	for _, p := range []string{"/hello.txt", "/pkg.zip", "/raw.tar.gz", "/missing"} {
		counts[p] = &atomic.Int64{}
	}
	fs := http.FileServer(http.Dir(dir))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := counts[r.URL.Path]; c != nil {
			c.Add(1)
		}
		fs.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), func(p string) int64 { return counts[p].Load() }
}

func uri(v string, executable, extract, cache *bool, output string) mesos.CommandInfo_URI {
	u := mesos.CommandInfo_URI{Value: v, Executable: executable, Extract: extract, Cache: cache}
	if output != "" {
		u.OutputFile = &output
	}
	return u
}

func TestFetcherFetchesExtractsAndCaches(t *testing.T) {
	a, m := newTestAgent(t, nil)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello"), 0o600)
	os.WriteFile(filepath.Join(src, "data.tgz"), tarGz(t, map[string]string{"bin/tool": "#!/bin/sh\n", "conf/a.conf": "a=1"}, map[string]int64{"bin/tool": 0o755}), 0o644)
	os.WriteFile(filepath.Join(src, "pkg.zip"), zipOf(t, map[string]string{"z/file.txt": "zipped"}), 0o644)
	os.WriteFile(filepath.Join(src, "raw.tar.gz"), tarGz(t, map[string]string{"inner.txt": "x"}, nil), 0o644)
	base, count := fileServer(t, src)

	ex := executorInfo("e-fetch", nil)
	ex.Command = &mesos.CommandInfo{
		Value: strp("./exec-bin"),
		Shell: boolp(true),
		URIs: []mesos.CommandInfo_URI{
			uri("file://"+testExecutorBin, boolp(true), nil, boolp(true), "exec-bin"),
			uri("file://"+filepath.Join(src, "hello.txt"), nil, nil, nil, ""),
			uri(filepath.Join(src, "data.tgz"), nil, nil, nil, ""),
			uri(base+"/pkg.zip", nil, nil, nil, ""),
			uri(base+"/raw.tar.gz", nil, boolp(false), nil, ""),
			uri(base+"/hello.txt", nil, nil, boolp(true), "renamed.txt"),
		},
	}
	launch(a, ex, taskInfo(a, "t-fetch", ""))
	waitState(t, m, "t-fetch", mesos.TASK_RUNNING)
	st, _ := executorState(a, "e-fetch")
	sb := st.Directory

	checks := []struct {
		path, body string
		mode       os.FileMode
	}{
		{"hello.txt", "hello", 0o644},
		{"bin/tool", "#!/bin/sh\n", 0o755},
		{"conf/a.conf", "a=1", 0o644},
		{"z/file.txt", "zipped", 0o644},
		{"renamed.txt", "hello", 0o644},
	}
	for _, c := range checks {
		fi, err := os.Stat(filepath.Join(sb, c.path))
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		if got := readFile(t, filepath.Join(sb, c.path)); got != c.body {
			t.Errorf("%s = %q, want %q", c.path, got, c.body)
		}
		if fi.Mode().Perm() != c.mode {
			t.Errorf("%s mode %v, want %v", c.path, fi.Mode().Perm(), c.mode)
		}
	}
	if fi, err := os.Stat(filepath.Join(sb, "exec-bin")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("executable URI: %v %v", fi, err)
	}
	for _, kept := range []string{"data.tgz", "pkg.zip", "raw.tar.gz"} {
		if _, err := os.Stat(filepath.Join(sb, kept)); err != nil {
			t.Errorf("archive %s not kept in the sandbox: %v", kept, err)
		}
	}
	if _, err := os.Stat(filepath.Join(sb, "inner.txt")); err == nil {
		t.Error("extract=false archive was extracted")
	}
	cache, _ := os.ReadDir(filepath.Join(a.cfg.WorkDir, "fetch-cache", a.cfg.ID.Value))
	if len(cache) != 2 {
		t.Errorf("fetch cache holds %d files, want 2", len(cache))
	}

	// A second executor run fetching the cached URI again hits the cache.
	ex2 := ex
	ex2.ExecutorID = mesos.ExecutorID{Value: "e-fetch2"}
	launch(a, ex2, taskInfo(a, "t-fetch2", ""))
	waitState(t, m, "t-fetch2", mesos.TASK_RUNNING)
	if n := count("/hello.txt"); n != 1 {
		t.Errorf("cached URI downloaded %d times, want 1", n)
	}
	if n := count("/pkg.zip"); n != 2 {
		t.Errorf("uncached URI downloaded %d times, want 2", n)
	}
}

func TestFetchFailureFailsTasks(t *testing.T) {
	a, m := newTestAgent(t, nil)
	src := t.TempDir()
	base, _ := fileServer(t, src)
	for i, u := range []string{"file:///does/not/exist.bin", base + "/missing", "ftp://example.com/x"} {
		ex := executorInfo("e-ff"+string(rune('a'+i)), nil)
		ex.Command.URIs = []mesos.CommandInfo_URI{uri(u, nil, nil, nil, "")}
		task := "t-ff" + string(rune('a'+i))
		launch(a, ex, taskInfo(a, task, ""))
		f := waitState(t, m, task, mesos.TASK_FAILED).status
		if f.GetReason() != mesos.REASON_CONTAINER_LAUNCH_FAILED || f.GetSource() != mesos.SOURCE_AGENT || len(f.UUID) != 16 ||
			!strings.HasPrefix(f.GetMessage(), "Failed to launch container: Failed to fetch all URIs for container '") {
			t.Errorf("%s: TASK_FAILED = %+v", u, f)
		}
	}
	_, terms := m.snapshot()
	if len(terms) != 3 || terms[0].status != -1 {
		t.Errorf("terminations = %+v, want 3 with status -1", terms)
	}
	waitFor(t, "failed executors to go", func() bool { return len(a.Executors()) == 0 })
}

func volumeResource(role, id, containerPath string) mesos.Resource {
	r := scalar("disk", 100)
	r.Reservations = []mesos.Resource_ReservationInfo{{Type: mesos.Resource_ReservationInfo_DYNAMIC.Enum(), Role: &role, Principal: strp("consul-principal")}}
	r.Disk = &mesos.Resource_DiskInfo{
		Persistence: &mesos.Resource_DiskInfo_Persistence{ID: id, Principal: strp("consul-principal")},
		Volume:      &mesos.Volume{ContainerPath: containerPath, Mode: mesos.RW.Enum()},
	}
	return r
}

// 04b: the volume is a symlink in the sandbox to
// <work>/volumes/roles/<role>/<id>, there before the executor starts, and
// its data survives the executor run.
func TestPersistentVolumeAcrossRuns(t *testing.T) {
	a, m := newTestAgent(t, nil)
	if err := a.CreateVolume("consul-role", "consul-server-0-data"); err != nil {
		t.Fatal(err)
	}
	volDir := filepath.Join(a.cfg.WorkDir, "volumes", "roles", "consul-role", "consul-server-0-data")
	vol := volumeResource("consul-role", "consul-server-0-data", "consul-data")
	nested := volumeResource("consul-role", "consul-server-0-data", "a/b")

	launch(a, executorInfo("e-vol", nil), taskInfo(a, "t-vol1", "", vol, nested))
	waitState(t, m, "t-vol1", mesos.TASK_RUNNING)
	run1, _ := executorState(a, "e-vol")
	link := filepath.Join(run1.Directory, "consul-data")
	if target, err := os.Readlink(link); err != nil || target != volDir {
		t.Fatalf("consul-data -> %q (%v), want %q", target, err, volDir)
	}
	if _, err := os.Lstat(filepath.Join(run1.Directory, "a")); err == nil {
		t.Error("a nested container path was linked; Mesos' posix isolator skips it")
	}
	if err := os.WriteFile(filepath.Join(link, "raft.db"), []byte("state"), 0o644); err != nil {
		t.Fatal(err)
	}
	a.ShutdownExecutor(*testFramework.ID, mesos.ExecutorID{Value: "e-vol"})
	waitFor(t, "first run to end", func() bool { _, terms := m.snapshot(); return len(terms) == 1 })

	launch(a, executorInfo("e-vol", nil), taskInfo(a, "t-vol2", "", vol))
	waitState(t, m, "t-vol2", mesos.TASK_RUNNING)
	run2, _ := executorState(a, "e-vol")
	if run2.Directory == run1.Directory {
		t.Fatal("second run reused the sandbox")
	}
	if got := readFile(t, filepath.Join(run2.Directory, "consul-data", "raft.db")); got != "state" {
		t.Errorf("volume data = %q after a new run", got)
	}
	latest, _ := os.Readlink(filepath.Join(filepath.Dir(run2.Directory), "latest"))
	if latest != run2.Directory {
		t.Errorf("latest -> %s, want %s", latest, run2.Directory)
	}

	// A task on an unknown volume is refused: TASK_DROPPED / REASON_RESOURCES_UNKNOWN.
	launch(a, executorInfo("e-vol3", nil), taskInfo(a, "t-vol3", "", volumeResource("consul-role", "nope", "consul-data")))
	d := waitState(t, m, "t-vol3", mesos.TASK_DROPPED).status
	if d.GetReason() != mesos.REASON_RESOURCES_UNKNOWN || d.GetSource() != mesos.SOURCE_AGENT {
		t.Errorf("update = %+v", d)
	}

	a.ShutdownExecutor(*testFramework.ID, mesos.ExecutorID{Value: "e-vol"})
	waitFor(t, "second run to end", func() bool { _, terms := m.snapshot(); return len(terms) == 2 })
	if err := a.DestroyVolume("consul-role", "consul-server-0-data"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(volDir); !os.IsNotExist(err) {
		t.Errorf("volume still there after DestroyVolume: %v", err)
	}
	if err := a.DestroyVolume("consul-role", "consul-server-0-data"); err == nil {
		t.Error("destroying a missing volume succeeded")
	}
	// Hierarchical roles map '/' to ' ' like Mesos.
	if err := a.CreateVolume("eng/consul", "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(a.cfg.WorkDir, "volumes", "roles", "eng consul", "v1")); err != nil {
		t.Error(err)
	}
	if err := a.CreateVolume("r", "../escape"); err == nil {
		t.Error("a persistence id with a slash was accepted")
	}
}

// A task joining a running executor gets its volume linked into the
// executor's sandbox.
func TestVolumeOfSecondTaskLinked(t *testing.T) {
	a, m := newTestAgent(t, nil)
	a.CreateVolume("consul-role", "v2")
	launch(a, executorInfo("e-v2", nil), taskInfo(a, "t-a", ""))
	waitState(t, m, "t-a", mesos.TASK_RUNNING)
	launch(a, executorInfo("e-v2", nil), taskInfo(a, "t-b", "", volumeResource("consul-role", "v2", "data")))
	waitState(t, m, "t-b", mesos.TASK_RUNNING)
	st, _ := executorState(a, "e-v2")
	if _, err := os.Readlink(filepath.Join(st.Directory, "data")); err != nil {
		t.Errorf("volume of the second task not linked: %v", err)
	}
}

func TestStoutDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Second:         "5secs",
		15 * time.Minute:        "15mins",
		2 * time.Second:         "2secs",
		90 * time.Second:        "90secs",
		1500 * time.Millisecond: "1500ms",
		time.Hour:               "1hrs",
		7 * 24 * time.Hour:      "1weeks",
		48 * time.Hour:          "2days",
		0:                       "0ns",
		1500 * time.Nanosecond:  "1500ns",
	} {
		if got := stoutDuration(d); got != want {
			t.Errorf("stoutDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// The agent's /files endpoints read a sandbox as in 04a/04b.
func TestFilesEndpoints(t *testing.T) {
	a, m := newTestAgent(t, nil)
	a.CreateVolume("consul-role", "fv")
	launch(a, executorInfo("e-files", nil), taskInfo(a, "t-files", "", volumeResource("consul-role", "fv", "consul-data")))
	waitState(t, m, "t-files", mesos.TASK_RUNNING)
	st, _ := executorState(a, "e-files")
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + a.Endpoint() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/files/browse?path=" + url.QueryEscape(st.Directory))
	var list []map[string]interface{}
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil {
		t.Fatalf("browse: %d %s", code, body)
	}
	modes := map[string]string{}
	for _, e := range list {
		modes[filepath.Base(e["path"].(string))] = e["mode"].(string)
	}
	if modes["consul-data"] != "drwxr-xr-x" || modes["stdout"] != "-rw-r--r--" || modes["env.txt"] == "" {
		t.Errorf("browse modes %v", modes)
	}
	code, body = get("/files/read?offset=0&path=" + url.QueryEscape(filepath.Join(st.Directory, "env.txt")))
	var rd struct {
		Data   string `json:"data"`
		Offset int64  `json:"offset"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &rd) != nil || !strings.Contains(rd.Data, "MESOS_EXECUTOR_ID=e-files") || rd.Offset != 0 {
		t.Errorf("read: %d %s", code, body)
	}
	code, body = get("/files/read?offset=-1&path=" + url.QueryEscape(filepath.Join(st.Directory, "env.txt")))
	if json.Unmarshal([]byte(body), &rd) != nil || rd.Data != "" || rd.Offset != int64(len(readFile(t, filepath.Join(st.Directory, "env.txt")))) {
		t.Errorf("read offset -1: %d %s", code, body)
	}
	if code, _ := get("/files/read?offset=0&path=/etc/passwd"); code != 404 {
		t.Errorf("a path outside the agent was served: %d", code)
	}
	if code, _ := get("/files/browse"); code != 400 {
		t.Errorf("browse without path: %d", code)
	}
	if code, body := get("/files/download?path=" + url.QueryEscape(filepath.Join(st.Directory, "pid.txt"))); code != 200 || body == "" {
		t.Errorf("download: %d %q", code, body)
	}
	// The runs directory is drwxr-xr-x, the sandbox drwxr-x--- (04a ls -la).
	if fi, _ := os.Stat(filepath.Dir(st.Directory)); fi.Mode().Perm() != 0o755 {
		t.Errorf("runs dir mode %v", fi.Mode().Perm())
	}
}

// The agent explains itself: a failed launch is logged with its cause.
func TestLaunchFailureIsLogged(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	a, m := newTestAgent(t, func(c *Config) { c.Logger = zap.New(core) })
	ex := executorInfo("e-log", nil)
	ex.Command.URIs = []mesos.CommandInfo_URI{uri("file:///does/not/exist.bin", nil, nil, nil, "")}
	launch(a, ex, taskInfo(a, "t-log", ""))
	waitState(t, m, "t-log", mesos.TASK_FAILED)
	found := false
	for _, e := range logs.All() {
		if e.Message == "executor failed to launch" && e.Level == zap.WarnLevel &&
			strings.Contains(e.ContextMap()["error"].(string), "does/not/exist.bin") &&
			e.ContextMap()["agent"] == a.cfg.ID.Value && e.ContextMap()["executor"] == "e-log" {
			found = true
		}
	}
	if !found {
		t.Errorf("no warning explaining the failed launch; logs: %+v", logs.All())
	}
}

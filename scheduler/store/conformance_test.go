package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// opener opens the store of a service; calling it again with the same
// service opens the same data (after the previous one was closed).
type opener func(t *testing.T, service string, lockWait time.Duration) (Store, error)

var serviceSeq struct {
	sync.Mutex
	n int
}

// uniqueService is a fresh service name, so tests never see each other's keys.
func uniqueService(t *testing.T) string {
	serviceSeq.Lock()
	defer serviceSeq.Unlock()
	serviceSeq.n++
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(t.Name()))
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return fmt.Sprintf("test/%s-%d-%x", name, serviceSeq.n, b)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustOpen(t *testing.T, open opener, service string) Store {
	t.Helper()
	s, err := open(t, service, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustPut(t *testing.T, s Store, key, value string) {
	t.Helper()
	if err := s.Put(ctxT(t), key, []byte(value)); err != nil {
		t.Fatalf("Put %q: %v", key, err)
	}
}

func mustList(t *testing.T, s Store, prefix string) []string {
	t.Helper()
	keys, err := s.List(ctxT(t), prefix)
	if err != nil {
		t.Fatalf("List %q: %v", prefix, err)
	}
	return keys
}

func wantGet(t *testing.T, s Store, key, want string) {
	t.Helper()
	got, err := s.Get(ctxT(t), key)
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	if string(got) != want {
		t.Fatalf("Get %q = %q, want %q", key, got, want)
	}
}

func wantMissing(t *testing.T, s Store, key string) {
	t.Helper()
	_, err := s.Get(ctxT(t), key)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get %q: %v, want ErrNotFound", key, err)
	}
}

// runConformance is the behaviour both stores must share.
func runConformance(t *testing.T, open opener) {
	t.Run("GetMissing", func(t *testing.T) {
		s := mustOpen(t, open, uniqueService(t))
		_, err := s.Get(ctxT(t), "framework-id")
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "framework-id") {
			t.Fatalf("Get missing: %v, want a wrapped ErrNotFound naming the key", err)
		}
	})

	t.Run("PutGetOverwrite", func(t *testing.T) {
		s := mustOpen(t, open, uniqueService(t))
		mustPut(t, s, "framework-id", "fw-1")
		wantGet(t, s, "framework-id", "fw-1")
		mustPut(t, s, "framework-id", "fw-2")
		wantGet(t, s, "framework-id", "fw-2")
		bin := []byte{0, 1, 2, 255, 0}
		if err := s.Put(ctxT(t), "bin", bin); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Get(ctxT(t), "bin")
		if !bytes.Equal(got, bin) {
			t.Fatalf("binary value %v, want %v", got, bin)
		}
		if err := s.Put(ctxT(t), "empty", nil); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctxT(t), "empty")
		if err != nil || got == nil || len(got) != 0 {
			t.Fatalf("empty value: %v %v, want a non-nil empty slice", got, err)
		}
	})

	t.Run("HierarchicalKeysAndList", func(t *testing.T) {
		s := mustOpen(t, open, uniqueService(t))
		for _, k := range []string{"tasks/consul-server-1", "tasks/consul-server-0", "tasks/consul-client-a", "config/target", "framework-id", "tasks2", "deep/a/b/c"} {
			mustPut(t, s, k, "v:"+k)
		}
		for prefix, want := range map[string][]string{
			"tasks/":             {"tasks/consul-client-a", "tasks/consul-server-0", "tasks/consul-server-1"},
			"tasks/consul-serv":  {"tasks/consul-server-0", "tasks/consul-server-1"},
			"tasks":              {"tasks/consul-client-a", "tasks/consul-server-0", "tasks/consul-server-1", "tasks2"},
			"":                   {"config/target", "deep/a/b/c", "framework-id", "tasks/consul-client-a", "tasks/consul-server-0", "tasks/consul-server-1", "tasks2"},
			"deep/a/":            {"deep/a/b/c"},
			"nothing/":           nil,
			"tasks/consul-zzz":   nil,
			"framework-id":       {"framework-id"},
			"framework-id/extra": nil,
		} {
			got := mustList(t, s, prefix)
			if len(got) == 0 && len(want) == 0 {
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("List(%q) = %v, want %v", prefix, got, want)
			}
		}
		wantGet(t, s, "deep/a/b/c", "v:deep/a/b/c")
		// A directory is not a key.
		wantMissing(t, s, "tasks")
		wantMissing(t, s, "deep/a")
	})

	t.Run("Delete", func(t *testing.T) {
		s := mustOpen(t, open, uniqueService(t))
		mustPut(t, s, "tasks/a", "1")
		mustPut(t, s, "tasks/b", "2")
		if err := s.Delete(ctxT(t), "tasks/a"); err != nil {
			t.Fatal(err)
		}
		wantMissing(t, s, "tasks/a")
		wantGet(t, s, "tasks/b", "2")
		if err := s.Delete(ctxT(t), "tasks/a"); err != nil {
			t.Fatalf("deleting a missing key: %v", err)
		}
		if err := s.Delete(ctxT(t), "never/was/here"); err != nil {
			t.Fatalf("deleting a missing nested key: %v", err)
		}
		if err := s.Delete(ctxT(t), "tasks/b"); err != nil {
			t.Fatal(err)
		}
		if got := mustList(t, s, ""); len(got) != 0 {
			t.Fatalf("after deleting everything: %v", got)
		}
		// The emptied directory is gone: "tasks" can now be a key.
		mustPut(t, s, "tasks", "leaf now")
		wantGet(t, s, "tasks", "leaf now")
	})

	t.Run("LeafRule", func(t *testing.T) {
		s := mustOpen(t, open, uniqueService(t))
		mustPut(t, s, "tasks/a", "1")
		mustPut(t, s, "leaf", "x")
		for _, k := range []string{"tasks", "tasks/a/b", "leaf/child"} {
			if err := s.Put(ctxT(t), k, []byte("no")); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Put %q: %v, want ErrInvalidKey", k, err)
			}
		}
		wantGet(t, s, "tasks/a", "1")
		wantGet(t, s, "leaf", "x")
	})

	t.Run("InvalidKeys", func(t *testing.T) {
		s := mustOpen(t, open, uniqueService(t))
		for _, k := range []string{"", "/a", "a/", "a//b", "..", "a/./b", "__lock", "a b", "é", "a\x00b", strings.Repeat("k", 513)} {
			if err := s.Put(ctxT(t), k, []byte("v")); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Put %q: %v, want ErrInvalidKey", k, err)
			}
			if _, err := s.Get(ctxT(t), k); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Get %q: %v, want ErrInvalidKey", k, err)
			}
		}
	})

	t.Run("ValueSizeLimit", func(t *testing.T) {
		s := mustOpen(t, open, uniqueService(t))
		big := bytes.Repeat([]byte("0123456789"), MaxValueSize/10)
		if err := s.Put(ctxT(t), "tasks/big", big); err != nil {
			t.Fatalf("Put of MaxValueSize bytes: %v", err)
		}
		got, err := s.Get(ctxT(t), "tasks/big")
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("Get big: %d bytes, %v", len(got), err)
		}
		tooBig := append(big, 'x')
		if err := s.Put(ctxT(t), "tasks/toobig", tooBig); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Put of MaxValueSize+1: %v, want ErrTooLarge", err)
		}
		wantMissing(t, s, "tasks/toobig")
		// Several values that fit one by one but not in one transaction.
		half := big[:MaxValueSize*6/10]
		if err := s.Apply(ctxT(t), PutOp("a", half), PutOp("b", half)); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Apply too large: %v, want ErrTooLarge", err)
		}
		wantMissing(t, s, "a")
	})

	t.Run("ApplyAtomic", func(t *testing.T) {
		s := mustOpen(t, open, uniqueService(t))
		mustPut(t, s, "tasks/old", "old")
		mustPut(t, s, "leaf", "x")
		// All applied.
		if err := s.Apply(ctxT(t),
			PutOp("tasks/consul-server-0", []byte("launching")),
			PutOp("reservations/r1", []byte("agent-1")),
			DeleteOp("tasks/old"),
			DeleteOp("never-there"),
		); err != nil {
			t.Fatal(err)
		}
		wantGet(t, s, "tasks/consul-server-0", "launching")
		wantGet(t, s, "reservations/r1", "agent-1")
		wantMissing(t, s, "tasks/old")
		// None applied when one op is refused.
		err := s.Apply(ctxT(t),
			PutOp("tasks/consul-server-0", []byte("changed")),
			PutOp("tasks/new", []byte("new")),
			PutOp("leaf/child", []byte("conflict")),
		)
		if !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("Apply with a conflicting op: %v, want ErrInvalidKey", err)
		}
		wantGet(t, s, "tasks/consul-server-0", "launching")
		wantMissing(t, s, "tasks/new")
		if err := s.Apply(ctxT(t), PutOp("dup", nil), DeleteOp("dup")); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("Apply naming a key twice: %v", err)
		}
		if err := s.Apply(ctxT(t)); err != nil {
			t.Fatalf("empty Apply: %v", err)
		}
	})

	t.Run("LargeBatch", func(t *testing.T) {
		// The scheduler writes task records in chunks of 400 per Apply.
		s := mustOpen(t, open, uniqueService(t))
		rec := bytes.Repeat([]byte("r"), 1500)
		var puts, dels []Op
		for i := 0; i < 400; i++ {
			k := fmt.Sprintf("tasks/consul-client-%03d", i)
			puts = append(puts, PutOp(k, rec))
			dels = append(dels, DeleteOp(k))
		}
		mustPut(t, s, "tasks/keep", "k")
		if err := s.Apply(ctxT(t), puts...); err != nil {
			t.Fatal(err)
		}
		if got := mustList(t, s, "tasks/consul-client-"); len(got) != 400 {
			t.Fatalf("after a 400-record Apply: %d keys", len(got))
		}
		// Updating them all again (existing keys) is one transaction too.
		if err := s.Apply(ctxT(t), puts...); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(ctxT(t), append(dels, DeleteOp("tasks/keep"))...); err != nil {
			t.Fatal(err)
		}
		if got := mustList(t, s, ""); len(got) != 0 {
			t.Fatalf("after deleting all: %v", got)
		}
		mustPut(t, s, "tasks", "a leaf again: the directory is gone")
	})

	t.Run("Persistence", func(t *testing.T) {
		svc := uniqueService(t)
		s, err := open(t, svc, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		mustPut(t, s, "framework-id", "fw-42")
		mustPut(t, s, "tasks/consul-server-0", "record")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := s.Get(ctxT(t), "framework-id"); !errors.Is(err, ErrClosed) {
			t.Fatalf("Get after Close: %v, want ErrClosed", err)
		}
		if err := s.Put(ctxT(t), "x", nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("Put after Close: %v, want ErrClosed", err)
		}
		s2 := mustOpen(t, open, svc)
		wantGet(t, s2, "framework-id", "fw-42")
		wantGet(t, s2, "tasks/consul-server-0", "record")
	})

	t.Run("OneSchedulerAtATime", func(t *testing.T) {
		svc := uniqueService(t)
		s := mustOpen(t, open, svc)
		mustPut(t, s, "framework-id", "first")
		start := time.Now()
		s2, err := open(t, svc, time.Second)
		if err == nil {
			s2.Close()
			t.Fatal("a second store opened the same service while the first holds it")
		}
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("second open: %v, want ErrLocked", err)
		}
		if d := time.Since(start); d < 900*time.Millisecond || d > 30*time.Second {
			t.Errorf("second open gave up after %s, want about the 1 s lock wait", d)
		}
		t.Logf("second open: %v", err)
		// Released on Close: a waiting opener gets it.
		done := make(chan error, 1)
		go func() {
			s3, err := open(t, svc, 20*time.Second)
			if err == nil {
				defer s3.Close()
				var v []byte
				v, err = s3.Get(ctxT(t), "framework-id")
				if err == nil && string(v) != "first" {
					err = fmt.Errorf("got %q", v)
				}
			}
			done <- err
		}()
		time.Sleep(500 * time.Millisecond)
		s.Close()
		if err := <-done; err != nil {
			t.Fatalf("open after the holder closed: %v", err)
		}
	})

	t.Run("Destroy", func(t *testing.T) {
		svc := uniqueService(t)
		s, err := open(t, svc, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		mustPut(t, s, "framework-id", "fw")
		mustPut(t, s, "tasks/a/b", "x")
		if err := s.Destroy(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctxT(t), "k", nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("Put after Destroy: %v, want ErrClosed", err)
		}
		s2 := mustOpen(t, open, svc) // not locked, and empty
		if got := mustList(t, s2, ""); len(got) != 0 {
			t.Fatalf("after Destroy: %v", got)
		}
	})

	t.Run("ContextCancelled", func(t *testing.T) {
		s := mustOpen(t, open, uniqueService(t))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Put(ctx, "k", []byte("v")); !errors.Is(err, context.Canceled) {
			t.Fatalf("Put with a cancelled context: %v", err)
		}
		if _, err := s.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Get with a cancelled context: %v", err)
		}
		wantMissing(t, s, "k")
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := mustOpen(t, open, uniqueService(t))
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 25; i++ {
					k := fmt.Sprintf("tasks/w%d/t%02d", w, i)
					if err := s.Put(context.Background(), k, []byte(k)); err != nil {
						errs <- err
						return
					}
					if _, err := s.Get(context.Background(), k); err != nil {
						errs <- err
						return
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if got := mustList(t, s, "tasks/"); len(got) != 200 {
			t.Fatalf("List after concurrent puts: %d keys, want 200", len(got))
		}
	})
}

func TestValidateKey(t *testing.T) {
	for _, k := range []string{"framework-id", "tasks/consul-server-0", "tasks/consul-server-0__3f2a", "a:b@c+d=e,f", "x/y/z"} {
		if err := ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q): %v", k, err)
		}
	}
}

func TestServiceRootPath(t *testing.T) {
	for in, want := range map[string]string{
		"consul":       "/dcos-service-consul",
		"/consul":      "/dcos-service-consul",
		"/prod/consul": "/dcos-service-prod__consul",
		"prod/consul":  "/dcos-service-prod__consul",
		"a/b/c":        "/dcos-service-a__b__c",
	} {
		if got := ServiceRootPath(in); got != want {
			t.Errorf("ServiceRootPath(%q) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "/", "con sul"} {
		if err := validateService(bad); err == nil {
			t.Errorf("service %q accepted", bad)
		}
	}
}

func TestParseZK(t *testing.T) {
	for in, want := range map[string]struct {
		servers []string
		chroot  string
	}{
		"master.mesos:2181":               {[]string{"master.mesos:2181"}, ""},
		"zk://zk-1:2181,zk-2:2181,zk-3":   {[]string{"zk-1:2181", "zk-2:2181", "zk-3:2181"}, ""},
		"zk://127.0.0.1:2181/dcos/state/": {[]string{"127.0.0.1:2181"}, "/dcos/state"},
		" 10.0.0.1:2181 , 10.0.0.2:2182 ": {[]string{"10.0.0.1:2181", "10.0.0.2:2182"}, ""},
	} {
		servers, chroot, err := ParseZK(in)
		if err != nil || !reflect.DeepEqual(servers, want.servers) || chroot != want.chroot {
			t.Errorf("ParseZK(%q) = %v %q %v", in, servers, chroot, err)
		}
	}
	for _, bad := range []string{"", "zk://", "zk:///x", "h:1/a//b"} {
		if _, _, err := ParseZK(bad); err == nil {
			t.Errorf("ParseZK(%q): no error", bad)
		}
	}
}

func TestOpenPicksImplementation(t *testing.T) {
	if _, err := Open(context.Background(), Config{Service: "consul"}); err == nil {
		t.Error("Open without ZK or Dir: no error")
	}
	if _, err := Open(context.Background(), Config{Service: "", Dir: t.TempDir()}); err == nil {
		t.Error("Open without a service: no error")
	}
	s, err := Open(context.Background(), Config{Service: "consul", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*FileStore); !ok {
		t.Errorf("Open with Dir gave %T", s)
	}
}

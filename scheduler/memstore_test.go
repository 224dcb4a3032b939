package scheduler

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/dcos-consul/dcos-consul/scheduler/store"
)

// memStore is an in-memory Store for tests, with Apply like the real ones.
type memStore struct {
	mu   sync.Mutex
	kv   map[string][]byte
	fail error // when set, every write fails
	// destroyed counts Destroy calls (an uninstall's end); unlike the
	// real stores, a destroyed memStore stays usable for the next start.
	destroyed int
}

func newMemStore() *memStore { return &memStore{kv: map[string][]byte{}} }

func (m *memStore) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.kv[key]
	if !ok {
		return nil, fmt.Errorf("get %q: %w", key, store.ErrNotFound)
	}
	return append([]byte(nil), v...), nil
}

func (m *memStore) Put(_ context.Context, key string, v []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.kv[key] = append([]byte(nil), v...)
	return nil
}

func (m *memStore) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	delete(m.kv, key)
	return nil
}

func (m *memStore) List(_ context.Context, prefix string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.kv {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (m *memStore) Apply(_ context.Context, ops ...store.Op) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	for _, op := range ops {
		if op.Delete {
			delete(m.kv, op.Key)
		} else {
			m.kv[op.Key] = append([]byte(nil), op.Value...)
		}
	}
	return nil
}

func (m *memStore) setFail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

func (m *memStore) Destroy(_ context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.kv = map[string][]byte{}
	m.destroyed++
	return nil
}

func (m *memStore) destroyCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.destroyed
}

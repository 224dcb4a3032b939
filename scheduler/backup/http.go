package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// httpTarget PUTs <name>, then <name>.sha256, then an index.json that
// lists the snapshots (what List reads): a snapshot is listed only once
// both are stored. DELETE removes one (a server refusing DELETE keeps the
// files; the index forgets them).
type httpTarget struct {
	base   *url.URL // ends with "/"
	client *http.Client
}

const indexName = "index.json"

func newHTTPTarget(u *url.URL) *httpTarget {
	b := *u
	if !strings.HasSuffix(b.Path, "/") {
		b.Path += "/"
	}
	return &httpTarget{base: &b, client: &http.Client{Timeout: 10 * time.Minute}}
}

func (h *httpTarget) String() string {
	u := *h.base
	u.User = nil
	return u.String()
}

func (h *httpTarget) url(name string) string {
	u := *h.base
	u.Path += name
	return u.String()
}

func (h *httpTarget) do(ctx context.Context, method, name string, body io.Reader, size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, h.url(name), body)
	if err != nil {
		return nil, err
	}
	if size >= 0 {
		req.ContentLength = size
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, h.String()+name, err)
	}
	return resp, nil
}

func (h *httpTarget) put(ctx context.Context, name string, body io.Reader, size int64) error {
	resp, err := h.do(ctx, http.MethodPut, name, body, size)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("PUT %s%s: %s", h.String(), name, resp.Status)
	}
	return nil
}

func (h *httpTarget) Put(ctx context.Context, name string, r io.Reader) (Entry, error) {
	if !ValidName(name) {
		return Entry{}, fmt.Errorf("invalid snapshot name %q", name)
	}
	// Spooled to a temporary file: the length and checksum are known
	// before the upload, and a failed upload can be told from a short one.
	tmp, err := os.CreateTemp("", "dcos-consul-snapshot-*")
	if err != nil {
		return Entry{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	sh := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, sh), readerCtx{ctx, r})
	if err != nil {
		return Entry{}, fmt.Errorf("read snapshot %s: %w", name, err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return Entry{}, err
	}
	sum := hex.EncodeToString(sh.Sum(nil))
	if err := h.put(ctx, name, tmp, n); err != nil {
		return Entry{}, err
	}
	line := []byte(sum + "  " + name + "\n")
	if err := h.put(ctx, name+".sha256", bytes.NewReader(line), int64(len(line))); err != nil {
		return Entry{}, err
	}
	e := Entry{Name: name, Size: n, SHA256: sum, Taken: time.Now().UTC()}
	es, err := h.List(ctx)
	if err != nil {
		return Entry{}, err
	}
	if err := h.writeIndex(ctx, append(es, e)); err != nil {
		return Entry{}, err
	}
	return e, nil
}

func (h *httpTarget) writeIndex(ctx context.Context, es []Entry) error {
	sortEntries(es)
	b, err := json.MarshalIndent(es, "", "  ")
	if err != nil {
		return err
	}
	return h.put(ctx, indexName, bytes.NewReader(b), int64(len(b)))
}

func (h *httpTarget) List(ctx context.Context) ([]Entry, error) {
	resp, err := h.do(ctx, http.MethodGet, indexName, nil, -1)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s%s: %s", h.String(), indexName, resp.Status)
	}
	var es []Entry
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&es); err != nil {
		return nil, fmt.Errorf("%s%s is not a snapshot index: %w", h.String(), indexName, err)
	}
	return es, nil
}

func (h *httpTarget) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("invalid snapshot name %q", name)
	}
	es, err := h.List(ctx)
	if err != nil {
		return nil, err
	}
	sum := ""
	for _, e := range es {
		if e.Name == name {
			sum = e.SHA256
		}
	}
	if sum == "" {
		return nil, fmt.Errorf("no snapshot %s in %s", name, h)
	}
	resp, err := h.do(ctx, http.MethodGet, name, nil, -1)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s%s: %s", h.String(), name, resp.Status)
	}
	return &verifier{r: resp.Body, c: resp.Body, h: sha256.New(), want: sum, name: name}, nil
}

func (h *httpTarget) Delete(ctx context.Context, name string) error {
	es, err := h.List(ctx)
	if err != nil {
		return err
	}
	keep := es[:0]
	for _, e := range es {
		if e.Name != name {
			keep = append(keep, e)
		}
	}
	if err := h.writeIndex(ctx, keep); err != nil {
		return err
	}
	for _, n := range []string{name, name + ".sha256", name + aclSuffix} {
		if resp, err := h.do(ctx, http.MethodDelete, n, nil, -1); err == nil {
			resp.Body.Close()
		}
	}
	return nil
}

func (h *httpTarget) PutACL(ctx context.Context, name string, b []byte) error {
	if !ValidName(name) {
		return fmt.Errorf("invalid snapshot name %q", name)
	}
	return h.put(ctx, name+aclSuffix, bytes.NewReader(b), int64(len(b)))
}

func (h *httpTarget) GetACL(ctx context.Context, name string) ([]byte, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("invalid snapshot name %q", name)
	}
	resp, err := h.do(ctx, http.MethodGet, name+aclSuffix, nil, -1)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s%s: %s", h.String(), name+aclSuffix, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<16))
}

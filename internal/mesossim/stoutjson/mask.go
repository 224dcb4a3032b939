package stoutjson

import (
	"encoding/json"
	"io"
	"strings"
)

// Mask rewrites a JSON record with the leaves at the given paths (keys
// joined by ".", array indices left out) replaced by "*", keeping key order
// and number literals: two records with the same mask say the same thing
// in the same words, IDs and addresses aside. For tests that compare the
// simulator's records with real Mesos'.
func Mask(rec string, volatile map[string]bool) (string, error) {
	dec := json.NewDecoder(strings.NewReader(rec))
	dec.UseNumber()
	var out strings.Builder
	type frame struct {
		obj      bool
		key      string
		expectKV bool // in an object, next string token is a key
		n        int
	}
	var stack []*frame
	path := func() string {
		var ks []string
		for _, f := range stack {
			if f.obj {
				ks = append(ks, f.key)
			}
		}
		return strings.Join(ks, ".")
	}
	sep := func() {
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		if f.n > 0 && (!f.obj || f.expectKV) {
			out.WriteByte(',')
		}
	}
	value := func(s string) {
		out.WriteString(s)
		if len(stack) > 0 {
			f := stack[len(stack)-1]
			f.n++
			if f.obj {
				f.expectKV = true
			}
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				sep()
				out.WriteString(v.String())
				stack = append(stack, &frame{obj: v == '{', expectKV: true})
			default:
				stack = stack[:len(stack)-1]
				value(v.String())
			}
			continue
		case string:
			if f := stack[len(stack)-1]; f.obj && f.expectKV {
				sep()
				f.key, f.expectKV = v, false
				b, _ := json.Marshal(v)
				out.Write(b)
				out.WriteByte(':')
				continue
			}
		}
		if f := stack[len(stack)-1]; !f.obj {
			sep()
		}
		if volatile[path()] {
			value(`"*"`)
			continue
		}
		b, _ := json.Marshal(tok)
		value(string(b))
	}
	if len(stack) != 0 {
		return "", io.ErrUnexpectedEOF
	}
	return out.String(), nil
}

package mesoscodec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"reflect"
	"strings"
	"sync"

	"github.com/gogo/protobuf/proto"
)

// Media types of the Mesos v1 APIs.
const (
	MediaProtobuf = "application/x-protobuf"
	MediaJSON     = "application/json"
)

// Message is what the decoders fill: a mesos-go v1 message.
type Message interface {
	proto.Message
}

// Unmarshal decodes one message encoded as mediaType (a Content-Type
// value). Protobuf keeps enum values and skips fields the protos do not
// know. JSON follows stout's rules as the real master does (mesos-api.md
// 1.1): unknown keys are ignored and an enum name the protos do not know
// is dropped from an optional field (and from a repeated one), so a newer
// master's events still decode.
func Unmarshal(mediaType string, b []byte, m Message) error {
	switch kind(mediaType) {
	case MediaProtobuf:
		m.Reset()
		return proto.Unmarshal(b, m)
	case MediaJSON:
		return unmarshalJSON(b, m)
	default:
		return fmt.Errorf("unsupported media type %q: want %s or %s", mediaType, MediaProtobuf, MediaJSON)
	}
}

// kind reduces a Content-Type value to one of the two media types, or "".
func kind(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	switch mt {
	case MediaProtobuf, MediaJSON:
		return mt
	}
	return ""
}

// unmarshalJSON tries mesos-go's generated decoder first (fast, and it
// already knows the newer values registered in enums.go); only when it
// refuses the document are unknown enum names pruned and the document
// decoded again.
func unmarshalJSON(b []byte, m Message) error {
	m.Reset()
	first := json.Unmarshal(b, m)
	if first == nil {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		return fmt.Errorf("JSON: %w", err)
	}
	if !pruneEnums(doc, reflect.TypeOf(m)) {
		return fmt.Errorf("JSON: %w", first) // not an enum problem
	}
	pruned, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("JSON: %w", err)
	}
	m.Reset()
	if err := json.Unmarshal(pruned, m); err != nil {
		return fmt.Errorf("JSON (unknown enum names dropped): %w", err)
	}
	return nil
}

// pruneEnums walks a generic JSON document along the Go type of the
// message and deletes enum names the protos do not know: the key of an
// optional field, the element of a repeated one. It reports whether it
// deleted anything.
func pruneEnums(doc any, t reflect.Type) bool {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	pruned := false
	switch v := doc.(type) {
	case []any:
		for _, e := range v {
			pruned = pruneEnums(e, t) || pruned
		}
	case map[string]any:
		if t.Kind() != reflect.Struct {
			return false
		}
		fields := jsonFields(t)
		for key, val := range v {
			f, ok := fields[key]
			if !ok {
				continue
			}
			if f.enum != nil {
				kept, changed := pruneEnumValue(val, f.enum)
				if changed {
					pruned = true
					if kept == nil {
						delete(v, key)
					} else {
						v[key] = kept
					}
				}
				continue
			}
			pruned = pruneEnums(val, f.typ) || pruned
		}
	}
	return pruned
}

// pruneEnumValue drops unknown names from one enum field's JSON value: nil
// when nothing is left of it.
func pruneEnumValue(val any, known map[string]int32) (any, bool) {
	switch v := val.(type) {
	case string:
		if _, ok := known[v]; ok {
			return v, false
		}
		return nil, true
	case []any:
		kept := v[:0:0]
		for _, e := range v {
			if s, isName := e.(string); isName {
				if _, ok := known[s]; !ok {
					continue
				}
			}
			kept = append(kept, e)
		}
		if len(kept) == len(v) {
			return v, false
		}
		if len(kept) == 0 {
			return nil, true
		}
		return kept, true
	}
	return val, false
}

type jsonField struct {
	typ  reflect.Type
	enum map[string]int32 // the enum's names, nil if the field is no enum
}

var fieldCache sync.Map // reflect.Type -> map[string]jsonField

// jsonFields maps a generated struct's JSON keys to its fields, from the
// `json` and `protobuf` struct tags of gogo's generated code.
func jsonFields(t reflect.Type) map[string]jsonField {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]jsonField)
	}
	m := map[string]jsonField{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		f := jsonField{typ: sf.Type}
		for _, part := range strings.Split(sf.Tag.Get("protobuf"), ",") {
			if enum, ok := strings.CutPrefix(part, "enum="); ok {
				f.enum = proto.EnumValueMap(enum)
			}
		}
		m[name] = f
	}
	fieldCache.Store(t, m)
	return m
}

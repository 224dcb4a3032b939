// Package stoutjson converts between Mesos protobuf messages (mesos-go
// v0.0.11's generated structs) and JSON with the rules of stout's
// protobuf.hpp.
package stoutjson

// JSON <-> protobuf conversion with the rules of stout's protobuf.hpp, which
// the real master uses (mesos-api.md 1.1): proto field names, enums by name,
// bytes as base64, null = unset, unknown keys ignored, an unknown enum name on
// an optional field silently dropped, required fields checked after parsing.
// Encoding writes set fields in declaration order (as Mesos does), repeated
// fields only when non-empty, and doubles the way Mesos prints them (4.0).
//
// It works on the gogo-generated mesos-go structs through their `protobuf`
// struct tags, so it needs no descriptors.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/gogo/protobuf/proto"
)

type pbField struct {
	index    int
	number   int
	name     string
	required bool
	repeated bool
	enum     string // registered enum name, "" if not an enum
	typ      reflect.Type
}

type pbMessage struct {
	fields []pbField
	byName map[string]int
}

var pbCache sync.Map // reflect.Type -> *pbMessage

func pbInfo(t reflect.Type) *pbMessage {
	if m, ok := pbCache.Load(t); ok {
		return m.(*pbMessage)
	}
	m := &pbMessage{byName: map[string]int{}}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("protobuf")
		if tag == "" {
			continue
		}
		f := pbField{index: i, typ: sf.Type}
		for pi, part := range strings.Split(tag, ",") {
			switch {
			case pi == 1:
				f.number, _ = strconv.Atoi(part)
			case part == "req":
				f.required = true
			case part == "rep":
				f.repeated = true
			case strings.HasPrefix(part, "name="):
				f.name = part[5:]
			case strings.HasPrefix(part, "enum="):
				f.enum = part[5:]
			}
		}
		m.byName[f.name] = len(m.fields)
		m.fields = append(m.fields, f)
	}
	pbCache.Store(t, m)
	return m
}

// ---------------------------------------------------------------- decoding

// EnumUnset marks a non-nullable enum field that was absent from the JSON,
// for the enums whose presence the master checks (Call.type and
// ExecutorInfo.type: mesos-go cannot represent "unset" there).
const EnumUnset = -1

var absentEnumSentinel = map[string]bool{
	"mesos.scheduler.Call_Type": true,
	"mesos.executor.Call_Type":  true,
	"mesos.ExecutorInfo_Type":   true,
}

// ConvertError is a conversion error with stout's wording.
type ConvertError struct{ msg string }

func (e *ConvertError) Error() string { return e.msg }

// Parse checks the syntax of a JSON document (the "Failed to parse
// body into JSON" step) and returns the generic value.
func Parse(body []byte) (interface{}, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v interface{}
	if err := dec.Decode(&v); err != nil {
		rest := ""
		if se, ok := err.(*json.SyntaxError); ok && int(se.Offset) < len(body) {
			rest = string(body[se.Offset:])
		}
		line := 1 + bytes.Count(body[:len(body)-len(rest)], []byte("\n"))
		return nil, fmt.Errorf("syntax error at line %d near: %s", line, rest)
	}
	if dec.More() {
		return nil, fmt.Errorf("syntax error at line 1 near: trailing data")
	}
	return v, nil
}

// Decode fills msg (a pointer to a generated struct) from the generic
// JSON value v, then checks required fields.
func Decode(v interface{}, msg interface{}) error {
	obj, ok := v.(map[string]interface{})
	if !ok {
		return &ConvertError{"Expecting a JSON object"}
	}
	var missing []string
	if err := decodeObject(obj, reflect.ValueOf(msg).Elem(), "", &missing); err != nil {
		return err
	}
	if len(missing) > 0 {
		return &ConvertError{"Missing required fields: " + strings.Join(missing, ", ")}
	}
	return nil
}

func jsonKind(v interface{}) string {
	switch v.(type) {
	case map[string]interface{}:
		return "object"
	case []interface{}:
		return "array"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return "value"
}

func decodeObject(obj map[string]interface{}, dst reflect.Value, path string, missing *[]string) error {
	info := pbInfo(dst.Type())
	present := make([]bool, len(info.fields))
	// Iterate in declaration order so errors are deterministic.
	for fi, f := range info.fields {
		raw, ok := obj[f.name]
		if !ok || raw == nil {
			continue
		}
		fpath := f.name
		if path != "" {
			fpath = path + "." + f.name
		}
		fv := dst.Field(f.index)
		if f.repeated {
			arr, ok := raw.([]interface{})
			if !ok {
				return &ConvertError{fmt.Sprintf("Not expecting a JSON %s for field '%s'", jsonKind(raw), f.name)}
			}
			slice := reflect.MakeSlice(f.typ, 0, len(arr))
			for i, item := range arr {
				if item == nil {
					continue
				}
				ev := reflect.New(f.typ.Elem()).Elem()
				set, err := decodeValue(item, ev, f, fmt.Sprintf("%s[%d]", fpath, i), missing)
				if err != nil {
					return err
				}
				if set {
					slice = reflect.Append(slice, ev)
				}
			}
			if slice.Len() > 0 {
				fv.Set(slice)
				present[fi] = true
			}
			continue
		}
		set, err := decodeValue(raw, fv, f, fpath, missing)
		if err != nil {
			return err
		}
		present[fi] = set
	}
	for fi, f := range info.fields {
		if !present[fi] && absentEnumSentinel[f.enum] && f.typ.Kind() != reflect.Ptr {
			dst.Field(f.index).SetInt(EnumUnset)
		}
		if f.required && !present[fi] {
			p := f.name
			if path != "" {
				p = path + "." + f.name
			}
			*missing = append(*missing, p)
		}
	}
	return nil
}

// decodeValue decodes one (non-repeated) value into dst, which may be a
// pointer (nullable field) or a value. It reports whether a value was set.
func decodeValue(raw interface{}, dst reflect.Value, f pbField, path string, missing *[]string) (bool, error) {
	t := dst.Type()
	if t.Kind() == reflect.Ptr {
		nv := reflect.New(t.Elem())
		set, err := decodeValue(raw, nv.Elem(), f, path, missing)
		if err != nil || !set {
			return false, err
		}
		dst.Set(nv)
		return true, nil
	}
	mismatch := func() error {
		return &ConvertError{fmt.Sprintf("Not expecting a JSON %s for field '%s'", jsonKind(raw), f.name)}
	}
	if f.enum != "" {
		s, ok := raw.(string)
		if !ok {
			return false, mismatch()
		}
		n, ok := enumValue(f.enum, s)
		if !ok {
			// stout drops unknown enum values of optional fields; a
			// required one is then reported missing.
			return false, nil
		}
		dst.SetInt(int64(n))
		return true, nil
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := raw.(map[string]interface{})
		if !ok {
			return false, mismatch()
		}
		return true, decodeObject(obj, dst, path, missing)
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			return false, mismatch()
		}
		dst.SetString(s)
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			return false, mismatch()
		}
		dst.SetBool(b)
	case reflect.Slice: // bytes
		s, ok := raw.(string)
		if !ok {
			return false, mismatch()
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return false, &ConvertError{fmt.Sprintf("Failed to base64 decode field '%s'", f.name)}
		}
		dst.SetBytes(b)
	case reflect.Float64, reflect.Float32:
		var x float64
		switch n := raw.(type) {
		case json.Number:
			v, err := n.Float64()
			if err != nil {
				return false, mismatch()
			}
			x = v
		case string:
			switch n {
			case "Infinity":
				x = math.Inf(1)
			case "-Infinity":
				x = math.Inf(-1)
			case "NaN":
				x = math.NaN()
			default:
				v, err := strconv.ParseFloat(n, 64)
				if err != nil {
					return false, &ConvertError{fmt.Sprintf("Failed to convert '%s' to number for field '%s'", n, f.name)}
				}
				x = v
			}
		default:
			return false, mismatch()
		}
		dst.SetFloat(x)
	case reflect.Int32, reflect.Int64:
		s, ok := numberText(raw)
		if !ok {
			return false, mismatch()
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fl, ferr := strconv.ParseFloat(s, 64)
			if ferr != nil || fl != math.Trunc(fl) {
				return false, &ConvertError{fmt.Sprintf("Failed to convert '%s' to integer for field '%s'", s, f.name)}
			}
			n = int64(fl)
		}
		dst.SetInt(n)
	case reflect.Uint32, reflect.Uint64:
		s, ok := numberText(raw)
		if !ok {
			return false, mismatch()
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			fl, ferr := strconv.ParseFloat(s, 64)
			if ferr != nil || fl < 0 || fl != math.Trunc(fl) {
				return false, &ConvertError{fmt.Sprintf("Failed to convert '%s' to unsigned integer for field '%s'", s, f.name)}
			}
			n = uint64(fl)
		}
		dst.SetUint(n)
	default:
		return false, &ConvertError{fmt.Sprintf("Unsupported field '%s'", f.name)}
	}
	return true, nil
}

func numberText(raw interface{}) (string, bool) {
	switch n := raw.(type) {
	case json.Number:
		return n.String(), true
	case string:
		return n, true
	}
	return "", false
}

// ---------------------------------------------------------------- encoding

// Encode renders msg (pointer to a generated struct) as Mesos does.
func Encode(msg interface{}) []byte {
	var buf bytes.Buffer
	encodeMessage(&buf, reflect.ValueOf(msg).Elem())
	return buf.Bytes()
}

func encodeMessage(buf *bytes.Buffer, v reflect.Value) {
	info := pbInfo(v.Type())
	buf.WriteByte('{')
	first := true
	for _, f := range info.fields {
		fv := v.Field(f.index)
		if !fieldPresent(fv, f) {
			continue
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		buf.WriteByte('"')
		buf.WriteString(f.name)
		buf.WriteString(`":`)
		if f.repeated {
			buf.WriteByte('[')
			for i := 0; i < fv.Len(); i++ {
				if i > 0 {
					buf.WriteByte(',')
				}
				encodeValue(buf, fv.Index(i), f)
			}
			buf.WriteByte(']')
			continue
		}
		encodeValue(buf, fv, f)
	}
	buf.WriteByte('}')
}

func fieldPresent(fv reflect.Value, f pbField) bool {
	switch fv.Kind() {
	case reflect.Ptr:
		return !fv.IsNil()
	case reflect.Slice:
		return fv.Len() > 0
	case reflect.Struct:
		return true
	}
	if f.required {
		return true
	}
	return !fv.IsZero()
}

func encodeValue(buf *bytes.Buffer, v reflect.Value, f pbField) {
	if v.Kind() == reflect.Ptr {
		v = v.Elem()
	}
	if f.enum != "" {
		buf.WriteString(strconv.Quote(enumName(f.enum, int32(v.Int()))))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		encodeMessage(buf, v)
	case reflect.String:
		writeString(buf, v.String())
	case reflect.Bool:
		buf.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Slice:
		buf.WriteByte('"')
		buf.WriteString(base64.StdEncoding.EncodeToString(v.Bytes()))
		buf.WriteByte('"')
	case reflect.Float64, reflect.Float32:
		buf.WriteString(FormatDouble(v.Float()))
	case reflect.Int32, reflect.Int64:
		buf.WriteString(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint32, reflect.Uint64:
		buf.WriteString(strconv.FormatUint(v.Uint(), 10))
	default:
		buf.WriteString("null")
	}
}

// Extra holds the enum values of Mesos 1.12.0's protos (apache/mesos
// c1b42f79d, include/mesos/v1/mesos.proto) that mesos-go v0.0.11's protos
// lack, by the registered enum name. Go code carries them as plain numbers
// of the generated enum type (e.g. mesos.MasterInfo_Capability_Type(3)):
// the protobuf encoding needs nothing more, and the JSON conversion names
// them from here, so the simulator can say what a real 1.12 master says.
var Extra = map[string]map[string]int32{
	"mesos.MasterInfo_Capability_Type": {"QUOTA_V2": 3},
	"mesos.CapabilityInfo_Capability":  {"PERFMON": 1038, "BPF": 1039, "CHECKPOINT_RESTORE": 1040},
	"mesos.Volume_Source_Type":         {"CSI_VOLUME": 5},
}

// MasterCapabilityQuotaV2 is MasterInfo.Capability.Type QUOTA_V2 (Mesos
// 1.10+), which a real 1.12 master lists in every SUBSCRIBED.
const MasterCapabilityQuotaV2 = 3

func enumValue(enum, name string) (int32, bool) {
	if n, ok := proto.EnumValueMap(enum)[name]; ok {
		return n, true
	}
	n, ok := Extra[enum][name]
	return n, ok
}

// enumName names an enum value as Mesos would, or gives its number when
// neither the protos nor Extra know it.
func enumName(enum string, n int32) string {
	if name, ok := enumNames(enum)[n]; ok {
		return name
	}
	return strconv.Itoa(int(n))
}

// writeString writes s as a JSON string the way Mesos' writer (rapidjson)
// does: only '"', '\\' and control characters are escaped; '<', '>', '&'
// and non-ASCII characters are written as they are.
func writeString(buf *bytes.Buffer, s string) {
	const hex = "0123456789ABCDEF"
	buf.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			buf.WriteString(`\"`)
		case c == '\\':
			buf.WriteString(`\\`)
		case c == '\b':
			buf.WriteString(`\b`)
		case c == '\f':
			buf.WriteString(`\f`)
		case c == '\n':
			buf.WriteString(`\n`)
		case c == '\r':
			buf.WriteString(`\r`)
		case c == '\t':
			buf.WriteString(`\t`)
		case c < 0x20:
			buf.WriteString(`\u00`)
			buf.WriteByte(hex[c>>4])
			buf.WriteByte(hex[c&0xF])
		default:
			buf.WriteByte(c)
		}
	}
	buf.WriteByte('"')
}

var enumNameCache sync.Map

func enumNames(enum string) map[int32]string {
	if m, ok := enumNameCache.Load(enum); ok {
		return m.(map[int32]string)
	}
	values := map[string]int32{}
	for k, v := range proto.EnumValueMap(enum) {
		values[k] = v
	}
	for k, v := range Extra[enum] {
		values[k] = v
	}
	names := make(map[int32]string, len(values))
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, dup := names[values[k]]; !dup {
			names[values[k]] = k
		}
	}
	enumNameCache.Store(enum, names)
	return names
}

// FormatDouble prints a double as Mesos' JSON writer does: shortest
// round-trip form, with ".0" on integral values.
func FormatDouble(x float64) string {
	switch {
	case math.IsInf(x, 1):
		return `"Infinity"`
	case math.IsInf(x, -1):
		return `"-Infinity"`
	case math.IsNaN(x):
		return `"NaN"`
	}
	if math.Abs(x) >= 1e21 {
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	s := strconv.FormatFloat(x, 'f', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// ------------------------------------------------------------ text format

// Text renders msg in protobuf text format (fields by number), as
// C++ DebugString does; the master embeds it in some error messages.
func Text(msg interface{}) string {
	var b strings.Builder
	textMessage(&b, reflect.ValueOf(msg).Elem(), "")
	return b.String()
}

func textMessage(b *strings.Builder, v reflect.Value, indent string) {
	info := pbInfo(v.Type())
	fields := append([]pbField(nil), info.fields...)
	sort.SliceStable(fields, func(i, j int) bool { return fields[i].number < fields[j].number })
	for _, f := range fields {
		fv := v.Field(f.index)
		if !fieldPresent(fv, f) {
			continue
		}
		if f.repeated {
			for i := 0; i < fv.Len(); i++ {
				textValue(b, fv.Index(i), f, indent)
			}
			continue
		}
		textValue(b, fv, f, indent)
	}
}

func textValue(b *strings.Builder, v reflect.Value, f pbField, indent string) {
	if v.Kind() == reflect.Ptr {
		v = v.Elem()
	}
	if v.Kind() == reflect.Struct {
		b.WriteString(indent + f.name + " {\n")
		textMessage(b, v, indent+"  ")
		b.WriteString(indent + "}\n")
		return
	}
	b.WriteString(indent + f.name + ": ")
	switch {
	case f.enum != "":
		b.WriteString(enumName(f.enum, int32(v.Int())))
	case v.Kind() == reflect.String:
		b.WriteString(strconv.Quote(v.String()))
	case v.Kind() == reflect.Slice:
		b.WriteString(strconv.Quote(string(v.Bytes())))
	case v.Kind() == reflect.Bool:
		b.WriteString(strconv.FormatBool(v.Bool()))
	case v.Kind() == reflect.Float64 || v.Kind() == reflect.Float32:
		b.WriteString(strconv.FormatFloat(v.Float(), 'g', -1, 64))
	case v.Kind() == reflect.Int32 || v.Kind() == reflect.Int64:
		b.WriteString(strconv.FormatInt(v.Int(), 10))
	default:
		b.WriteString(strconv.FormatUint(v.Uint(), 10))
	}
	b.WriteString("\n")
}

package cosmos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/cbroglie/mustache"
)

// RenderTemplate renders a marathon.json.mustache template with a context
// (decoded with DecodeJSON) the way Cosmos does, and checks that the
// output is a JSON object whose "labels", if any, map strings to strings.
//
// Cosmos hands mustache.java a Java copy of the context (jsonToJava in
// PackageDefinitionRenderer.scala) and switches HTML escaping off:
//   - a string prints JSON-escaped without its surrounding quotes, safe
//     inside "{{x}}"; a string inside an array keeps its quotes;
//   - an array is a java.util.List: {{list}} prints "[a, b]" (so an array
//     of strings or numbers prints as valid JSON), a section iterates it;
//   - an object is a java.util.Map: {{obj}} prints "{k=v, ...}" (not JSON);
//   - a number prints as an integer when it is integral (1.0 → 1), else as
//     Java's Double.toString (0.5, 1.0E-4);
//   - booleans print true/false; null prints nothing ("null" in a list).
//
// Sections follow mustache.java: null, false, "" and empty lists are
// false; every number (0 too) and every object (empty too) is true.
// {{#asJson}}key{{/asJson}} prints the top-level string option key
// unescaped ("null" if it is not a string).
func RenderTemplate(template string, ctx map[string]any) ([]byte, error) {
	out, err := renderRaw(template, ctx)
	if err != nil {
		return nil, err
	}
	if err := checkApp([]byte(out)); err != nil {
		return nil, err
	}
	return []byte(out), nil
}

// renderRaw is the mustache step alone.
func renderRaw(template string, ctx map[string]any) (string, error) {
	tmpl, err := mustache.ParseStringPartialsRaw(template, noPartials{}, true)
	if err != nil {
		return "", fmt.Errorf("cosmos: marathon.json.mustache: %w", err)
	}
	root := javaMap(ctx)
	root["asJson"] = asJSON(ctx, root)
	out, err := tmpl.Render(root)
	if err != nil {
		return "", fmt.Errorf("cosmos: rendering marathon.json.mustache: %w", err)
	}
	return out, nil
}

// checkApp is what Cosmos checks of the rendered text before it sends it
// to Marathon.
func checkApp(out []byte) error {
	v, err := DecodeJSON(bytes.NewReader(out))
	if err != nil {
		return fmt.Errorf("cosmos: the rendered marathon.json.mustache is not JSON: %w\n%s", err, out)
	}
	app, ok := v.(map[string]any)
	if !ok {
		return errors.New("cosmos: the rendered marathon.json.mustache must be a JSON object (MarathonTemplateMustBeJsonObject)")
	}
	if labels, ok := app["labels"]; ok {
		m, ok := labels.(map[string]any)
		if !ok {
			return errors.New("cosmos: the rendered app's labels must be an object of strings")
		}
		for k, v := range m {
			if _, ok := v.(string); !ok {
				return fmt.Errorf("cosmos: the rendered app's label %q must be a string, not %s", k, javaString(v, false))
			}
		}
	}
	return nil
}

type noPartials struct{}

func (noPartials) Get(name string) (string, error) {
	return "", fmt.Errorf("partial %q: Universe templates cannot include partials", name)
}

// asJSON is Cosmos's asJson lambda: the section's text names a top-level
// key of the context; a string value is printed as is, anything else as
// null. mustache.java renders a TemplateFunction's result as a template,
// so the result is rendered again (with the root context).
func asJSON(ctx map[string]any, root map[string]any) mustache.LambdaFunc {
	return func(text string, _ mustache.RenderFunc) (string, error) {
		s, ok := ctx[text].(string)
		if !ok {
			return "null", nil
		}
		tmpl, err := mustache.ParseStringPartialsRaw(s, noPartials{}, true)
		if err != nil {
			return "", err
		}
		return tmpl.Render(root)
	}
}

// The context types: each prints the way the Java value Cosmos builds
// does, and has the truthiness mustache.java gives it (cbroglie/mustache
// treats a zero value as false and anything else as true).

// jstr is a converted string. Empty is false, as in mustache.java (plain Go
// strings would also be false when they only hold spaces).
type jstr struct{ text string }

func (s jstr) String() string { return s.text }

// jnum is a number; always true, even 0.
type jnum struct{ text string }

func (n jnum) String() string { return n.text }

// jnull is JSON null: prints nothing, false in sections.
type jnull struct{}

func (jnull) String() string { return "" }

// jlist is a java.util.List.
type jlist []any

func (l jlist) String() string {
	parts := make([]string, len(l))
	for i, e := range l {
		if _, ok := e.(jnull); ok {
			parts[i] = "null"
			continue
		}
		parts[i] = fmt.Sprint(e)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// jmap is a java.util.Map; its keys print sorted (Cosmos's order is that
// of a Scala map, which no template should depend on).
type jmap map[string]any

func (m jmap) String() string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := m[k]
		if _, ok := v.(jnull); ok {
			parts[i] = k + "=null"
			continue
		}
		parts[i] = k + "=" + fmt.Sprint(v)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func javaMap(obj map[string]any) jmap {
	out := make(jmap, len(obj))
	for k, v := range obj {
		out[k] = javaValue(v, false)
	}
	return out
}

// javaValue is Cosmos's jsonToJava.
func javaValue(v any, inArray bool) any {
	switch t := v.(type) {
	case nil:
		return jnull{}
	case bool:
		return t
	case json.Number:
		return jnum{javaNumber(t)}
	case float64:
		return jnum{javaNumber(json.Number(strconv.FormatFloat(t, 'g', -1, 64)))}
	case string:
		return jstr{jsonString(t, inArray)}
	case []any:
		out := make(jlist, len(t))
		for i, e := range t {
			out[i] = javaValue(e, true)
		}
		return out
	case map[string]any:
		return javaMap(t)
	default:
		return jstr{fmt.Sprint(t)}
	}
}

// javaString prints a decoded JSON value as javaValue would.
func javaString(v any, inArray bool) string {
	j := javaValue(v, inArray)
	if _, ok := j.(jnull); ok {
		return "null"
	}
	return fmt.Sprint(j)
}

// jsonString is circe's noSpaces printing of a string, without the quotes
// unless inArray: quote, backslash, \b \f \n \r \t escaped; other ISO
// control characters (U+0000-U+001F, U+007F-U+009F) as \u00xx; everything
// else (non-ASCII included) as is.
func jsonString(s string, inArray bool) string {
	var b strings.Builder
	if inArray {
		b.WriteByte('"')
	}
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	if inArray {
		b.WriteByte('"')
	}
	return b.String()
}

// javaNumber prints a JSON number as Cosmos hands it to mustache.java:
// n.toBigInt.getOrElse(n.toDouble), i.e. a whole number as an integer and
// anything else as java.lang.Double.toString.
func javaNumber(n json.Number) string {
	f, _, err := big.ParseFloat(string(n), 10, 2048, big.ToNearestEven)
	if err == nil && f.IsInt() {
		i, _ := f.Int(nil)
		return i.String()
	}
	d, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return string(n)
	}
	return javaDouble(d)
}

// javaDouble is java.lang.Double.toString for finite, non-integral values:
// plain notation with at least one fraction digit for 1e-3 <= |d| < 1e7,
// otherwise computerized scientific notation (1.0E-4, 1.2345678E7).
func javaDouble(d float64) string {
	if d == 0 {
		return "0.0"
	}
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	// Shortest digits that round-trip, as Java (JDK 19+) prints them.
	e := strconv.FormatFloat(d, 'e', -1, 64) // d.ddddde±xx
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	if d >= 1e-3 && d < 1e7 {
		var intPart, frac string
		if exp >= 0 {
			if len(digits) <= exp+1 {
				intPart, frac = digits+strings.Repeat("0", exp+1-len(digits)), "0"
			} else {
				intPart, frac = digits[:exp+1], digits[exp+1:]
			}
		} else {
			intPart, frac = "0", strings.Repeat("0", -exp-1)+digits
		}
		return sign + intPart + "." + frac
	}
	frac := digits[1:]
	if frac == "" {
		frac = "0"
	}
	return sign + digits[:1] + "." + frac + "E" + strconv.Itoa(exp)
}

// Command gotemplate renders Go text/template cases for corral's differential tests.
//
// stdin: a JSON array of {"template": str, "data": any, "chat": {...} | null}; numbers in data decode as
// int when integral-looking, else float64 (Python's int/float distinction). "chat" carries API-shaped
// messages and tools that are decoded into the api types, as Ollama passes them to chat templates.
// stdout: a JSON array of {"out": str} or {"err": str}, one per case.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/template"
	"time"

	"corral.test/gotemplate/api"
)

type chat struct {
	Messages   []api.Message `json:"messages"`
	Tools      api.Tools     `json:"tools"`
	System     string        `json:"system"`
	Think      bool          `json:"think"`
	ThinkLevel string        `json:"think_level"`
	IsThinkSet bool          `json:"is_think_set"`
}

type testCase struct {
	Template string          `json:"template"`
	Data     json.RawMessage `json:"data"`
	Chat     *chat           `json:"chat"`
}

type result struct {
	Out *string `json:"out,omitempty"`
	Err *string `json:"err,omitempty"`
}

var funcs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	"currentDate": func(args ...string) string {
		return time.Now().Format("2006-01-02")
	},
	"yesterdayDate": func(args ...string) string {
		return time.Now().AddDate(0, 0, -1).Format("2006-01-02")
	},
	"toTypeScriptType": func(v any) string {
		switch p := v.(type) {
		case api.ToolProperty:
			return p.ToTypeScriptType()
		case *api.ToolProperty:
			if p != nil {
				return p.ToTypeScriptType()
			}
		case map[string]any:
			// corral also accepts plain JSON-schema dicts; decode them the way Ollama's request would.
			b, _ := json.Marshal(p)
			var tp api.ToolProperty
			if json.Unmarshal(b, &tp) == nil {
				return tp.ToTypeScriptType()
			}
		}
		return "any"
	},
}

// convert turns json.Number into int (integral text) or float64, recursively.
func convert(v any) any {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return int(i)
			}
		}
		f, _ := strconv.ParseFloat(s, 64)
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = convert(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = convert(e)
		}
		return x
	}
	return v
}

func render(c testCase) (string, error) {
	tmpl, err := template.New("").Option("missingkey=zero").Funcs(funcs).Parse(c.Template)
	if err != nil {
		return "", err
	}
	var data any
	if len(c.Data) > 0 {
		dec := json.NewDecoder(bytes.NewReader(c.Data))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil {
			return "", fmt.Errorf("harness: bad data: %w", err)
		}
		data = convert(data)
	}
	if c.Chat != nil {
		m, _ := data.(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		msgs := make([]*api.Message, len(c.Chat.Messages))
		for i := range c.Chat.Messages {
			msgs[i] = &c.Chat.Messages[i]
		}
		m["System"] = c.Chat.System
		m["Messages"] = msgs
		m["Tools"] = c.Chat.Tools
		m["Response"] = ""
		m["Think"] = c.Chat.Think
		m["ThinkLevel"] = c.Chat.ThinkLevel
		m["IsThinkSet"] = c.Chat.IsThinkSet
		data = m
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, "harness: bad input:", err)
		os.Exit(2)
	}
	results := make([]result, len(cases))
	for i, c := range cases {
		out, err := render(c)
		if err != nil {
			msg := err.Error()
			results[i].Err = &msg
		} else {
			results[i].Out = &out
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(results); err != nil {
		os.Exit(3)
	}
}
